// Calls: a server-paginated, filtered list kept live by GET /calls/events, and a
// call page (transcript, stereo recording, latency waterfall, tools, analysis,
// cost, webhook deliveries with redeliver) kept live by GET /calls/{id}/events.
import { ApiError, get, post, streamEvents } from "./api.js";
import {
  alertBox,
  clear,
  field,
  fmtClock,
  fmtDate,
  fmtDuration,
  fmtMoney,
  h,
  jsonBlock,
  pageHeader,
  pager,
  showAlert,
  statusBadge,
  table,
  toast,
} from "./ui.js";
import { waterfall } from "./waterfall.js";

const STATUSES = ["connecting", "dialing", "ringing", "in-progress", "ended", "failed", "rejected"];
const TERMINAL = new Set(["ended", "failed", "rejected"]);
const PAGE_SIZE = 20;

export async function render(root, params, ctx) {
  if (params[0]) return renderCall(root, params[0], ctx);
  return renderList(root, ctx);
}

/** Keep a stream open while the page is shown: reconnect with backoff; onFail(error) when it cannot. */
function keepStreaming(path, onEvent, signal, { onState, onFail, once = false }) {
  let delay = 1000;
  (async () => {
    while (!signal.aborted) {
      try {
        onState("live");
        await streamEvents(path, onEvent, { signal });
        delay = 1000;
        if (once) return; // the server ends a call's stream after its terminal status
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return;
        if (error instanceof ApiError && error.status === 404 && onFail) {
          onFail(error);
          return;
        }
      }
      if (signal.aborted) return;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 15000);
    }
  })();
}

function debounce(fn, ms) {
  let timer = null;
  return () => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  };
}

function toIso(dateValue, endOfDay) {
  if (!dateValue) return "";
  const d = new Date(`${dateValue}T${endOfDay ? "23:59:59.999" : "00:00:00"}`);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

async function renderList(root, ctx) {
  const q = ctx.query;
  const filters = {
    status: q.get("status") || "",
    agent_id: q.get("agent_id") || "",
    campaign_id: q.get("campaign_id") || "",
    from: q.get("from") || "",
    to: q.get("to") || "",
  };
  const offset = Number(q.get("offset") || 0);
  const [agents, campaigns] = await Promise.all([
    get("/agents").then((r) => r.agents),
    get("/campaigns").then((r) => r.campaigns).catch(() => []),
  ]);

  const select = (name, label, options) => {
    const el = h(
      "select",
      { name },
      h("option", { value: "" }, "Any"),
      options.map(([v, text]) => h("option", { value: v, selected: filters[name] === v }, text)),
    );
    return field(label, el);
  };
  const dateInput = (name, label) => field(label, h("input", { type: "date", name, value: filters[name] }));
  const filterForm = h(
    "form",
    { class: "filters", "aria-label": "Filter calls" },
    select("status", "Status", STATUSES.map((s) => [s, s])),
    select("agent_id", "Agent", agents.map((a) => [a.id, a.name])),
    select("campaign_id", "Campaign", campaigns.map((c) => [c.id, c.name])),
    dateInput("from", "From date"),
    dateInput("to", "To date"),
    h("div", { class: "filter-actions" }, h("button", { type: "submit" }, "Apply filters"), h("a", { href: "#/calls", class: "button secondary" }, "Reset")),
  );
  const hashFor = (values, newOffset) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v) p.set(k, v);
    if (newOffset) p.set("offset", String(newOffset));
    const s = p.toString();
    return s ? `#/calls?${s}` : "#/calls";
  };
  filterForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(filterForm));
    ctx.navigate(hashFor(data, 0));
  });

  const live = h("p", { class: "live", role: "status", id: "calls-live" }, "Connecting to live updates…");
  const listHolder = h("div", { id: "calls-table" });
  const agentName = Object.fromEntries(agents.map((a) => [a.id, a.name]));

  const load = async () => {
    const data = await get("/calls", {
      status: filters.status,
      agent_id: filters.agent_id,
      campaign_id: filters.campaign_id,
      start_date: toIso(filters.from, false),
      end_date: toIso(filters.to, true),
      limit: PAGE_SIZE,
      offset,
    });
    if (ctx.signal.aborted) return;
    clear(
      listHolder,
      table(
        "Calls",
        [
          { label: "Created", render: (c) => h("a", { href: `#/calls/${encodeURIComponent(c.id)}` }, fmtDate(c.created_at)) },
          { label: "Direction", render: (c) => `${c.direction}${c.type && c.type !== "inboundPhoneCall" && c.type !== "outboundPhoneCall" ? ` (${c.type})` : ""}` },
          { label: "From", render: (c) => c.caller_phone || "—" },
          { label: "To", render: (c) => c.assistant_phone || c.phone_number || "—" },
          { label: "Agent", render: (c) => c.agent_name || agentName[c.agent_id] || "—" },
          { key: "status", label: "Status", render: (c) => statusBadge(c.status) },
          { label: "Duration", render: (c) => fmtDuration(c.duration_seconds) },
          { label: "Cost", render: (c) => fmtMoney(c.cost) },
        ],
        data.calls,
        { empty: "No calls match these filters." },
      ),
      pager(data.pagination, (o) => ctx.navigate(hashFor(filters, o)), "Calls pages"),
    );
  };
  const reload = debounce(() => load().catch(() => {}), 400);

  root.append(pageHeader("Calls"), filterForm, live, listHolder);
  await load();

  let polling = null;
  keepStreaming(
    "/calls/events",
    (type, data) => {
      if (type !== "status-update" || !data || !data.call_id) return;
      const row = listHolder.querySelector(`tr[data-id="${CSS.escape(data.call_id)}"]`);
      if (row) {
        const cell = row.querySelector('td[data-col="status"]');
        if (cell) clear(cell, statusBadge(data.status));
      }
      reload();
    },
    ctx.signal,
    {
      onState: (state) => {
        live.textContent = state === "live" ? "Live: status updates as they happen." : "Reconnecting to live updates…";
        live.dataset.state = state;
      },
      onFail: () => {
        // no live endpoint on this server: refresh every few seconds instead
        live.textContent = "Live updates unavailable; refreshing every 5 s.";
        live.dataset.state = "polling";
        polling = setInterval(() => (ctx.signal.aborted ? clearInterval(polling) : reload()), 5000);
      },
    },
  );
}

// -- one call -----------------------------------------------------------------

function callTitle(call) {
  if (call.direction === "outbound") return `Call to ${call.caller_phone || call.phone_number || "unknown"}`;
  if (call.caller_phone) return `Call from ${call.caller_phone}`;
  return call.type === "webCall" ? "Browser call" : "Call";
}

function messageTime(m) {
  return typeof m.secondsFromStart === "number" ? m.secondsFromStart : null;
}

function transcriptItem(role, text, seconds, player) {
  const time =
    seconds === null || seconds === undefined
      ? h("span", { class: "time" }, "")
      : h(
          "button",
          {
            type: "button",
            class: "time linklike",
            "aria-label": `Play from ${fmtClock(seconds)}`,
            onclick: () => player && seek(player, seconds),
          },
          fmtClock(seconds),
        );
  return h("li", { class: `line role-${role}`, dataset: { role } }, time, h("span", { class: "who" }, role === "assistant" ? "Agent" : role === "user" ? "Caller" : role), h("span", { class: "text" }, text));
}

function seek(player, seconds) {
  player.currentTime = Math.max(0, seconds);
  player.play().catch(() => {});
}

function toolCallsOf(messages) {
  const results = new Map(messages.filter((m) => m.role === "tool").map((m) => [m.tool_call_id, m]));
  const calls = [];
  for (const m of messages) {
    for (const tc of m.tool_calls || []) {
      const fn = tc.function || {};
      const result = results.get(tc.id);
      calls.push({ id: tc.id, name: fn.name || tc.name, arguments: fn.arguments, result: result ? result.content : null, at: messageTime(m) });
    }
  }
  return calls;
}

async function renderCall(root, id, ctx) {
  const data = await get(`/calls/${encodeURIComponent(id)}`);
  const call = data.call || data;
  const messages = Array.isArray(call.messages) ? call.messages : [];
  const badge = h("span", { id: "call-status" }, statusBadge(call.status));
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/calls" }, "Calls"), " / ", call.id),
    pageHeader(callTitle(call), badge),
  );

  const facts = [
    ["Direction", `${call.direction}${call.type ? ` (${call.type})` : ""}`],
    ["From", call.caller_phone || "—"],
    ["To", call.assistant_phone || call.phone_number || "—"],
    ["Agent", call.agent_id ? h("a", { href: `#/agents/${call.agent_id}` }, call.agent_name || call.agent_id) : "—"],
    ["Started", fmtDate(call.started_at)],
    ["Ended", fmtDate(call.ended_at)],
    ["Duration", fmtDuration(call.duration_seconds)],
    ["Ended reason", call.ended_reason || "—"],
    ["Cost", fmtMoney(call.cost)],
  ];
  if (call.campaign_id) facts.push(["Campaign", h("a", { href: `#/campaigns/${call.campaign_id}` }, call.campaign_id)]);
  root.append(h("section", { class: "card", "aria-label": "Call facts" }, h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))));

  // recording
  const url = call.stereo_recording_url || call.recording_url;
  let player = null;
  const recording = h("section", { class: "card", "aria-labelledby": "rec-title" }, h("h2", { id: "rec-title" }, "Recording"));
  if (url) {
    player = h("audio", { controls: true, preload: "metadata", src: url, id: "call-recording", "aria-label": "Call recording" });
    recording.append(
      player,
      h("p", { class: "hint" }, call.stereo_recording_url ? "Stereo: the caller on the left channel, the agent on the right." : "Mono mix of both sides."),
    );
  } else {
    recording.append(h("p", { class: "empty" }, TERMINAL.has(call.status) ? "No recording for this call." : "The recording is ready once the call ends."));
  }
  root.append(recording);

  // latency waterfall
  const turns = (call.metrics && Array.isArray(call.metrics.turns) && call.metrics.turns) || [];
  const wf = h("details", { class: "card", id: "waterfall" }, h("summary", {}, `Latency waterfall (${turns.length} turn${turns.length === 1 ? "" : "s"})`));
  if (turns.length) wf.append(waterfall(turns, { duration: call.duration_seconds, player, average: call.metrics.average }));
  else wf.append(h("p", { class: "empty" }, "No per-turn metrics (yet)."));
  root.append(wf);

  // transcript
  const lines = h("ol", { class: "transcript", id: "transcript", "aria-live": "polite" });
  for (const m of messages) {
    if ((m.role === "user" || m.role === "assistant") && m.content && m.source !== "prompt") {
      lines.append(transcriptItem(m.role, m.content, messageTime(m), player));
    }
  }
  root.append(h("section", { class: "card", "aria-labelledby": "tr-title" }, h("h2", { id: "tr-title" }, "Transcript"), lines.children.length ? lines : [h("p", { class: "empty", id: "transcript-empty" }, "Nothing said yet."), lines]));

  // tools
  const toolList = h("ul", { class: "tools", id: "tool-calls" });
  const addTool = (t) =>
    toolList.append(
      h(
        "li",
        {},
        h("strong", {}, t.name || "tool"),
        t.at !== null && t.at !== undefined ? ` at ${fmtClock(t.at)}` : "",
        h("div", {}, "Arguments: ", h("code", {}, typeof t.arguments === "string" ? t.arguments : JSON.stringify(t.arguments ?? {}))),
        t.result !== null && t.result !== undefined ? h("div", {}, "Result: ", h("code", {}, typeof t.result === "string" ? t.result : JSON.stringify(t.result))) : null,
      ),
    );
  toolCallsOf(messages).forEach(addTool);
  root.append(h("section", { class: "card", "aria-labelledby": "tools-title" }, h("h2", { id: "tools-title" }, "Tool calls"), toolList, toolList.children.length ? null : h("p", { class: "empty" }, "No tool calls.")));

  // analysis and cost
  root.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "an-title" },
      h("h2", { id: "an-title" }, "Analysis"),
      call.summary ? h("p", {}, call.summary) : null,
      call.analysis_result ? jsonBlock(call.analysis_result, "Analysis result") : h("p", { class: "empty" }, "No analysis result."),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "cost-title" },
      h("h2", { id: "cost-title" }, "Cost"),
      h("p", {}, fmtMoney(call.cost)),
      call.metrics && call.metrics.usage ? jsonBlock(call.metrics.usage, "Vendor usage") : null,
    ),
  );

  // webhooks
  const hooks = h("section", { class: "card", "aria-labelledby": "wh-title", id: "webhooks" }, h("h2", { id: "wh-title" }, "Webhook deliveries"));
  const hooksAlert = alertBox();
  const hooksBody = h("div");
  hooks.append(hooksAlert, hooksBody);
  const loadHooks = async () => {
    const { webhooks } = await get(`/calls/${encodeURIComponent(call.id)}/webhooks`);
    clear(
      hooksBody,
      table(
        "Webhook deliveries",
        [
          { label: "Event", render: (w) => `${w.event_type} #${w.seq}` },
          { label: "Status", render: (w) => statusBadge(w.status) },
          { label: "Attempts", render: (w) => String(w.attempts) },
          { label: "Last response", render: (w) => (w.last_status_code ? `HTTP ${w.last_status_code}` : w.last_error || "—") },
          { label: "Delivered", render: (w) => fmtDate(w.delivered_at) },
          {
            label: "Actions",
            render: (w) =>
              h(
                "button",
                {
                  type: "button",
                  "aria-label": `Redeliver ${w.event_type} #${w.seq}`,
                  onclick: async (event) => {
                    event.target.disabled = true;
                    try {
                      await post(`/calls/${encodeURIComponent(call.id)}/webhooks/${encodeURIComponent(w.id)}/redeliver`, {});
                      toast(`Redelivery of ${w.event_type} queued.`);
                      await loadHooks();
                    } catch (error) {
                      showAlert(hooksAlert, error.message);
                      event.target.disabled = false;
                    }
                  },
                },
                "Redeliver",
              ),
          },
        ],
        webhooks,
        { empty: "No webhook deliveries for this call." },
      ),
    );
  };
  root.append(hooks);
  await loadHooks().catch((error) => showAlert(hooksAlert, error.message));

  if (!TERMINAL.has(call.status)) {
    const live = h("p", { class: "live", role: "status" }, "Live");
    root.querySelector(".page-header").after(live);
    const onFail = () => {
      live.textContent = "Live updates unavailable; reload to refresh.";
    };
    keepStreaming(
      `/calls/${encodeURIComponent(call.id)}/events`,
      (type, ev) => {
        if (type === "status-update" && ev) {
          clear(badge, statusBadge(ev.status));
          if (TERMINAL.has(ev.status)) {
            live.textContent = `Call ${ev.status}${ev.ended_reason ? ` (${ev.ended_reason})` : ""}. Loading the record…`;
            setTimeout(() => ctx.signal.aborted || ctx.navigate(location.hash), 1500);
          }
        } else if (type === "transcript" && ev) {
          const empty = root.querySelector("#transcript-empty");
          if (empty) empty.remove();
          lines.append(transcriptItem(ev.role, ev.text, ev.time, player));
        } else if (type === "tool-call" && ev) {
          addTool({ name: ev.name, arguments: ev.arguments, result: ev.result });
        } else if (type === "control" && ev) {
          toast(`Control ${ev.type}: ${ev.ok ? "done" : "failed"}${ev.detail ? ` (${ev.detail})` : ""}`);
        }
      },
      ctx.signal,
      { onState: (s) => (live.textContent = s === "live" ? "Live: this call is in progress." : "Reconnecting…"), onFail, once: true },
    );
  }
}
