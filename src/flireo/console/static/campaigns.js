// Campaigns: list with progress, create, and a campaign page with leads by
// status, pause/resume (PATCH status) and leads added from a CSV file.
import { ApiError, get, patch, post } from "./api.js";
import {
  alertBox,
  clearFieldErrors,
  field,
  fmtDate,
  h,
  pageHeader,
  pager,
  parseCsv,
  showAlert,
  showFieldError,
  statusBadge,
  table,
  toast,
} from "./ui.js";

const E164 = /^\+[1-9][0-9]{6,14}$/;
const LEAD_STATUSES = ["pending", "calling", "completed", "failed", "no-answer", "voicemail", "busy", "do-not-call"];

export async function render(root, params, ctx) {
  if (params[0]) return renderCampaign(root, params[0], ctx);
  return renderList(root, ctx);
}

function progress(c) {
  const total = c.total_leads || 0;
  const done = c.completed_leads || 0;
  const pct = total ? Math.round((done / total) * 100) : 0;
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: total || 1, value: done, "aria-label": `${c.name}: ${done} of ${total} leads done` }),
    ` ${done}/${total} (${pct} %)`,
  );
}

async function renderList(root, ctx) {
  const [{ campaigns }, { agents }, { numbers }] = await Promise.all([get("/campaigns"), get("/agents"), get("/numbers")]);
  const agentName = Object.fromEntries(agents.map((a) => [a.id, a.name]));
  root.append(
    pageHeader("Campaigns"),
    table(
      "Campaigns",
      [
        { label: "Name", render: (c) => h("a", { href: `#/campaigns/${c.id}` }, c.name) },
        { label: "Status", render: (c) => statusBadge(c.status) },
        { label: "Progress", render: progress },
        { label: "Agent", render: (c) => agentName[c.agent_id] || "—" },
        { label: "Window", render: (c) => `${c.schedule_start_time}–${c.schedule_end_time} ${c.timezone}` },
      ],
      campaigns,
      { empty: "No campaigns yet." },
    ),
  );

  // create
  const alert = alertBox();
  const input = (name, label, attrs = {}) => field(label, h("input", { name, "data-path": name, ...attrs }));
  const form = h(
    "form",
    { class: "card", novalidate: true, dataset: { draft: "campaign-new" }, "aria-labelledby": "new-campaign" },
    h("h2", { id: "new-campaign" }, "New campaign"),
    input("name", "Campaign name", { type: "text" }),
    field(
      "Campaign agent",
      h("select", { name: "agent_id", "data-path": "agent_id" }, h("option", { value: "" }, "(choose)"), agents.map((a) => h("option", { value: a.id }, a.name))),
    ),
    field(
      "Caller number",
      h("select", { name: "number_id", "data-path": "number_id" }, h("option", { value: "" }, "(default)"), numbers.map((n) => h("option", { value: n.id }, `${n.phone_number}${n.name ? ` (${n.name})` : ""}`))),
    ),
    input("schedule_start_time", "Window start", { type: "time", step: "1", value: "09:00:00" }),
    input("schedule_end_time", "Window end", { type: "time", step: "1", value: "17:00:00" }),
    input("timezone", "Time zone", { type: "text", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "Europe/Amsterdam" }),
    field("Prompt template", h("textarea", { name: "system_message_template", "data-path": "system_message_template", rows: 3 }), "Optional: {{variable}} placeholders filled per lead"),
    alert,
    h("button", { type: "submit" }, "Create campaign"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    const body = Object.fromEntries([...new FormData(form)].filter(([, v]) => String(v).trim() !== ""));
    try {
      const { campaign } = await post("/campaigns", body);
      toast("Campaign created.");
      ctx.navigate(`#/campaigns/${campaign.id}`);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) showFieldError(form, error, alert);
    }
  });
  root.append(form);
}

/** CSV rows → lead objects: a phone_number (or phone) column, optional timezone, the rest are variables. */
export function leadsFromCsv(text) {
  const rows = parseCsv(text);
  if (!rows.length) throw new Error("The CSV file is empty.");
  const header = rows[0].map((c) => c.trim());
  const phoneCol = header.findIndex((c) => /^(phone_number|phone|number)$/i.test(c));
  if (phoneCol < 0) throw new Error('The CSV needs a header row with a "phone_number" column.');
  const tzCol = header.findIndex((c) => /^timezone$/i.test(c));
  return rows.slice(1).map((row) => {
    const lead = { phone_number: (row[phoneCol] || "").trim(), variables: {} };
    header.forEach((name, i) => {
      if (i === phoneCol || !name) return;
      const value = (row[i] ?? "").trim();
      if (i === tzCol) {
        if (value) lead.timezone = value;
      } else lead.variables[name] = value;
    });
    return lead;
  });
}

async function renderCampaign(root, id, ctx) {
  const q = ctx.query;
  const statusFilter = q.get("status") || "";
  const offset = Number(q.get("offset") || 0);
  const { campaign: c } = await get(`/campaigns/${encodeURIComponent(id)}`);
  const counts = await Promise.all(
    LEAD_STATUSES.map((s) => get(`/campaigns/${encodeURIComponent(id)}/leads`, { status: s, limit: 1 }).then((r) => [s, r.pagination ? r.pagination.total : r.leads.length])),
  );
  const alert = alertBox();
  const badge = h("span", { id: "campaign-status" }, statusBadge(c.status));
  const running = c.status === "scheduled";
  const toggle = h("button", { type: "button", id: "campaign-toggle" }, running ? "Pause campaign" : c.status === "completed" ? "Completed" : c.status === "paused" ? "Resume campaign" : "Start campaign");
  toggle.disabled = c.status === "completed";
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    try {
      const { campaign } = await patch(`/campaigns/${encodeURIComponent(id)}`, { status: running ? "paused" : "scheduled" });
      toast(`Campaign ${campaign.status}.`);
      ctx.navigate(location.hash);
    } catch (error) {
      showAlert(alert, error.message);
      toggle.disabled = false;
    }
  });

  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/campaigns" }, "Campaigns"), " / ", c.name),
    pageHeader(c.name, badge, toggle),
    alert,
    h(
      "section",
      { class: "card", "aria-labelledby": "progress-title" },
      h("h2", { id: "progress-title" }, "Progress"),
      progress(c),
      h(
        "dl",
        { class: "facts" },
        [
          ["Window", `${c.schedule_start_time}–${c.schedule_end_time} ${c.timezone}`],
          ["Concurrency", `${c.max_concurrent_calls} calls, ${c.calls_per_second}/s`],
          ["Attempts", `${c.max_attempts}, retry after ${c.retry_delay_seconds} s`],
          ["Updated", fmtDate(c.updated_at)],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
      h("h3", {}, "Leads by status"),
      h(
        "ul",
        { class: "counts", id: "lead-counts" },
        counts.map(([s, n]) => h("li", { dataset: { status: s } }, h("a", { href: `#/campaigns/${id}?status=${s}` }, statusBadge(s), ` ${n}`))),
      ),
    ),
  );

  // leads table
  const leads = await get(`/campaigns/${encodeURIComponent(id)}/leads`, { status: statusFilter, limit: 25, offset });
  const hashFor = (o) => `#/campaigns/${id}?${new URLSearchParams({ ...(statusFilter ? { status: statusFilter } : {}), offset: String(o) })}`;
  root.append(
    h(
      "section",
      { class: "card", "aria-labelledby": "leads-title" },
      h("h2", { id: "leads-title" }, statusFilter ? `Leads: ${statusFilter}` : "Leads", statusFilter ? h("a", { href: `#/campaigns/${id}`, class: "small" }, " (show all)") : null),
      table(
        "Leads",
        [
          { label: "Phone", render: (l) => l.phone_number },
          { label: "Status", render: (l) => statusBadge(l.status) },
          { label: "Attempts", render: (l) => String(l.attempts) },
          { label: "Variables", render: (l) => Object.entries(l.variables || {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—" },
          { label: "Call", render: (l) => (l.call_id ? h("a", { href: `#/calls/${encodeURIComponent(l.call_id)}` }, "open") : "—") },
        ],
        leads.leads,
        { empty: "No leads." },
      ),
      leads.pagination ? pager(leads.pagination, (o) => ctx.navigate(hashFor(o)), "Leads pages") : null,
    ),
  );

  // add leads from CSV
  const csvAlert = alertBox();
  const fileInput = h("input", { type: "file", accept: ".csv,text/csv", id: "leads-csv" });
  const pasted = h("textarea", { id: "leads-csv-text", rows: 4, class: "code", placeholder: "phone_number,name\n+31612345678,John" });
  const upload = h("button", { type: "submit" }, "Add leads");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "csv-title", dataset: { draft: `leads-${id}` } },
    h("h2", { id: "csv-title" }, "Add leads from CSV"),
    h("p", { class: "hint" }, "A header row with phone_number (E.164, e.g. +31612345678); an optional timezone column; every other column becomes a variable."),
    field("CSV file", fileInput),
    field("Or paste CSV", pasted),
    csvAlert,
    upload,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showAlert(csvAlert, "");
    let text = pasted.value;
    if (fileInput.files && fileInput.files[0]) text = await fileInput.files[0].text();
    let rows;
    try {
      rows = leadsFromCsv(text || "");
    } catch (error) {
      showAlert(csvAlert, error.message);
      return;
    }
    // checked here too: the API's error for a bulk body may name the single-lead form's field
    const bad = rows.findIndex((lead) => !E164.test(lead.phone_number));
    if (bad >= 0) {
      showAlert(csvAlert, `Row ${bad + 2} of the CSV: "${rows[bad].phone_number}" is not a phone number in E.164 form (+31612345678).`);
      return;
    }
    upload.disabled = true;
    let added = 0;
    try {
      for (let i = 0; i < rows.length; i += 1000) {
        const chunk = rows.slice(i, i + 1000);
        try {
          const res = await post(`/campaigns/${encodeURIComponent(id)}/leads`, { leads: chunk });
          added += Array.isArray(res.leads) ? res.leads.length : chunk.length;
        } catch (error) {
          const m = error.param && /^leads\.(\d+)/.exec(error.param);
          throw new Error(m ? `Row ${i + Number(m[1]) + 2} of the CSV: ${error.message}` : error.message);
        }
      }
      toast(`${added} lead${added === 1 ? "" : "s"} added.`);
      pasted.value = "";
      ctx.navigate(location.hash);
    } catch (error) {
      showAlert(csvAlert, added ? `${added} added, then: ${error.message}` : error.message);
    } finally {
      upload.disabled = false;
    }
  });
  root.append(form);
}
