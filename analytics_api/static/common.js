// Helpers shared by the dashboard (app.js) and the admin page (admin.js).
// Every piece of text that comes from the API reaches the page through text nodes
// (textContent / createTextNode) or setAttribute: never through innerHTML.

/** An API answer that was not 2xx. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && typeof body === "object" ? body.message || body.error : null;
    super(detail ? `HTTP ${status}: ${detail}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** GET a JSON document; empty, null and undefined parameters are left out. */
export async function getJSON(path, params = {}, token = null) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(url, { headers, cache: "no-store", credentials: "omit" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

/**
 * Create an element. props: className, text, title, attrs (setAttribute), dataset, on (listeners), hidden.
 * Children: nodes, strings (become text nodes), arrays, null/undefined/false (skipped).
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { className, text, title, attrs, dataset, on, hidden } = props;
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (title) node.title = String(title);
  if (hidden) node.hidden = true;
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  for (const [key, value] of Object.entries(dataset || {})) node.dataset[key] = String(value);
  for (const [event, listener] of Object.entries(on || {})) node.addEventListener(event, listener);
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
}

/** A Korean label followed by its English reading in a quieter style. */
export function bilingual(ko, en) {
  return [document.createTextNode(ko), h("span", { className: "en", text: en })];
}

/** Replace every child of a node. */
export function replaceChildren(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 });

export const DASH = "—";

/** 12,345 (or a dash for null). */
export function fmtInt(value) {
  return value === null || value === undefined ? DASH : integer.format(value);
}

/** 1,234 ms, rounded to the millisecond (or a dash for null). */
export function fmtMs(value) {
  return value === null || value === undefined ? DASH : `${integer.format(Math.round(value))} ms`;
}

/** A rate (0..1) as a percentage with one decimal. */
export function fmtPct(rate) {
  return rate === null || rate === undefined ? DASH : `${oneDecimal.format(rate * 100)}%`;
}

/** A number with one decimal. */
export function fmtDecimal(value) {
  return value === null || value === undefined ? DASH : oneDecimal.format(value);
}

const pad = (n) => String(n).padStart(2, "0");

/** An RFC 3339 instant as YYYY-MM-DD HH:MM:SS in the browser's time zone (raw text if unparsable). */
export function fmtDateTime(iso) {
  if (!iso) return DASH;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** HH:MM:SS of now, for "last updated" labels. */
export function clock() {
  const now = new Date();
  return `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}

const DAY_MS = 86_400_000;

function ymdToUtc(ymd) {
  const [y, m, d] = ymd.split("-").map(Number);
  return Date.UTC(y, m - 1, d);
}

/** YYYY-MM-DD moved by n calendar days. */
export function addDays(ymd, n) {
  return new Date(ymdToUtc(ymd) + n * DAY_MS).toISOString().slice(0, 10);
}

/** Whole days from a to b (b - a) for YYYY-MM-DD dates. */
export function daysBetween(a, b) {
  return Math.round((ymdToUtc(b) - ymdToUtc(a)) / DAY_MS);
}

/** True for a YYYY-MM-DD string. */
export function isDate(value) {
  return typeof value === "string" && /^\d{4}-\d{2}-\d{2}$/.test(value);
}
