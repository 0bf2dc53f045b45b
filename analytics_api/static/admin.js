// The hidden admin page: asks for the admin token (kept in sessionStorage only), lists
// conversations with the admin API's filters and shows one as a chat transcript.
// Conversation content is user text: it only ever reaches the page as text nodes.
import { bilingual, DASH, fmtDateTime, fmtInt, getJSON, h, replaceChildren } from "./common.js";

const TOKEN_KEY = "chatlog.adminToken";
const PAGE_SIZE = 50;
const AUTH_MESSAGES = {
  401: ["토큰이 올바르지 않습니다", "wrong token"],
  403: ["관리자 기능이 꺼져 있습니다", "admin is disabled (no CHATLOG_ADMIN_TOKEN)"],
};
const PRIORITIES = { high: "높음 · high", medium: "보통 · medium", low: "낮음 · low" };
const ROLES = { user: ["사용자", "User"], assistant: ["어시스턴트", "Assistant"] };

const $ = (id) => document.getElementById(id);
const ui = {
  login: $("login"),
  loginForm: $("login-form"),
  token: $("token"),
  loginError: $("login-error"),
  workspace: $("workspace"),
  signout: $("signout"),
  filters: $("filters"),
  collection: $("f-collection"),
  banner: $("banner"),
  list: $("conversations"),
  count: $("list-count"),
  more: $("more"),
  detail: $("detail"),
};

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  filters: {},
  cursor: null,
  loaded: 0,
  selected: null,
  generation: 0,
};

// ---------------------------------------------------------------- authentication

function showLogin(status) {
  ui.workspace.hidden = true;
  ui.signout.hidden = true;
  ui.login.hidden = false;
  const message = AUTH_MESSAGES[status];
  if (message) {
    replaceChildren(ui.loginError, `${message[0]} · `, h("span", { className: "en-inline", text: message[1] }));
    ui.loginError.dataset.status = String(status);
    ui.loginError.hidden = false;
  } else {
    ui.loginError.hidden = true;
    ui.loginError.replaceChildren();
  }
  ui.token.value = "";
  ui.token.focus();
}

function showWorkspace() {
  ui.login.hidden = true;
  ui.loginError.hidden = true;
  ui.workspace.hidden = false;
  ui.signout.hidden = false;
}

function forgetToken() {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  state.generation += 1;
  ui.list.replaceChildren();
  resetDetail();
}

/** Handle 401/403 by going back to the token form; true when the error was one of those. */
function handleAuthError(error) {
  if (error.status !== 401 && error.status !== 403) return false;
  forgetToken();
  showLogin(error.status);
  return true;
}

function showBanner(error) {
  // Before sign-in the workspace is hidden: errors then show under the token form.
  const target = ui.workspace.hidden ? ui.loginError : ui.banner;
  if (!error) {
    ui.banner.hidden = true;
    ui.banner.replaceChildren();
    return;
  }
  const reachable = error.status !== undefined;
  replaceChildren(
    target,
    h("strong", { text: reachable ? "API 오류 · API error" : "API에 연결할 수 없습니다 · Cannot reach the API" }),
    ` ${error.message}`,
  );
  target.hidden = false;
}

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  if (!token) return;
  state.token = token;
  ui.loginError.hidden = true;
  if (await loadList(false)) {
    sessionStorage.setItem(TOKEN_KEY, token);
    ui.token.value = "";
    showWorkspace();
    loadCollections();
  }
});

ui.signout.addEventListener("click", () => {
  forgetToken();
  history.replaceState(null, "", location.pathname);
  showLogin(null);
});

// ---------------------------------------------------------------- list

async function loadCollections() {
  try {
    const answer = await getJSON("/api/analytics/collections");
    const current = ui.collection.value;
    ui.collection.replaceChildren(
      h("option", { attrs: { value: "" }, text: "전체 · All" }),
      ...answer.collections.map((c) => h("option", { attrs: { value: c.name }, text: c.name })),
    );
    ui.collection.value = current;
  } catch {
    // The filter still works as "all collections"; the list shows its own errors.
  }
}

/** Load the first page (append=false) or the next one; true on success. */
async function loadList(append) {
  const generation = append ? state.generation : ++state.generation;
  const params = { ...state.filters, limit: PAGE_SIZE };
  if (append) params.cursor = state.cursor;
  ui.more.disabled = true;
  try {
    const page = await getJSON("/api/admin/conversations", params, state.token);
    if (generation !== state.generation) return false;
    if (!append) {
      ui.list.replaceChildren();
      state.loaded = 0;
    }
    for (const item of page.items) ui.list.append(listItem(item));
    state.loaded += page.items.length;
    state.cursor = page.next_cursor || null;
    ui.more.hidden = !state.cursor;
    ui.count.textContent = `${fmtInt(state.loaded)}${state.cursor ? "+" : ""}건`;
    if (!state.loaded) {
      ui.list.append(h("li", { className: "empty" }, bilingual("조건에 맞는 대화가 없습니다", "No conversations")));
    }
    showBanner(null);
    document.documentElement.dataset.listed = String(state.loaded);
    return true;
  } catch (error) {
    if (generation !== state.generation) return false;
    if (!handleAuthError(error)) showBanner(error);
    return false;
  } finally {
    ui.more.disabled = false;
  }
}

function listItem(item) {
  const priority = PRIORITIES[item.retention_priority] ? item.retention_priority : "other";
  const button = h(
    "button",
    {
      className: item.conversation_id === state.selected ? "conv selected" : "conv",
      attrs: { type: "button" },
      dataset: { id: item.conversation_id },
      on: { click: () => openConversation(item.conversation_id) },
    },
    h("time", { className: "conv-time", attrs: { datetime: item.last_message_at }, text: fmtDateTime(item.last_message_at) }),
    h("span", { className: "conv-summary", text: item.summary || "(요약 없음 · no summary)" }),
    h(
      "span",
      { className: "conv-meta" },
      h("span", { className: "chip", text: item.collection_name }),
      h("span", { className: `priority p-${priority}`, text: PRIORITIES[priority] || String(item.retention_priority) }),
      h("span", { className: "turns", text: `${fmtInt(item.total_turns)}턴 · turns` }),
      item.has_error ? h("span", { className: "flag flag-error", text: "에러 · error" }) : null,
    ),
  );
  return h("li", {}, button);
}

function readFilters() {
  const filters = {};
  for (const [key, value] of new FormData(ui.filters)) {
    const text = String(value).trim();
    if (text) filters[key] = text;
  }
  return filters;
}

ui.filters.addEventListener("submit", (event) => {
  event.preventDefault();
  state.filters = readFilters();
  loadList(false);
});

ui.filters.addEventListener("reset", () => {
  setTimeout(() => {
    state.filters = {};
    loadList(false);
  });
});

ui.more.addEventListener("click", () => loadList(true));

// ---------------------------------------------------------------- one conversation

function resetDetail() {
  state.selected = null;
  replaceChildren(ui.detail, h("p", { className: "placeholder" }, bilingual("대화를 선택하세요", "Select a conversation")));
}

async function openConversation(id) {
  state.selected = id;
  for (const node of ui.list.querySelectorAll("button.conv")) node.classList.toggle("selected", node.dataset.id === id);
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  replaceChildren(ui.detail, h("p", { className: "placeholder" }, bilingual("불러오는 중…", "Loading…")));
  try {
    const record = await getJSON(`/api/admin/conversations/${encodeURIComponent(id)}`, {}, state.token);
    if (state.selected !== id) return;
    renderDetail(record);
    document.documentElement.dataset.opened = id;
  } catch (error) {
    if (state.selected !== id || handleAuthError(error)) return;
    const notFound = error.status === 404;
    replaceChildren(
      ui.detail,
      h(
        "p",
        { className: "placeholder error-text" },
        notFound ? bilingual("대화를 찾을 수 없습니다", "Conversation not found") : `API 오류 · ${error.message}`,
      ),
    );
  }
}

function renderDetail(record) {
  const meta = record.metadata || {};
  const hasError = record.messages.some((m) => m.error);
  const pairs = [
    [["대화 ID", "Conversation"], record.conversation_id, "mono"],
    [["컬렉션", "Collection"], record.collection_name],
    [["사용자 해시", "User hash"], record.user_hash ?? DASH, "mono"],
    [["시작", "Started"], fmtDateTime(record.started_at)],
    [["마지막 메시지", "Last message"], fmtDateTime(record.last_message_at)],
    [["종료", "Closed"], fmtDateTime(record.closed_at)],
    [["턴 수", "Turns"], fmtInt(meta.total_turns)],
    [["샘플링", "Sampled"], meta.is_sampled === undefined ? DASH : meta.is_sampled ? "예 · yes" : "아니오 · no"],
    [["보존 우선순위", "Retention"], PRIORITIES[meta.retention_priority] || String(meta.retention_priority ?? DASH)],
  ];
  const known = new Set(["total_turns", "is_sampled", "retention_priority", "summary"]);
  for (const [key, value] of Object.entries(meta)) {
    if (!known.has(key)) pairs.push([[key, ""], typeof value === "object" ? JSON.stringify(value) : String(value), "mono"]);
  }
  const grid = h(
    "dl",
    { className: "meta-grid" },
    pairs.map(([[ko, en], value, cls]) =>
      h("div", { className: "meta-item" }, h("dt", {}, en ? bilingual(ko, en) : ko), h("dd", { className: cls || "", text: value })),
    ),
  );
  const chips = h(
    "div",
    { className: "detail-chips" },
    h("span", { className: "chip", text: record.collection_name }),
    PRIORITIES[meta.retention_priority]
      ? h("span", { className: `priority p-${meta.retention_priority}`, text: PRIORITIES[meta.retention_priority] })
      : null,
    hasError ? h("span", { className: "flag flag-error", text: "에러 · error" }) : null,
  );
  replaceChildren(
    ui.detail,
    h(
      "header",
      { className: "detail-head" },
      h("p", { className: "eyebrow" }, bilingual("요약", "Summary")),
      h("h2", { className: "detail-summary", text: meta.summary || "(요약 없음 · no summary)" }),
      chips,
      grid,
    ),
    h("ol", { className: "transcript", attrs: { "aria-label": "대화 내용 · Transcript" } }, record.messages.map(messageItem)),
  );
}

function messageItem(message) {
  const role = ROLES[message.role] ? message.role : "other";
  const [ko, en] = ROLES[role] || [String(message.role), ""];
  const docs = Array.isArray(message.retrieved_docs) ? message.retrieved_docs : [];
  return h(
    "li",
    { className: `msg ${role}`, dataset: { role } },
    h(
      "div",
      { className: "msg-head" },
      h("span", { className: "who" }, en ? bilingual(ko, en) : ko),
      h("time", { attrs: { datetime: message.timestamp }, title: message.timestamp, text: fmtDateTime(message.timestamp) }),
      message.error ? h("span", { className: "flag flag-error", text: "에러 · error" }) : null,
      message.is_regeneration ? h("span", { className: "flag flag-regen", text: "재생성 · regenerated" }) : null,
    ),
    h("div", { className: "bubble" }, h("p", { className: "msg-content", text: message.content })),
    feedbackList(message.feedback),
    docs.length
      ? h(
        "details",
        { className: "docs", attrs: { open: "" } },
        h("summary", {}, bilingual(`참고 문서 ${docs.length}건`, "Retrieved docs")),
        h("ol", {}, docs.map(docItem)),
      )
      : null,
  );
}

// Each answer's feedback (POST /v1/feedback): good or bad, with the user's comment if any.
function feedbackList(feedback) {
  if (!Array.isArray(feedback) || !feedback.length) return null;
  return h(
    "ul",
    { className: "feedback", attrs: { "aria-label": "피드백 · Feedback" } },
    feedback.map((f) => {
      const good = f.score > 0;
      return h(
        "li",
        { className: `fb ${good ? "fb-good" : "fb-bad"}`, dataset: { score: String(f.score) } },
        h("span", { className: "flag", text: good ? "👍 좋아요 · good" : "👎 별로예요 · bad" }),
        f.comment ? h("span", { className: "fb-comment", text: f.comment }) : null,
        h("time", { attrs: { datetime: f.created_at }, title: f.created_at, text: fmtDateTime(f.created_at) }),
      );
    }),
  );
}

function docItem(doc) {
  const title = doc.title || doc.doc_id || "(제목 없음 · untitled)";
  let source = null;
  if (doc.source) {
    source = h("span", { className: "doc-source", text: doc.source });
    try {
      const url = new URL(doc.source);
      if (url.protocol === "http:" || url.protocol === "https:") {
        source = h("a", {
          className: "doc-source",
          attrs: { href: url.href, target: "_blank", rel: "noopener noreferrer" },
          text: doc.source,
        });
      }
    } catch {
      // Not a URL: shown as text.
    }
  }
  return h(
    "li",
    { className: "doc" },
    h("span", { className: "doc-title", text: title }),
    typeof doc.score === "number" ? h("span", { className: "doc-score", text: doc.score.toFixed(3) }) : null,
    doc.doc_id && doc.title ? h("span", { className: "doc-id", text: doc.doc_id }) : null,
    source,
  );
}

// ---------------------------------------------------------------- start

async function start() {
  if (!state.token) {
    showLogin(null);
    return;
  }
  showWorkspace();
  loadCollections();
  if (!(await loadList(false))) return;
  let wanted = "";
  try {
    wanted = decodeURIComponent(location.hash.slice(1));
  } catch {
    // A malformed link: open nothing.
  }
  if (wanted) openConversation(wanted);
}

start();
