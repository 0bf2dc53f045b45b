// The dashboard's insight views: retrieval quality, the FAQ, suggestions, and the banner of
// firing alerts. Each render function takes an API answer (contract shape) and fills its part
// of the page; like everything else here, API text only ever becomes text nodes.
import { bilingual, DASH, fmtDateTime, fmtDecimal, fmtInt, fmtMs, fmtPct, h, replaceChildren } from "./common.js";

const $ = (id) => document.getElementById(id);

/** A best score (0..1) with two decimals, or a dash. */
export function fmtScore(value) {
  return value === null || value === undefined ? DASH : Number(value).toFixed(2);
}

function emptyItem(ko, en, tag = "li") {
  return h(tag, { className: "empty" }, bilingual(ko, en));
}

function setFigure(node, text, value) {
  node.textContent = text;
  node.dataset.value = value === null || value === undefined ? "" : String(value);
}

// ---------------------------------------------------------------- alerts

const RULES = {
  error_rate: ["에러율", "error rate"],
  latency_p95: ["p95 응답시간", "p95 latency"],
  low_score_rate: ["낮은 검색 점수 비율", "low-score rate"],
  volume_drop: ["쿼리량 급감", "volume drop"],
  storage_unavailable: ["저장 불가", "storage unavailable"],
};

/** An alert's value or threshold in the unit of its rule. */
export function fmtAlertValue(rule, value) {
  if (value === null || value === undefined) return DASH;
  if (rule === "error_rate" || rule === "low_score_rate") return fmtPct(value);
  if (rule === "latency_p95") return fmtMs(value);
  if (rule === "storage_unavailable") return `${fmtInt(value)} s`;
  return Number.isInteger(value) ? fmtInt(value) : fmtDecimal(value);
}

function since(iso) {
  const started = new Date(iso).getTime();
  if (Number.isNaN(started)) return "";
  const minutes = Math.max(0, Math.round((Date.now() - started) / 60000));
  if (minutes < 60) return `${minutes}분 · ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours}시간 ${minutes % 60}분 · ${hours} h ${minutes % 60} min`;
}

/** The banner of what is firing now (shown on every view), or a quiet "nothing firing". */
export function renderAlerts(items) {
  const node = $("alerts");
  const firing = (items || []).filter((item) => item.state === "firing");
  node.dataset.firing = String(firing.length);
  node.classList.toggle("firing", firing.length > 0);
  if (!firing.length) {
    replaceChildren(node, h("p", { className: "alerts-ok" }, h("span", { className: "ok-dot", attrs: { "aria-hidden": "true" } }),
      bilingual("발생 중인 알림 없음", "Nothing firing")));
    return;
  }
  const rows = firing.map((item) => {
    const [ko, en] = RULES[item.rule] || [item.rule, item.rule];
    return h(
      "li",
      { className: "alert", dataset: { rule: item.rule, collection: item.collection_name ?? "" }, title: item.message || "" },
      h("span", { className: "alert-rule" }, bilingual(ko, en)),
      h("span", { className: "alert-scope", text: item.collection_name ?? "전체 컬렉션 · all collections" }),
      h("span", { className: "alert-value" },
        h("strong", { className: "alert-now", text: fmtAlertValue(item.rule, item.value) }),
        h("span", { className: "muted", text: ` / 기준 threshold ${fmtAlertValue(item.rule, item.threshold)}` })),
      h("span", { className: "alert-since" },
        h("time", { attrs: { datetime: item.started_at }, text: fmtDateTime(item.started_at) }),
        h("span", { className: "muted", text: ` 부터 · since (${since(item.started_at)})` })),
    );
  });
  replaceChildren(
    node,
    h("p", { className: "alerts-title" }, h("strong", { text: `발생 중인 알림 ${firing.length}건` }),
      h("span", { className: "en", text: `${firing.length} firing` })),
    h("ul", { className: "alert-list" }, rows),
  );
}

// ---------------------------------------------------------------- quality

/** The quality view from a /api/analytics/quality answer; ``choose(name)`` filters by collection. */
export function renderQuality(q, choose) {
  const threshold = q.low_score_threshold;
  setFigure($("q-low"), fmtPct(q.low_score_rate), q.low_score_rate);
  setFigure($("q-noresult"), fmtPct(q.no_result_rate), q.no_result_rate);
  const p = q.best_score_percentiles || {};
  setFigure($("q-percentiles"), [p.p10, p.p50, p.p90].map(fmtScore).join(" · "), p.p50);
  const fb = q.feedback || { positive: 0, negative: 0 };
  setFigure($("q-feedback"), `+${fmtInt(fb.positive)} / −${fmtInt(fb.negative)}`, fb.positive + fb.negative);
  $("q-answers").textContent = `답변 ${fmtInt(q.answers)} · 검색 포함 ${fmtInt(q.answers_with_retrieval)} · with retrieval`;
  renderHistogram(q.best_score_histogram || [], threshold);
  renderRates(q);
  renderQualityTable(q.by_collection || [], choose);
  renderGaps(q.knowledge_gaps || [], q.knowledge_gaps_pending === true);
}

function renderHistogram(buckets, threshold) {
  const node = $("q-histogram");
  const total = buckets.reduce((sum, b) => sum + b.count, 0);
  node.dataset.total = String(total);
  if (!total) {
    replaceChildren(node, emptyItem("아직 검색 점수가 있는 답변이 없습니다", "No answers with retrieval scores yet"));
    $("q-hist-note").textContent = "";
    return;
  }
  const max = Math.max(1, ...buckets.map((b) => b.count));
  node.replaceChildren(...buckets.map((b) => {
    const fill = h("span", { className: "hist-fill" });
    fill.style.height = `${((b.count / max) * 100).toFixed(1)}%`;
    const low = b.to <= threshold + 1e-9;
    return h(
      "li",
      { className: low ? "hist-bar low" : "hist-bar", dataset: { from: b.from, count: b.count },
        title: `${b.from.toFixed(1)}–${b.to.toFixed(1)}: ${fmtInt(b.count)} (${fmtPct(b.count / total)})` },
      h("span", { className: "hist-count", text: fmtInt(b.count) }),
      h("span", { className: "hist-track" }, fill),
      h("span", { className: "hist-label", text: b.from.toFixed(1) }),
    );
  }));
  replaceChildren($("q-hist-note"), bilingual(`붉은 막대: 기준 ${threshold} 미만`, `red: best score under the threshold ${threshold}`));
}

function renderRates(q) {
  const regen = q.regeneration_rate || {};
  const used = (q.reranking && q.reranking.used) || {};
  const notUsed = (q.reranking && q.reranking.not_used) || {};
  const row = (ko, en, value, key) => [
    h("dt", {}, bilingual(ko, en)),
    h("dd", { dataset: { key }, text: value }),
  ];
  replaceChildren(
    $("q-rates"),
    row("재생성 (낮은 점수)", "regenerated, low score", fmtPct(regen.low_score), "regen-low"),
    row("재생성 (그 외)", "regenerated, other", fmtPct(regen.other), "regen-other"),
    row("리랭킹 사용: 낮은 점수", "reranked: low-score rate",
      `${fmtPct(used.low_score_rate)} (${fmtInt(used.answers)})`, "rerank-used"),
    row("리랭킹 미사용: 낮은 점수", "not reranked: low-score rate",
      `${fmtPct(notUsed.low_score_rate)} (${fmtInt(notUsed.answers)})`, "rerank-not-used"),
  );
}

function renderQualityTable(rows, choose) {
  const body = document.querySelector("#q-collections tbody");
  const out = rows.map((c) => h(
    "tr",
    { dataset: { name: c.collection_name, answers: c.answers } },
    h("td", { className: "query" },
      h("button", { className: "link", attrs: { type: "button" }, text: c.collection_name,
        title: "이 컬렉션만 보기 · filter by this collection", on: { click: () => choose(c.collection_name) } })),
    h("td", { className: "num", text: fmtInt(c.answers) }),
    h("td", { className: c.low_score_rate >= 0.3 ? "num bad" : "num", text: fmtPct(c.low_score_rate) }),
    h("td", { className: "num", text: fmtPct(c.no_result_rate) }),
    h("td", { className: "num", text: fmtScore(c.p50_best_score) }),
    h("td", { className: "num", text: fmtPct(c.regeneration_rate) }),
    h("td", { className: "num", text: fmtPct(c.error_rate) }),
    h("td", { className: "num", text: fmtPct(c.negative_feedback_rate) }),
  ));
  if (!out.length) {
    out.push(h("tr", { className: "empty" }, h("td", { attrs: { colspan: 8 } }, bilingual("아직 답변이 없습니다", "No answers yet"))));
  }
  body.replaceChildren(...out);
}

function variantsBlock(variants) {
  if (!variants || variants.length < 2) return null;
  return h(
    "details",
    { className: "variants" },
    h("summary", {}, bilingual(`표현 ${variants.length}개`, `${variants.length} variants`)),
    h("ul", {}, variants.map((v) => h("li", { className: "variant", dataset: { count: v.count } },
      h("span", { className: "variant-text", text: v.text }), h("span", { className: "muted", text: ` ×${fmtInt(v.count)}` })))),
  );
}

function renderGaps(gaps, pending) {
  const node = $("q-gaps");
  const rows = gaps.map((g) => h(
    "li",
    { className: "entry gap", dataset: { count: g.count } },
    h("div", { className: "entry-head" },
      h("h3", { className: "entry-title", text: g.question }),
      h("span", { className: "entry-stats" },
        h("span", { className: "pill", text: g.collection_name ?? "전체 · all" }),
        h("span", { text: `${fmtInt(g.count)}회 · ×${fmtInt(g.count)}` }),
        h("span", { className: "bad", text: `평균 점수 avg ${fmtScore(g.avg_best_score)}` }))),
    variantsBlock(g.variants),
  ));
  // Pending: this range's questions are still being grouped; the next refresh brings the gaps.
  if (!rows.length && pending) rows.push(emptyItem("질문 묶는 중…", "Grouping this range's questions: the gaps follow in a few seconds"));
  if (!rows.length && !pending) rows.push(emptyItem("찾은 지식 공백 없음", "No knowledge gaps found: no frequent question was answered from low scores"));
  node.replaceChildren(...rows);
}

// ---------------------------------------------------------------- FAQ

/** Where the admin page shows the conversation of an FAQ answer (null: not known). */
export function conversationLink(item) {
  const id = item.answer_conversation_id || item.conversation_id;
  return id ? `/admin/conversations#${encodeURIComponent(id)}` : null;
}

function answerBlock(item) {
  if (item.answer === null || item.answer === undefined) {
    return h("p", { className: "answer none" }, bilingual("저장된 답변 없음", "no stored answer"));
  }
  const link = conversationLink(item);
  return h(
    "div",
    { className: "answer" },
    h("p", { className: "answer-label" }, bilingual("대표 답변", "stored answer")),
    h("p", { className: "answer-text", text: item.answer }),
    h("p", { className: "answer-meta" },
      link ? h("a", { className: "answer-link", attrs: { href: link } }, bilingual("대화 보기", "open the conversation")) : null,
      item.answer_log_id ? h("span", { className: "mono muted", text: ` log ${item.answer_log_id}` }) : null),
  );
}

/** The FAQ view from a /api/analytics/faq answer. */
export function renderFaq(items) {
  const rows = (items || []).map((item, index) => h(
    "li",
    { className: "entry faq", dataset: { count: item.count } },
    h("div", { className: "entry-head" },
      h("span", { className: "entry-rank", text: index + 1 }),
      h("h3", { className: "entry-title", text: item.question }),
      h("span", { className: "entry-stats" },
        h("span", { className: "faq-count", text: `${fmtInt(item.count)}회 · ×${fmtInt(item.count)}` }),
        h("span", { className: "muted", text: fmtPct(item.share) }),
        h("span", { className: "muted", text: `점수 score ${fmtScore(item.avg_best_score)}` }))),
    h("p", { className: "pills" }, Object.entries(item.collections || {}).map(([name, count]) =>
      h("span", { className: "pill", dataset: { name }, text: `${name} ${fmtInt(count)}` }))),
    variantsBlock(item.variants),
    answerBlock(item),
  ));
  if (!rows.length) {
    rows.push(emptyItem("아직 자주 묻는 질문이 없습니다", "No FAQ yet: no question has been asked often enough in this range"));
  }
  $("faq-list").replaceChildren(...rows);
}

// ---------------------------------------------------------------- suggestions

const KINDS = {
  low_retrieval: ["낮은 검색 점수", "low retrieval scores"],
  knowledge_gap: ["지식 공백", "knowledge gap"],
  high_regeneration: ["잦은 재생성", "frequent regeneration"],
  slow_responses: ["느린 응답", "slow responses"],
  errors: ["에러", "errors"],
  negative_feedback: ["부정 피드백", "negative feedback"],
};
const SEVERITY = { high: ["높음", "high"], medium: ["중간", "medium"], low: ["낮음", "low"] };

function evidenceValue(key, value) {
  if (typeof value === "number") {
    if (/(rate|share)$/.test(key)) return fmtPct(value);
    if (/_ms$/.test(key)) return fmtMs(value);
    return Number.isInteger(value) ? fmtInt(value) : value.toFixed(3);
  }
  if (value === null || value === undefined) return DASH;
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The suggestions view from a /api/analytics/suggestions answer. */
export function renderSuggestions(items) {
  const rows = (items || []).map((item) => {
    const [ko, en] = KINDS[item.kind] || [item.kind, item.kind];
    const [sko, sen] = SEVERITY[item.severity] || [item.severity, item.severity];
    const evidence = Object.entries(item.evidence || {});
    return h(
      "li",
      { className: `entry suggestion severity-${item.severity}`, dataset: { kind: item.kind, severity: item.severity } },
      h("div", { className: "entry-head" },
        h("span", { className: "severity", text: `${sko} · ${sen}` }),
        h("span", { className: "entry-kind" }, bilingual(ko, en)),
        h("span", { className: "pill", text: item.collection_name ?? "전체 · all" })),
      h("p", { className: "suggestion-message", text: item.message }),
      evidence.length
        ? h("dl", { className: "evidence" }, evidence.map(([key, value]) => [
          h("dt", { text: key }), h("dd", { dataset: { key }, text: evidenceValue(key, value) })]))
        : null,
    );
  });
  if (!rows.length) {
    rows.push(emptyItem("지금은 제안할 것이 없습니다", "Nothing to suggest: no measure crossed its threshold in this range"));
  }
  $("suggestion-list").replaceChildren(...rows);
}
