// Per-turn latency waterfall in hand-written SVG: an overview track over the
// recording's timeline (one marker per turn, the player's position as a line)
// and one row per turn with its parts measured from the end of the caller's
// turn: STT, LLM first token, TTS first byte, first audio.
import { fmtClock, h } from "./ui.js";

const NS = "http://www.w3.org/2000/svg";
const PARTS = [
  { key: "stt_ms", label: "STT", cls: "wf-stt" },
  { key: "llm_first_token_ms", label: "LLM first token", cls: "wf-llm" },
  { key: "tts_first_byte_ms", label: "TTS first byte", cls: "wf-tts" },
];

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Where a turn sits on the recording (seconds): the documented offset when present. */
export function turnStart(t) {
  for (const key of ["start_s", "end_of_turn_s", "seconds_from_start"]) {
    if (typeof t[key] === "number") return t[key];
  }
  return 0;
}

/** Segments of one turn in ms from its origin (end of the caller's turn). */
export function segments(t) {
  const out = [];
  const stt = t.stt_ms ?? 0;
  if (t.stt_ms !== null && t.stt_ms !== undefined) out.push({ ...PARTS[0], from: 0, to: t.stt_ms });
  if (t.llm_first_token_ms !== null && t.llm_first_token_ms !== undefined) out.push({ ...PARTS[1], from: stt, to: stt + t.llm_first_token_ms });
  if (t.tts_first_byte_ms !== null && t.tts_first_byte_ms !== undefined) {
    const ttsFrom = stt + (t.llm_first_sentence_ms ?? t.llm_first_token_ms ?? 0);
    out.push({ ...PARTS[2], from: ttsFrom, to: ttsFrom + t.tts_first_byte_ms });
  }
  return out;
}

export function waterfall(turns, { duration, player, average } = {}) {
  const width = 760;
  const left = 150;
  const right = 36;
  const rowH = 26;
  const overviewH = 44;
  const plot = width - left - right;
  const starts = turns.map(turnStart);
  const timeline = Math.max(Number(duration) || 0, ...starts.map((s) => s + 1), 1);
  const maxMs = Math.max(
    100,
    ...turns.map((t) => Math.max(t.first_audio_ms ?? 0, ...segments(t).map((s) => s.to))),
  );
  const scaleMs = Math.ceil(maxMs / 400) * 400; // four ticks on round 100s
  const height = overviewH + 30 + turns.length * rowH + 30;
  const x = (ms) => left + (ms / scaleMs) * plot;
  const tx = (sec) => left + (sec / timeline) * plot;

  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "waterfall",
    role: "img",
    "aria-labelledby": "wf-title wf-desc",
    preserveAspectRatio: "xMinYMin meet",
  });
  root.append(
    svg("title", { id: "wf-title" }, "Per-turn latency waterfall"),
    svg("desc", { id: "wf-desc" }, `${turns.length} turns over ${fmtClock(timeline)} of the recording; bars in milliseconds from the end of each caller turn.`),
  );

  // overview: the recording's timeline with one marker per turn
  root.append(
    svg("text", { x: 8, y: 26, class: "wf-label" }, "Recording"),
    svg("rect", { x: left, y: 12, width: plot, height: 20, class: "wf-track", rx: 3 }),
  );
  // each turn on the recording: the caller speaking (start_s → end_of_turn_s), the
  // wait for the agent (→ first_audio_s), the agent speaking (→ end_s)
  const num = (v) => (typeof v === "number" ? v : null);
  turns.forEach((t) => {
    const eot = num(t.end_of_turn_s);
    const first = num(t.first_audio_s);
    const end = num(t.end_s);
    const start = num(t.start_s);
    const span = (from, to, cls, label) => {
      if (from === null || to === null || to < from) return;
      root.append(
        svg("rect", { x: tx(from), y: 14, width: Math.max(1, tx(to) - tx(from)), height: 16, class: `wf-span ${cls}` }, svg("title", {}, `Turn ${t.turn} ${label}: ${fmtClock(from)}–${fmtClock(to)}`)),
      );
    };
    if (t.trigger === "user") span(start, eot, "wf-caller", "caller speaking");
    span(eot ?? start, first, "wf-wait", "waiting for the agent");
    span(first, end, "wf-agent", "agent speaking");
  });
  turns.forEach((t, i) => {
    const marker = svg(
      "rect",
      { x: tx(starts[i]) - 2, y: 10, width: 4, height: 24, class: "wf-marker", tabindex: 0, role: "button", "aria-label": `Turn ${t.turn} at ${fmtClock(starts[i])}` },
      svg("title", {}, `Turn ${t.turn} (${t.trigger}) at ${fmtClock(starts[i])}`),
    );
    if (player) {
      const go = () => {
        player.currentTime = starts[i];
        player.play().catch(() => {});
      };
      marker.addEventListener("click", go);
      marker.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), go()));
    }
    root.append(marker);
  });
  const playhead = svg("line", { x1: left, x2: left, y1: 6, y2: 38, class: "wf-playhead" });
  root.append(playhead);
  if (player) {
    const move = () => {
      const p = tx(Math.min(player.currentTime || 0, timeline));
      playhead.setAttribute("x1", p);
      playhead.setAttribute("x2", p);
    };
    player.addEventListener("timeupdate", move);
    player.addEventListener("seeked", move);
  }

  // ms axis
  const axisY = overviewH + 20;
  for (let ms = 0; ms <= scaleMs; ms += scaleMs / 4) {
    root.append(
      svg("line", { x1: x(ms), x2: x(ms), y1: axisY, y2: height - 24, class: "wf-grid" }),
      svg("text", { x: x(ms), y: axisY - 4, class: "wf-axis", "text-anchor": "middle" }, `${Math.round(ms)} ms`),
    );
  }

  turns.forEach((t, i) => {
    const y = axisY + 6 + i * rowH;
    const row = svg("g", { class: "wf-row", "data-turn": t.turn });
    row.append(svg("text", { x: 8, y: y + 15, class: "wf-label" }, `${fmtClock(starts[i])} ${t.trigger}${t.interrupted ? " ✂" : ""}`));
    for (const s of segments(t)) {
      row.append(
        svg(
          "rect",
          { x: x(s.from), y: y + 3, width: Math.max(1, x(s.to) - x(s.from)), height: rowH - 8, class: `wf-bar ${s.cls}`, "data-part": s.label },
          svg("title", {}, `${s.label}: ${Math.round(s.to - s.from)} ms`),
        ),
      );
    }
    if (t.first_audio_ms !== null && t.first_audio_ms !== undefined) {
      row.append(
        svg(
          "circle",
          { cx: x(t.first_audio_ms), cy: y + rowH / 2 - 1, r: 5, class: "wf-first-audio", "data-part": "First audio" },
          svg("title", {}, `First audio: ${Math.round(t.first_audio_ms)} ms`),
        ),
      );
    }
    root.append(row);
  });

  // legend
  const ly = height - 8;
  let lx = left;
  for (const p of [...PARTS, { label: "First audio", cls: "wf-first-audio" }, { label: "Caller", cls: "wf-caller" }, { label: "Wait", cls: "wf-wait" }, { label: "Agent", cls: "wf-agent" }]) {
    root.append(
      p.cls === "wf-first-audio" ? svg("circle", { cx: lx + 5, cy: ly - 4, r: 5, class: p.cls }) : svg("rect", { x: lx, y: ly - 9, width: 10, height: 10, class: `${p.cls.startsWith("wf-c") || p.cls === "wf-wait" || p.cls === "wf-agent" ? "wf-span" : "wf-bar"} ${p.cls}` }),
      svg("text", { x: lx + 14, y: ly, class: "wf-axis" }, p.label),
    );
    lx += 24 + p.label.length * 6.5;
  }

  // the same numbers as a table for screen readers and copying
  const numbers = h(
    "table",
    { class: "wf-table" },
    h("caption", {}, "Latency per turn (ms)"),
    h("thead", {}, h("tr", {}, ["At", "Trigger", "STT", "LLM first token", "TTS first byte", "First audio"].map((c) => h("th", { scope: "col" }, c)))),
    h(
      "tbody",
      {},
      turns.map((t, i) =>
        h(
          "tr",
          {},
          h("td", {}, fmtClock(starts[i])),
          h("td", {}, t.trigger),
          [t.stt_ms, t.llm_first_token_ms, t.tts_first_byte_ms, t.first_audio_ms].map((v) => h("td", {}, v === null || v === undefined ? "—" : String(Math.round(v)))),
        ),
      ),
    ),
  );
  const avg = average
    ? h("p", { class: "hint" }, `Averages: STT ${average.stt_ms ?? "—"} ms, LLM first token ${average.llm_first_token_ms ?? "—"} ms, TTS first byte ${average.tts_first_byte_ms ?? "—"} ms, first audio ${average.first_audio_ms ?? "—"} ms.`)
    : null;
  return h("div", { class: "wf-wrap" }, h("div", { class: "wf-scroll" }, root), avg, h("details", {}, h("summary", {}, "Numbers"), numbers));
}
