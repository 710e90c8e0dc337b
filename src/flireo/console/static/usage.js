// Usage: minutes and cost per day (hand-written SVG bars) from GET /usage.
import { get } from "./api.js";
import { field, fmtMoney, h, pageHeader } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function dayKey(d) {
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function perDay(logs, days, now = new Date()) {
  const buckets = new Map();
  for (let i = days - 1; i >= 0; i -= 1) {
    const d = new Date(now.getFullYear(), now.getMonth(), now.getDate() - i);
    buckets.set(dayKey(d), { day: dayKey(d), seconds: 0, cost: 0, calls: 0 });
  }
  for (const log of logs) {
    const b = buckets.get(dayKey(new Date(log.created_at)));
    if (!b) continue;
    b.seconds += log.duration_seconds || 0;
    b.cost += log.cost || 0;
    b.calls += 1;
  }
  return [...buckets.values()];
}

function barChart(title, rows, value, format, cls) {
  const width = 760;
  const height = 200;
  const left = 56;
  const bottom = 28;
  const top = 12;
  const plotW = width - left - 8;
  const plotH = height - top - bottom;
  const max = Math.max(...rows.map(value), 0) || 1;
  const bw = plotW / rows.length;
  const id = `chart-${cls}`;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: `chart ${cls}`, role: "img", "aria-labelledby": `${id}-t` });
  chart.append(svg("title", { id: `${id}-t` }, title));
  for (let i = 0; i <= 4; i += 1) {
    const y = top + plotH - (i / 4) * plotH;
    chart.append(
      svg("line", { x1: left, x2: width - 8, y1: y, y2: y, class: "grid" }),
      svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format((max * i) / 4)),
    );
  }
  rows.forEach((r, i) => {
    const v = value(r);
    const hgt = (v / max) * plotH;
    const x = left + i * bw;
    chart.append(svg("rect", { x: x + bw * 0.15, y: top + plotH - hgt, width: Math.max(1, bw * 0.7), height: hgt, class: "bar", "data-day": r.day }, svg("title", {}, `${r.day}: ${format(v)}`)));
    const every = Math.ceil(rows.length / 10);
    if (i % every === 0) chart.append(svg("text", { x: x + bw / 2, y: height - 8, "text-anchor": "middle", class: "axis" }, r.day.slice(5)));
  });
  return h("figure", { class: "card" }, h("figcaption", {}, title), h("div", { class: "chart-scroll" }, chart));
}

export async function render(root, _params, ctx) {
  const days = Number(ctx.query.get("days") || 30);
  const start = new Date();
  start.setHours(0, 0, 0, 0);
  start.setDate(start.getDate() - (days - 1));
  const logs = [];
  let summary = null;
  let account = null;
  for (let offset = 0, page = 0; page < 20; page += 1) {
    const r = await get("/usage", { start_date: start.toISOString(), limit: 1000, offset });
    summary = summary || r.summary;
    logs.push(...r.logs);
    offset += r.logs.length;
    if (!r.logs.length || offset >= r.pagination.total) break;
  }
  account = await get("/account").catch(() => null);
  const currency = (summary && summary.currency) || "USD";
  const rows = perDay(logs, days);

  const range = h(
    "select",
    { id: "usage-range" },
    [7, 30, 90].map((d) => h("option", { value: d, selected: d === days }, `Last ${d} days`)),
  );
  range.addEventListener("change", () => ctx.navigate(`#/usage?days=${range.value}`));

  const totalMinutes = rows.reduce((s, r) => s + r.seconds, 0) / 60;
  const totalCost = rows.reduce((s, r) => s + r.cost, 0);
  root.append(
    pageHeader("Usage", field("Period", range)),
    h(
      "section",
      { class: "card stats", "aria-label": "Totals" },
      h("div", {}, h("span", { class: "stat" }, totalMinutes.toFixed(1)), " minutes"),
      h("div", {}, h("span", { class: "stat" }, fmtMoney(totalCost, currency)), " cost"),
      h("div", {}, h("span", { class: "stat" }, String(logs.length)), " calls"),
      account ? h("div", {}, h("span", { class: "stat" }, String(account.minutes_balance)), " minutes left") : null,
    ),
    barChart("Minutes per day", rows, (r) => r.seconds / 60, (v) => v.toFixed(v < 10 ? 1 : 0), "minutes"),
    barChart(`Cost per day (${currency})`, rows, (r) => r.cost, (v) => v.toFixed(v < 1 ? 3 : 2), "cost"),
    h(
      "details",
      { class: "card" },
      h("summary", {}, "Numbers per day"),
      h(
        "table",
        {},
        h("caption", { class: "sr-only" }, "Usage per day"),
        h("thead", {}, h("tr", {}, ["Day", "Calls", "Minutes", "Cost"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, h("td", {}, r.day), h("td", {}, String(r.calls)), h("td", {}, (r.seconds / 60).toFixed(1)), h("td", {}, fmtMoney(r.cost, currency))))),
      ),
    ),
  );
}
