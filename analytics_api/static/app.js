// The analytics dashboard: an overview (cards, timeline, top queries, usage by collection) and
// the insight views (quality, FAQ, suggestions, in insights.js), all filtered by collection and
// date range, with the banner of firing alerts on every view; refreshed every 5 seconds.
import {
  addDays, bilingual, clock, daysBetween, DASH, fmtDecimal, fmtInt, fmtMs, fmtPct, getJSON, h, isDate,
  replaceChildren,
} from "./common.js";
import { renderAlerts, renderFaq, renderQuality, renderSuggestions } from "./insights.js";

const REFRESH_MS = 5000;
const TOP_QUERIES = 10;
const MAX_TIMELINE_DAYS = 366;
const CHART_HEIGHT = 280;
const VIEWS = ["overview", "quality", "faq", "suggestions"];

const $ = (id) => document.getElementById(id);
const ui = {
  filters: $("filters"),
  collection: $("f-collection"),
  from: $("f-from"),
  to: $("f-to"),
  quick: document.querySelectorAll(".quick [data-range]"),
  tabs: document.querySelectorAll("#views [data-view]"),
  banner: $("banner"),
  updated: $("updated"),
  live: $("live-toggle"),
  queries: $("card-queries"),
  queriesSub: $("card-queries-sub"),
  latency: $("card-latency"),
  latencySub: $("card-latency-sub"),
  users: $("card-users"),
  errors: $("kpi-errors"),
  regen: $("kpi-regen"),
  tokens: $("kpi-tokens"),
  p95: $("kpi-p95"),
  period: $("timeline-period"),
  chart: $("timeline-chart"),
  topBody: document.querySelector("#top-queries tbody"),
  collections: $("collection-chart"),
};

const state = {
  collection: "",
  from: null,
  to: null,
  // No range chosen yet: ask for the API's default (the last 7 days), which moves with the clock.
  followDefault: true,
  today: null, // today in the service's time zone, learnt from its answers
  live: true,
  view: "overview",
  generation: 0,
  timer: null,
};

// ---------------------------------------------------------------- loading

async function refresh() {
  clearTimeout(state.timer);
  const generation = ++state.generation;
  const current = () => generation === state.generation;
  ui.filters.setAttribute("aria-busy", "true");
  try {
    const overview = state.view === "overview";
    const params = { collection_name: state.collection, top: overview ? TOP_QUERIES : 1 };
    if (!state.followDefault) Object.assign(params, { date_from: state.from, date_to: state.to });
    const summary = await getJSON("/api/analytics/summary", params);
    if (!current()) return;
    if (state.followDefault) {
      state.from = summary.date_from;
      state.to = summary.date_to;
      state.today = summary.date_to;
    }
    const [known, alerts, render] = await Promise.all([
      getJSON("/api/analytics/collections"),
      getJSON("/api/analytics/alerts"),
      overview ? loadOverview(summary) : loadInsight(summary),
    ]);
    if (!current()) return;
    renderFilters(known.collections, summary);
    renderAlerts(alerts.items);
    render(known);
    showBanner(null);
    ui.updated.replaceChildren(...bilingual(`업데이트 ${clock()}`, "updated"));
    const loaded = `${state.collection}|${summary.date_from}|${summary.date_to}`;
    if (overview) document.documentElement.dataset.loaded = loaded;
    document.documentElement.dataset.rendered = `${state.view}|${loaded}`;
  } catch (error) {
    if (!current()) return;
    showBanner(error);
  } finally {
    if (current()) {
      ui.filters.removeAttribute("aria-busy");
      schedule();
    }
  }
}

/** The overview's answers; resolves to the function that renders them. */
async function loadOverview(summary) {
  const [timeline, overall] = await Promise.all([
    loadTimeline(summary.date_from, summary.date_to),
    state.collection
      ? getJSON("/api/analytics/summary", { date_from: summary.date_from, date_to: summary.date_to, top: 1 })
      : summary,
  ]);
  return (known) => {
    renderCards(summary);
    renderTimeline(timeline.period, timeline.points, summary.date_from);
    renderTopQueries(summary);
    renderCollections(overall.collections, known.collections);
  };
}

/** The chosen insight view's answer over the summary's range; resolves to its renderer. */
async function loadInsight(summary) {
  const view = state.view;
  const range = { collection_name: state.collection, date_from: summary.date_from, date_to: summary.date_to };
  const path = { quality: "/api/analytics/quality", faq: "/api/analytics/faq", suggestions: "/api/analytics/suggestions" };
  const answer = await getJSON(path[view], range);
  if (view === "quality") return () => renderQuality(answer, chooseCollection);
  if (view === "faq") return () => renderFaq(answer.items);
  return () => renderSuggestions(answer.items);
}

function showView() {
  for (const name of VIEWS) document.getElementById(`view-${name}`).hidden = name !== state.view;
  for (const tab of ui.tabs) {
    const active = tab.dataset.view === state.view;
    tab.classList.toggle("active", active);
    tab.setAttribute("aria-current", active ? "page" : "false");
  }
  // The overview's chart measured a hidden container: give it the width it has now.
  if (state.view === "overview" && chart) chart.setSize({ width: chartWidth(), height: CHART_HEIGHT });
}

/** The timeline of the chosen range: hourly for a single day, else daily; trimmed to the range. */
async function loadTimeline(from, to) {
  if (!state.today) {
    const probe = await getJSON("/api/analytics/timeline", { period: "daily", days: 1 });
    noteToday(probe.points);
  }
  const period = from === to ? "hourly" : "daily";
  const days = Math.min(MAX_TIMELINE_DAYS, Math.max(1, daysBetween(from, state.today || to) + 1));
  const answer = await getJSON("/api/analytics/timeline", { collection_name: state.collection, period, days });
  noteToday(answer.points);
  const points = answer.points.filter((point) => {
    const day = String(point.start).slice(0, 10);
    return day >= from && day <= to;
  });
  return { period, points };
}

function noteToday(points) {
  const last = points.length ? String(points[points.length - 1].start).slice(0, 10) : null;
  if (isDate(last)) state.today = last;
}

function schedule() {
  clearTimeout(state.timer);
  if (state.live && !document.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

function showBanner(error) {
  if (!error) {
    ui.banner.hidden = true;
    ui.banner.replaceChildren();
    return;
  }
  const reachable = error.status !== undefined;
  replaceChildren(
    ui.banner,
    h("strong", { text: reachable ? "API 오류 · API error" : "API에 연결할 수 없습니다 · Cannot reach the API" }),
    h("span", { text: ` ${error.message}` }),
  );
  ui.banner.hidden = false;
}

// ---------------------------------------------------------------- rendering

function renderFilters(known, summary) {
  const names = known.map((c) => c.name);
  if (state.collection && !names.includes(state.collection)) names.push(state.collection);
  const existing = [...ui.collection.options].slice(1).map((o) => o.value);
  if (existing.join("\n") !== names.join("\n")) {
    ui.collection.replaceChildren(
      h("option", { attrs: { value: "" }, text: "전체 컬렉션 · All collections" }),
      ...names.map((name) => h("option", { attrs: { value: name }, text: name })),
    );
  }
  ui.collection.value = state.collection;
  if (document.activeElement !== ui.from) ui.from.value = summary.date_from;
  if (document.activeElement !== ui.to) ui.to.value = summary.date_to;
  for (const chip of ui.quick) {
    const span = Number(chip.dataset.range);
    const active = span === 7
      ? state.followDefault
      : !state.followDefault && state.to === state.today && daysBetween(state.from, state.to) + 1 === span;
    chip.classList.toggle("active", active);
    chip.setAttribute("aria-pressed", String(active));
  }
}

function setFigure(node, text, value) {
  node.textContent = text;
  node.dataset.value = value === null || value === undefined ? "" : String(value);
}

function renderCards(s) {
  // The card says "daily": its big figure is per day (the day itself, or the range's
  // mean per day); the range total is the small print.
  const days = daysBetween(s.date_from, s.date_to) + 1;
  const perDay = s.total_queries / days;
  setFigure(ui.queries, days === 1 ? fmtInt(s.total_queries) : fmtDecimal(perDay), perDay);
  ui.queries.dataset.total = String(s.total_queries);
  replaceChildren(
    ui.queriesSub,
    bilingual(
      days === 1 ? `${s.date_from} 하루` : `하루 평균 · ${days}일 합계 ${fmtInt(s.total_queries)}`,
      days === 1 ? "one day" : `mean per day · ${days}-day total`,
    ),
  );
  setFigure(ui.latency, fmtMs(s.avg_response_time_ms), s.avg_response_time_ms);
  ui.latencySub.textContent = `p50 ${fmtMs(s.p50_response_time_ms)} · p99 ${fmtMs(s.p99_response_time_ms)}`;
  setFigure(ui.users, fmtInt(s.unique_sessions), s.unique_sessions);
  setFigure(ui.errors, `${fmtPct(s.error_rate)} (${fmtInt(s.error_count)})`, s.error_count);
  setFigure(ui.regen, `${fmtPct(s.regeneration_rate)} (${fmtInt(s.regeneration_count)})`, s.regeneration_count);
  setFigure(ui.tokens, fmtInt(s.total_tokens), s.total_tokens);
  setFigure(ui.p95, fmtMs(s.p95_response_time_ms), s.p95_response_time_ms);
}

function renderTopQueries(s) {
  const rows = s.top_queries.map((item, index) => {
    const share = s.total_queries > 0 ? item.count / s.total_queries : 0;
    const fill = h("span", { className: "share-fill" });
    fill.style.width = `${Math.min(100, share * 100).toFixed(1)}%`;
    return h(
      "tr",
      { dataset: { count: item.count } },
      h("td", { className: "num rank", text: index + 1 }),
      h("td", { className: "query", title: item.query, text: item.query }),
      h("td", { className: "num count", text: fmtInt(item.count) }),
      h("td", { className: "share-col" },
        h("span", { className: "share" }, h("span", { className: "share-track" }, fill),
          h("span", { className: "share-text", text: fmtPct(share) }))),
    );
  });
  if (!rows.length) {
    rows.push(h("tr", { className: "empty" }, h("td", { attrs: { colspan: 4 } }, bilingual("데이터 없음", "No data"))));
  }
  ui.topBody.replaceChildren(...rows);
}

function renderCollections(counts, known) {
  const totals = new Map(known.map((c) => [c.name, 0]));
  for (const [name, count] of Object.entries(counts || {})) totals.set(name, count);
  const entries = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const sum = entries.reduce((acc, [, count]) => acc + count, 0);
  const max = Math.max(1, ...entries.map(([, count]) => count));
  const rows = entries.map(([name, count]) => {
    const fill = h("span", { className: "bar-fill" });
    fill.style.width = `${((count / max) * 100).toFixed(1)}%`;
    const selected = name === state.collection;
    return h(
      "li",
      { className: selected ? "bar-row selected" : "bar-row", dataset: { name, count } },
      h(
        "button",
        {
          attrs: { type: "button", "aria-pressed": String(selected) },
          title: selected ? "필터 해제 · clear filter" : "이 컬렉션만 보기 · filter by this collection",
          on: { click: () => chooseCollection(selected ? "" : name) },
        },
        h("span", { className: "bar-name", text: name }),
        h("span", { className: "bar-track" }, fill),
        h("span", { className: "bar-value", text: `${fmtInt(count)} · ${fmtPct(sum ? count / sum : 0)}` }),
      ),
    );
  });
  if (!rows.length) rows.push(h("li", { className: "empty" }, bilingual("데이터 없음", "No data")));
  ui.collections.replaceChildren(...rows);
}

// ---------------------------------------------------------------- timeline chart (uPlot)

let chart = null;
let chartShape = "";
let chartLabels = { short: [], full: [], latest: 0 };

const COLORS = { queries: "#4f46e5", errors: "#e11d48", latency: "#d97706", grid: "#eceef3", axis: "#6b7280" };
const COUNT_INCRS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6];
const MS_INCRS = [50, 100, 200, 250, 500, 1e3, 2e3, 2.5e3, 5e3, 1e4, 2e4, 3e4, 6e4, 1.2e5, 3e5];

function shortMs(value) {
  return value >= 1000 ? `${(value / 1000).toFixed(value % 1000 ? 1 : 0)}s` : `${value}ms`;
}

/** Legend values: the hovered bucket, or the latest one while the cursor is away. */
function legendValue(format) {
  return (u, value, series, index) => format(index == null ? u.data[series][chartLabels.latest] ?? null : value);
}

function chartOptions(width, count) {
  const font = '12px system-ui, -apple-system, "Segoe UI", "Apple SD Gothic Neo", "Noto Sans KR", sans-serif';
  const axis = { stroke: COLORS.axis, font, ticks: { show: false }, grid: { stroke: COLORS.grid, width: 1 } };
  return {
    width,
    height: CHART_HEIGHT,
    padding: [16, 8, 0, 4],
    cursor: { drag: { x: false, y: false }, points: { size: 7 } },
    legend: { live: true },
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(0.5, count - 0.5)] },
      q: { range: (u, min, max) => [0, Math.max(4, Math.ceil((max || 0) * 1.15))] },
      ms: { range: (u, min, max) => [0, Math.max(500, (max || 0) * 1.15)] },
    },
    axes: [
      {
        ...axis,
        grid: { show: false },
        splits: (u) => {
          const step = Math.max(1, Math.ceil(count / Math.max(1, Math.floor(u.bbox.width / devicePixelRatio / 64))));
          const out = [];
          for (let i = 0; i < count; i += step) out.push(i);
          return out;
        },
        values: (u, splits) => splits.map((i) => chartLabels.short[i] ?? ""),
      },
      { ...axis, scale: "q", size: 52, incrs: COUNT_INCRS, values: (u, splits) => splits.map((v) => fmtInt(v)) },
      { ...axis, scale: "ms", side: 1, size: 56, grid: { show: false }, incrs: MS_INCRS,
        values: (u, splits) => splits.map(shortMs) },
    ],
    series: [
      {
        label: "시각 · Time",
        value: (u, v, s, i) => (i == null ? `${chartLabels.full[chartLabels.latest] ?? DASH} (최근 · latest)` : chartLabels.full[i]),
      },
      {
        label: "쿼리 · Queries",
        scale: "q",
        stroke: COLORS.queries,
        fill: "rgba(79, 70, 229, 0.78)",
        width: 0,
        paths: uPlot.paths.bars({ size: [0.62, 56], gap: 2 }),
        points: { show: false },
        value: legendValue(fmtInt),
      },
      {
        label: "에러 · Errors",
        scale: "q",
        stroke: COLORS.errors,
        width: 2,
        points: { show: true, size: 6, fill: COLORS.errors },
        value: legendValue((v) => fmtInt(v ?? 0)),
      },
      {
        label: "평균 응답 · Avg",
        scale: "ms",
        stroke: COLORS.latency,
        width: 2,
        spanGaps: true,
        points: { show: true, size: 5, fill: "#fff" },
        value: legendValue(fmtMs),
      },
      {
        label: "p95",
        scale: "ms",
        stroke: COLORS.latency,
        width: 1.5,
        dash: [5, 4],
        spanGaps: true,
        points: { show: false },
        value: legendValue(fmtMs),
      },
    ],
  };
}

/** The chart's slots: the daily points, or the 24 hours of the one chosen day (hours to come stay empty). */
function timelineSlots(period, points, day) {
  if (period !== "hourly") {
    return points.map((p) => ({ short: String(p.start).slice(5, 10), full: String(p.start).slice(0, 10), point: p }));
  }
  const byHour = new Map(points.map((p) => [String(p.start).slice(11, 13), p]));
  return Array.from({ length: 24 }, (_, hour) => {
    const hh = String(hour).padStart(2, "0");
    return { short: `${hh}:00`, full: `${day} ${hh}:00`, point: byHour.get(hh) ?? null };
  });
}

function renderTimeline(period, points, day) {
  ui.period.textContent = period === "hourly" ? "시간별 · hourly" : "일별 · daily";
  const slots = timelineSlots(period, points, day);
  ui.chart.dataset.period = period;
  ui.chart.dataset.points = String(slots.length);
  let latest = slots.length - 1;
  while (latest > 0 && !slots[latest].point) latest -= 1;
  chartLabels = { short: slots.map((s) => s.short), full: slots.map((s) => s.full), latest };
  const field = (name) => slots.map((s) => (s.point ? s.point[name] : null));
  const data = [
    slots.map((_, i) => i),
    field("total_queries"),
    // Errors are drawn as dots where there are some, not as a line along zero.
    slots.map((s) => (s.point && s.point.error_count ? s.point.error_count : null)),
    field("avg_response_time_ms"),
    field("p95_response_time_ms"),
  ];
  if (typeof uPlot === "undefined") {
    replaceChildren(ui.chart, h("p", { className: "empty" }, bilingual("차트를 불러오지 못했습니다", "chart library missing")));
    return;
  }
  const shape = `${period}|${slots.length}`;
  if (chart && shape === chartShape) {
    chart.setData(data);
    return;
  }
  if (chart) chart.destroy();
  ui.chart.replaceChildren();
  chartShape = shape;
  chart = new uPlot(chartOptions(chartWidth(), slots.length), data, ui.chart);
}

function chartWidth() {
  return Math.max(320, ui.chart.clientWidth);
}

new ResizeObserver(() => {
  if (chart) chart.setSize({ width: chartWidth(), height: CHART_HEIGHT });
}).observe(ui.chart);

// ---------------------------------------------------------------- interaction

function syncUrl() {
  const query = new URLSearchParams();
  if (state.view !== "overview") query.set("view", state.view);
  if (state.collection) query.set("collection_name", state.collection);
  if (!state.followDefault) {
    query.set("date_from", state.from);
    query.set("date_to", state.to);
  }
  const search = query.toString();
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function chooseCollection(name) {
  state.collection = name;
  ui.collection.value = name;
  syncUrl();
  refresh();
}

function chooseRange(from, to) {
  state.followDefault = false;
  state.from = from;
  state.to = to;
  syncUrl();
  refresh();
}

ui.collection.addEventListener("change", () => chooseCollection(ui.collection.value));

ui.from.addEventListener("change", () => {
  if (!isDate(ui.from.value)) return;
  const to = isDate(ui.to.value) && ui.to.value >= ui.from.value ? ui.to.value : ui.from.value;
  chooseRange(ui.from.value, to);
});

ui.to.addEventListener("change", () => {
  if (!isDate(ui.to.value)) return;
  const from = isDate(ui.from.value) && ui.from.value <= ui.to.value ? ui.from.value : ui.to.value;
  chooseRange(from, ui.to.value);
});

for (const chip of ui.quick) {
  chip.addEventListener("click", () => {
    const span = Number(chip.dataset.range);
    if (span === 7 || !state.today) {
      state.followDefault = true;
      syncUrl();
      refresh();
    } else {
      chooseRange(addDays(state.today, 1 - span), state.today);
    }
  });
}

ui.filters.addEventListener("submit", (event) => event.preventDefault());

for (const tab of ui.tabs) {
  tab.addEventListener("click", () => {
    if (tab.dataset.view === state.view) return;
    state.view = tab.dataset.view;
    showView();
    syncUrl();
    refresh();
  });
}

ui.live.addEventListener("click", () => {
  state.live = !state.live;
  ui.live.setAttribute("aria-pressed", String(state.live));
  ui.live.classList.toggle("paused", !state.live);
  if (state.live) refresh();
  else {
    clearTimeout(state.timer);
    ui.updated.replaceChildren(...bilingual("일시정지", "paused"));
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && state.live) refresh();
});

// ---------------------------------------------------------------- start

const initial = new URLSearchParams(location.search);
state.collection = initial.get("collection_name") || "";
state.view = VIEWS.includes(initial.get("view")) ? initial.get("view") : "overview";
showView();
if (isDate(initial.get("date_from")) && isDate(initial.get("date_to")) && initial.get("date_from") <= initial.get("date_to")) {
  state.followDefault = false;
  state.from = initial.get("date_from");
  state.to = initial.get("date_to");
}
refresh();
