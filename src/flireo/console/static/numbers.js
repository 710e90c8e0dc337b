// Numbers and SIP trunks: lists, add, assign a number's agent, delete.
import { ApiError, del, get, patch, post } from "./api.js";
import { alertBox, clearFieldErrors, field, fmtDate, h, pageHeader, showAlert, showFieldError, table, toast } from "./ui.js";

export async function render(root, _params, ctx) {
  const [{ numbers }, { agents }, trunksResp] = await Promise.all([get("/numbers"), get("/agents"), get("/sip-trunks")]);
  const trunks = trunksResp.sipTrunks || trunksResp.sip_trunks || trunksResp.trunks || Object.values(trunksResp).find(Array.isArray) || [];
  const agentOptions = (selected) => [h("option", { value: "" }, "(no agent)"), agents.map((a) => h("option", { value: a.id, selected: a.id === selected }, a.name))];
  const trunkOptions = (selected) => [h("option", { value: "" }, "(none)"), trunks.map((t) => h("option", { value: t.id, selected: t.id === selected }, t.name))];
  const pageAlert = alertBox();
  const refresh = () => ctx.navigate(location.hash);

  const numberAgent = (n) => {
    const select = h("select", { "aria-label": `Agent for ${n.phone_number}` }, agentOptions(n.agent_id));
    select.addEventListener("change", async () => {
      try {
        await patch(`/numbers/${encodeURIComponent(n.id)}`, { agent_id: select.value || null });
        toast(`${n.phone_number} now goes to ${select.selectedOptions[0].textContent}.`);
      } catch (error) {
        showAlert(pageAlert, error.message);
      }
    });
    return select;
  };
  const deleteButton = (label, path) =>
    h(
      "button",
      {
        type: "button",
        class: "danger small",
        "aria-label": `Delete ${label}`,
        onclick: async () => {
          if (!confirm(`Delete ${label}?`)) return;
          try {
            await del(path);
            toast(`${label} deleted.`);
            refresh();
          } catch (error) {
            showAlert(pageAlert, error.message);
          }
        },
      },
      "Delete",
    );

  root.append(
    pageHeader("Numbers and SIP trunks"),
    pageAlert,
    h(
      "section",
      { class: "card", "aria-labelledby": "numbers-title" },
      h("h2", { id: "numbers-title" }, "Phone numbers"),
      table(
        "Phone numbers",
        [
          { label: "Number", render: (n) => n.phone_number },
          { label: "Name", render: (n) => n.name || "—" },
          { label: "Agent", render: numberAgent },
          { label: "Transfer trunk", render: (n) => (trunks.find((t) => t.id === n.transfer_trunk_id) || {}).name || "—" },
          { label: "Added", render: (n) => fmtDate(n.created_at) },
          { label: "Actions", render: (n) => deleteButton(n.phone_number, `/numbers/${encodeURIComponent(n.id)}`) },
        ],
        numbers,
        { empty: "No numbers yet." },
      ),
    ),
  );

  const formOf = (id, title, fields, submitLabel, onSubmit) => {
    const alert = alertBox();
    const form = h("form", { class: "card", novalidate: true, dataset: { draft: id }, "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), fields, alert, h("button", { type: "submit" }, submitLabel));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearFieldErrors(form);
      showAlert(alert, "");
      try {
        await onSubmit(form);
        refresh();
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) showFieldError(form, error, alert);
      }
    });
    return form;
  };
  const values = (form) => Object.fromEntries([...new FormData(form)].filter(([, v]) => String(v).trim() !== "").map(([k, v]) => [k, String(v).trim()]));

  root.append(
    formOf(
      "number-new",
      "Add a number",
      [
        field("Phone number", h("input", { name: "phone_number", "data-path": "phone_number", type: "tel", placeholder: "+31850835037" }), "E.164"),
        field("Number name", h("input", { name: "name", "data-path": "name", type: "text" })),
        field("Answering agent", h("select", { name: "agent_id", "data-path": "agent_id" }, agentOptions(null))),
        field("Transfer trunk", h("select", { name: "transfer_trunk_id", "data-path": "transfer_trunk_id" }, trunkOptions(null))),
      ],
      "Add number",
      async (form) => {
        await post("/numbers", values(form));
        toast("Number added.");
      },
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "trunks-title" },
      h("h2", { id: "trunks-title" }, "SIP trunks"),
      table(
        "SIP trunks",
        [
          { label: "Name", render: (t) => t.name },
          { label: "Host", render: (t) => `${t.host}:${t.port} (${t.transport})` },
          { label: "Auth", render: (t) => (t.username ? `${t.username}${t.has_password ? " / ••••" : ""}` : "—") },
          { label: "Allowed IPs", render: (t) => (t.allowed_ips || []).join(", ") || "—" },
          { label: "Max calls", render: (t) => (t.max_concurrent_calls ? String(t.max_concurrent_calls) : "—") },
          { label: "Actions", render: (t) => deleteButton(`trunk ${t.name}`, `/sip-trunks/${encodeURIComponent(t.id)}`) },
        ],
        trunks,
        { empty: "No SIP trunks yet." },
      ),
    ),
    formOf(
      "trunk-new",
      "Add a SIP trunk",
      [
        field("Trunk name", h("input", { name: "name", "data-path": "name", type: "text" })),
        field("Host", h("input", { name: "host", "data-path": "host", type: "text", placeholder: "sip.example.com" })),
        field("Port", h("input", { name: "port", "data-path": "port", type: "number", value: "5060" })),
        field("Transport", h("select", { name: "transport", "data-path": "transport" }, h("option", { value: "udp" }, "UDP"), h("option", { value: "tcp" }, "TCP"))),
        field("Username", h("input", { name: "username", "data-path": "username", type: "text", autocomplete: "off" })),
        field("Password", h("input", { name: "password", "data-path": "password", type: "password", autocomplete: "new-password" })),
        field("Allowed IPs", h("textarea", { name: "allowed_ips", "data-path": "allowed_ips", rows: 2 }), "One address or CIDR per line"),
      ],
      "Add trunk",
      async (form) => {
        const body = values(form);
        if (body.port) body.port = Number(body.port);
        body.allowed_ips = (body.allowed_ips || "").split(/\s+/).filter(Boolean);
        await post("/sip-trunks", body);
        toast("SIP trunk added.");
      },
    ),
  );
}
