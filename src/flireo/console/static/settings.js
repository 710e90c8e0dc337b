// Settings: the organization (GET /account), BYOK keys (masked; add, remove),
// the e-mail sending domain.
import { ApiError, del, get, post } from "./api.js";
import { openapi, resolve } from "./schemaform.js";
import { alertBox, clearFieldErrors, field, fmtDate, fmtMoney, h, pageHeader, showAlert, showFieldError, table, toast } from "./ui.js";

export async function render(root, _params, ctx) {
  const [account, byok, domainResp, spec] = await Promise.all([get("/account"), get("/byok"), get("/domains").catch(() => ({ domain: null })), openapi()]);
  const refresh = () => ctx.navigate(location.hash);
  const pageAlert = alertBox();
  const a = account.account || account;

  root.append(
    pageHeader("Settings"),
    pageAlert,
    h(
      "section",
      { class: "card", "aria-labelledby": "org-title" },
      h("h2", { id: "org-title" }, "Organization"),
      h(
        "dl",
        { class: "facts" },
        [
          ["Name", a.name],
          ["Company", a.company_name],
          ["E-mail", a.email || "—"],
          ["Organization ID", h("code", {}, a.id)],
          ["Minutes left", String(a.minutes_balance)],
          ["Minutes this month", String(a.monthly_usage_minutes)],
          ["Price per minute", fmtMoney(a.price_per_minute, a.currency)],
          ["Active agents / numbers / calls", `${a.active_agents} / ${a.active_numbers} / ${a.active_calls}`],
          ["Max concurrent calls", a.max_concurrent_calls === null || a.max_concurrent_calls === undefined ? "unlimited" : String(a.max_concurrent_calls)],
        ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]),
      ),
    ),
  );

  // BYOK keys: only masked forms ever come back from the API
  const providers = resolve(spec, { $ref: "#/components/schemas/ByokCreate" }).properties.provider.enum;
  const keyAlert = alertBox();
  const keyForm = h(
    "form",
    { class: "card", novalidate: true, "aria-labelledby": "byok-title", dataset: { draft: "byok" } },
    h("h2", { id: "byok-title" }, "Provider keys (BYOK)"),
    h("p", { class: "hint" }, "Your own vendor keys, encrypted at rest; only a masked form is ever shown."),
    table(
      "Provider keys",
      [
        { label: "Provider", render: (k) => k.provider },
        { label: "Key", render: (k) => h("code", { class: "masked" }, k.masked_key) },
        { label: "Updated", render: (k) => fmtDate(k.updated_at) },
        {
          label: "Actions",
          render: (k) =>
            h(
              "button",
              {
                type: "button",
                class: "danger small",
                "aria-label": `Remove the ${k.provider} key`,
                onclick: async () => {
                  if (!confirm(`Remove the ${k.provider} key?`)) return;
                  try {
                    await del("/byok", { provider: k.provider });
                    toast(`${k.provider} key removed.`);
                    refresh();
                  } catch (error) {
                    showAlert(keyAlert, error.message);
                  }
                },
              },
              "Remove",
            ),
        },
      ],
      byok.keys || [],
      { empty: "No provider keys: the platform's keys (if any) and local models are used." },
    ),
    h("h3", {}, "Add or replace a key"),
    field("Provider", h("select", { name: "provider", "data-path": "provider" }, providers.map((p) => h("option", { value: p }, p)))),
    field("Provider API key", h("input", { name: "api_key", "data-path": "api_key", type: "password", autocomplete: "off", spellcheck: "false" })),
    keyAlert,
    h("button", { type: "submit" }, "Save key"),
  );
  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(keyForm);
    showAlert(keyAlert, "");
    const data = Object.fromEntries(new FormData(keyForm));
    try {
      await post("/byok", { provider: data.provider, api_key: String(data.api_key || "").trim() });
      toast(`${data.provider} key saved.`);
      refresh();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 401)) showFieldError(keyForm, error, keyAlert);
    }
  });
  root.append(keyForm);

  // sending domain (end-of-call e-mails)
  const domain = domainResp.domain;
  const domainAlert = alertBox();
  const domainCard = h("section", { class: "card", "aria-labelledby": "domain-title" }, h("h2", { id: "domain-title" }, "E-mail domain"), domainAlert);
  const act = (label, fn) =>
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            await fn();
            refresh();
          } catch (error) {
            showAlert(domainAlert, error.message);
          }
        },
      },
      label,
    );
  if (domain) {
    domainCard.append(
      h("p", {}, h("strong", {}, domain.domain_name), ` — ${domain.status}${domain.region ? ` (${domain.region})` : ""}`),
      table(
        "DNS records",
        [
          { label: "Type", render: (r) => r.type },
          { label: "Name", render: (r) => h("code", {}, r.name) },
          { label: "Value", render: (r) => h("code", { class: "wrap" }, r.value) },
          { label: "Status", render: (r) => r.status || "—" },
        ],
        domain.records || [],
        { empty: "No DNS records." },
      ),
      h("div", { class: "actions" }, act("Verify domain", () => post("/domains/verify", {})), act("Refresh status", () => post("/domains/refresh", {})), act("Remove domain", () => del("/domains"))),
    );
  } else {
    const form = h(
      "form",
      { novalidate: true, dataset: { draft: "domain" } },
      field("Domain name", h("input", { name: "domain_name", "data-path": "domain_name", type: "text", placeholder: "mail.example.com" })),
      h("button", { type: "submit" }, "Add domain"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await post("/domains", { domain_name: String(new FormData(form).get("domain_name") || "").trim() });
        refresh();
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 401)) showFieldError(form, error, domainAlert);
      }
    });
    domainCard.append(h("p", { class: "hint" }, "No sending domain: end-of-call e-mails use the platform's sender."), form);
  }
  root.append(domainCard);
}
