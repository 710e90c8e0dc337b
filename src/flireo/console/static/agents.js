// Agents: list, create, edit (every field of the API's AgentCreate schema), JSON
// view, field-level API errors, and C2's "Talk to this agent" widget.
import { ApiError, del, get, getApiKey, patch, post } from "./api.js";
import { build, canonical, FieldError, jsonWidget, openapi, resolve } from "./schemaform.js";
import {
  alertBox,
  clear,
  clearFieldErrors,
  field,
  fmtDate,
  h,
  pageHeader,
  showAlert,
  showFieldError,
  table,
  toast,
} from "./ui.js";

const GROUPS = [
  ["Basics", ["name", "business_name", "is_active", "first_message", "notification_email", "gdpr_mode"]],
  ["Speech-to-text", ["stt_config"]],
  ["Language model", ["llm_config"]],
  ["Voice", ["tts_config"]],
  ["Tools", ["tool_template_ids"]],
  ["Webhooks", ["webhook_url", "webhook_secret", "webhook_events"]],
  ["Analysis", ["analysis_plan", "analysis_template_id"]],
  ["Recording", [/^recording/]],
  [
    "Conversation",
    [
      "max_duration_seconds",
      "silence_timeout_seconds",
      "autonomous_silence_handling",
      "voicemail_detection",
      "voicemail_message",
      "start_speaking_plan",
      "stop_speaking_plan",
    ],
  ],
];

const LABELS = {
  name: "Name",
  stt_config: "Speech-to-text (STT)",
  llm_config: "Language model (LLM)",
  tts_config: "Text-to-speech (TTS)",
  "tts_config.voiceId": "Voice",
  "llm_config.voice": "Realtime voice",
  "llm_config.base_url": "Base URL (self-hosted LLM)",
  "llm_config.tools": "Inline tools (JSON)",
  tool_template_ids: "Tool templates",
  analysis_template_id: "Analysis template",
  webhook_url: "Webhook URL",
  webhook_events: "Webhook events",
  gdpr_mode: "GDPR mode",
};

const HINTS = {
  "llm_config.tools": 'JSON array: [{"type": "function", ...}, {"type": "endCall"}, {"type": "transferCall", ...}]',
  webhook_secret: "Signs webhook deliveries. Shown masked once saved; type a new one to replace it.",
};

// Vendor names of TTS providers as the voice catalogue spells them.
const VOICE_PROVIDER = { "11labs": "elevenlabs", eleven_labs: "elevenlabs" };

export async function render(root, params, ctx) {
  const [id] = params;
  if (!id) return renderList(root);
  return renderForm(root, id === "new" ? null : id, ctx);
}

async function renderList(root) {
  const { agents } = await get("/agents");
  root.append(
    pageHeader("Agents", h("a", { class: "button", href: "#/agents/new" }, "New agent")),
    table(
      "Agents",
      [
        { label: "Name", render: (a) => h("a", { href: `#/agents/${a.id}` }, a.name) },
        { label: "Active", render: (a) => (a.is_active ? "yes" : "no") },
        { label: "LLM", render: (a) => (a.llm_config ? `${a.llm_config.provider} ${a.llm_config.model || ""}` : "default") },
        { label: "Voice", render: (a) => (a.tts_config ? `${a.tts_config.provider} ${a.tts_config.voiceId || ""}` : "default") },
        { label: "Updated", render: (a) => fmtDate(a.updated_at) },
      ],
      agents,
      { empty: "No agents yet. Create one to answer calls." },
    ),
  );
}

async function catalogue() {
  const settle = (p, fallback) => p.catch((e) => (e instanceof ApiError && e.status === 401 ? Promise.reject(e) : fallback));
  const [config, voices, tools, analysis] = await Promise.all([
    settle(get("/byok/config"), { providers: [] }),
    settle(get("/voices", { limit: 1000 }), { voices: [] }),
    settle(get("/tool-templates"), { toolTemplates: [] }),
    settle(get("/analysis-templates"), { analysisTemplates: [] }),
  ]);
  const analysisList = analysis.analysisTemplates || analysis.templates || Object.values(analysis).find(Array.isArray) || [];
  return { providers: config.providers || [], voices: voices.voices || [], tools: tools.toolTemplates || [], analysis: analysisList };
}

function providerSelect(cat, category) {
  // enhance the schema's enum select: say which providers have a key
  return (ctx) => {
    const w = build(ctx.spec, ctx.schema, ctx.path, { labels: { [ctx.path]: "Provider" } });
    for (const option of w.control.options) {
      const p = cat.providers.find((x) => x.id === option.value);
      if (p) option.textContent = `${p.name} (${p.configured ? `key: ${p.key_source}` : "no key"})`;
      else if (option.value === "whisper" || option.value === "pocketsphinx" || option.value === "piper") {
        option.textContent = `${option.value} (local, offline)`;
      }
    }
    w.control.dataset.category = category;
    return w;
  };
}

function datalistInput(ctx, optionsFor, sourcePath) {
  const w = build(ctx.spec, ctx.schema, ctx.path, { labels: { [ctx.path]: ctx.label }, hints: { [ctx.path]: ctx.hint } });
  const list = h("datalist", { id: `${w.control.id}-options` });
  w.control.setAttribute("list", list.id);
  w.el.append(list);
  w.refresh = (form) => {
    const source = form.querySelector(`[data-path="${sourcePath}"]`);
    const options = optionsFor(source ? source.value : "");
    clear(
      list,
      options.map((o) => h("option", { value: o.id }, o.name)),
    );
  };
  return w;
}

function overrides(cat) {
  const modelsFor = (category) => (provider) => {
    const p = cat.providers.find((x) => x.id === provider);
    return p ? p.models.filter((m) => m.category === category || (category === "llm" && m.category === "realtime")) : [];
  };
  const voicesFor = (setIn) => (provider) =>
    cat.voices.filter((v) => v.set_in === setIn && (!provider || v.provider === (VOICE_PROVIDER[provider] || provider) || setIn === "llm_config.voice"));
  const refreshers = [];
  const withRefresh = (w) => {
    refreshers.push(w);
    return w;
  };
  const o = {
    "stt_config.provider": providerSelect(cat, "stt"),
    "llm_config.provider": providerSelect(cat, "llm"),
    "tts_config.provider": providerSelect(cat, "tts"),
    "stt_config.model": (ctx) => withRefresh(datalistInput({ ...ctx, label: "Model" }, modelsFor("stt"), "stt_config.provider")),
    "llm_config.model": (ctx) => withRefresh(datalistInput({ ...ctx, label: "Model" }, modelsFor("llm"), "llm_config.provider")),
    "tts_config.model": (ctx) => withRefresh(datalistInput({ ...ctx, label: "Model" }, modelsFor("tts"), "tts_config.provider")),
    "tts_config.voiceId": (ctx) => withRefresh(datalistInput(ctx, voicesFor("tts_config.voiceId"), "tts_config.provider")),
    "llm_config.voice": (ctx) => withRefresh(datalistInput(ctx, voicesFor("llm_config.voice"), "llm_config.provider")),
    "llm_config.messages": systemPromptWidget,
    "llm_config.tools": (ctx) => jsonWidget(ctx.path, ctx.label, ctx.hint, false),
    tool_template_ids: (ctx) => templateChecks(ctx, cat.tools),
    analysis_template_id: (ctx) => templateSelect(ctx, cat.analysis),
  };
  return { overrides: o, refreshers };
}

function systemPromptWidget(ctx) {
  // the system prompt is the first system message; other messages are kept as they were
  const area = h("textarea", { rows: 6, "data-path": ctx.path });
  let others = [];
  return {
    el: field("System prompt", area, "The agent's instructions (the first system message)"),
    control: area,
    get() {
      const text = area.value.trim();
      return text ? [{ role: "system", content: text }, ...others] : others.length ? others : [];
    },
    set(v) {
      const messages = Array.isArray(v) ? v : [];
      const system = messages.find((m) => m.role === "system");
      others = messages.filter((m) => m !== system);
      area.value = system ? system.content : "";
    },
    touched: () => area.value.trim() !== "" || others.length > 0,
  };
}

function templateChecks(ctx, tools) {
  const legend = h("legend", {}, ctx.label);
  const boxes = tools.map((t) => {
    const input = h("input", { type: "checkbox", value: t.id, "data-path": ctx.path, name: ctx.path, id: `tool-${t.id}` });
    return [t.id, input, h("div", { class: "check" }, input, h("label", { for: input.id }, `${t.name} (${t.tool_type})`))];
  });
  let unknown = [];
  const el = h(
    "fieldset",
    { class: "group checks", "data-path": ctx.path, tabindex: "-1" },
    legend,
    h("p", { class: "field-error" }),
    boxes.length ? boxes.map(([, , row]) => row) : h("p", { class: "hint" }, "No tool templates yet (create them with POST /api/v1/tool-templates)."),
  );
  return {
    el,
    get() {
      const picked = boxes.filter(([, i]) => i.checked).map(([id]) => id);
      return picked.length || unknown.length ? [...picked, ...unknown] : null;
    },
    set(v) {
      const ids = new Set(v || []);
      for (const [id, input] of boxes) input.checked = ids.has(id);
      unknown = [...ids].filter((id) => !boxes.some(([b]) => b === id));
    },
    touched: () => boxes.some(([, i]) => i.checked),
  };
}

function templateSelect(ctx, templates) {
  const select = h(
    "select",
    { "data-path": ctx.path },
    h("option", { value: "" }, "(none)"),
    templates.map((t) => h("option", { value: t.id }, t.name)),
  );
  return {
    el: field(ctx.label, select, ctx.hint),
    control: select,
    get: () => select.value || null,
    set(v) {
      if (v && ![...select.options].some((o) => o.value === v)) select.append(h("option", { value: v }, v));
      select.value = v || "";
    },
    touched: () => select.value !== "",
  };
}

function groupOf(key) {
  for (const [name, keys] of GROUPS) {
    if (keys.some((k) => (k instanceof RegExp ? k.test(key) : k === key))) return name;
  }
  return "Other";
}

async function renderForm(root, id, ctx) {
  const [spec, cat, agent] = await Promise.all([openapi(), catalogue(), id ? get(`/agents/${encodeURIComponent(id)}`) : null]);
  const original = agent ? agent.agent || agent : null;
  const schema = resolve(spec, { $ref: `#/components/schemas/${original ? "AgentUpdate" : "AgentCreate"}` });
  const props = schema.properties;
  const { overrides: o, refreshers } = overrides(cat);
  const opts = { labels: LABELS, hints: HINTS, overrides: o };

  const widgets = {};
  const sections = new Map(GROUPS.map(([name]) => [name, []]).concat([["Other", []]]));
  // the groups' order first, then whatever else the schema has (nothing the API accepts is hidden)
  const listed = GROUPS.flatMap(([, keys]) => keys.filter((k) => typeof k === "string"));
  const ordered = [...listed.filter((k) => k in props), ...Object.keys(props).filter((k) => !listed.includes(k))];
  for (const key of ordered) {
    const required = (schema.required || []).includes(key) || key === "name";
    widgets[key] = build(spec, props[key], key, { ...opts, required });
    sections.get(groupOf(key)).push(widgets[key].el);
  }
  for (const [key, w] of Object.entries(widgets)) w.set(original ? original[key] : undefined);

  const alert = alertBox();
  const jsonArea = h("textarea", { id: "agent-json", rows: 16, class: "code", spellcheck: "false", "aria-describedby": "agent-json-error" });
  const jsonError = h("p", { class: "field-error", id: "agent-json-error" });
  const form = h("form", { class: "agent-form", novalidate: true, dataset: { draft: `agent-${id || "new"}` }, "aria-labelledby": "page-title" });

  const collect = () => {
    const out = {};
    for (const [key, w] of Object.entries(widgets)) out[key] = w.get();
    return out;
  };
  const payloadFor = (values) => {
    if (!original) {
      return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== null && v !== undefined));
    }
    const changed = {};
    for (const [key, v] of Object.entries(values)) {
      if (canonical({ v: v ?? null }) !== canonical({ v: original[key] ?? null })) changed[key] = v ?? null;
    }
    return changed;
  };
  const refreshJson = () => {
    try {
      jsonArea.value = JSON.stringify(Object.fromEntries(Object.entries(collect()).filter(([, v]) => v !== null)), null, 2);
      jsonError.textContent = "";
    } catch (error) {
      jsonError.textContent = error.message;
    }
  };
  const refreshLists = () => {
    for (const w of refreshers) w.refresh(form);
  };

  for (const [name, nodes] of sections) {
    if (!nodes.length) continue;
    // a group that is one nested config is titled by its own legend
    const single = nodes.length === 1 && nodes[0].tagName === "FIELDSET";
    form.append(h("section", { class: `card${single ? " single" : ""}`, "aria-label": name }, single ? null : h("h2", {}, name), nodes));
  }
  const submit = h("button", { type: "submit" }, original ? "Save changes" : "Create agent");
  form.append(alert, h("div", { class: "form-actions" }, submit));
  form.addEventListener("input", refreshJson);
  form.addEventListener("change", (event) => {
    if (event.target.dataset.path && event.target.dataset.path.endsWith(".provider")) refreshLists();
    refreshJson();
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors(form);
    showAlert(alert, "");
    let payload;
    try {
      payload = payloadFor(collect());
    } catch (error) {
      if (error instanceof FieldError) return showFieldError(form, error, alert);
      throw error;
    }
    if (original && !Object.keys(payload).length) {
      toast("Nothing changed.");
      return;
    }
    submit.disabled = true;
    try {
      const saved = original
        ? await patch(`/agents/${encodeURIComponent(original.id)}`, payload)
        : await post("/agents", payload);
      const savedAgent = saved.agent || saved;
      const warnings = (saved.warnings || []).map((w) => w.message).filter(Boolean);
      toast(`${original ? "Agent saved." : "Agent created."}${warnings.length ? ` Note: ${warnings.join(" ")}` : ""}`);
      ctx.navigate(`#/agents/${savedAgent.id}`);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) return;
      showFieldError(form, error, alert);
    } finally {
      submit.disabled = false;
    }
  });

  const applyJson = h("button", { type: "button" }, "Apply JSON to form");
  applyJson.addEventListener("click", () => {
    try {
      const value = JSON.parse(jsonArea.value);
      for (const [key, w] of Object.entries(widgets)) w.set(value[key]);
      refreshLists();
      jsonError.textContent = "";
      toast("JSON applied to the form: review it and save.");
    } catch (error) {
      jsonError.textContent = `Not valid JSON: ${error.message}`;
      jsonArea.setAttribute("aria-invalid", "true");
    }
  });

  const actions = [];
  if (original) {
    const remove = h("button", { type: "button", class: "danger" }, "Delete agent");
    remove.addEventListener("click", async () => {
      if (!confirm(`Delete agent "${original.name}"?`)) return;
      try {
        await del(`/agents/${encodeURIComponent(original.id)}`);
        toast("Agent deleted.");
        ctx.navigate("#/agents");
      } catch (error) {
        showAlert(alert, error.message);
      }
    });
    actions.push(h("a", { class: "button secondary", href: `#/calls?agent_id=${encodeURIComponent(original.id)}` }, "Calls"), remove);
  }

  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/agents" }, "Agents"), " / ", original ? original.name : "New agent"),
    pageHeader(original ? original.name : "New agent", actions),
  );
  if (original) {
    const talk = h("section", { id: "talk-to-agent", "aria-label": "Talk to this agent", class: "card" });
    root.append(talk);
    mountTalk(talk, original.id);
  }
  root.append(
    form,
    h(
      "details",
      { class: "card json-view" },
      h("summary", {}, "JSON view"),
      h("label", { for: "agent-json" }, "Agent JSON (what the form sends; edit and apply)"),
      jsonArea,
      jsonError,
      applyJson,
    ),
  );
  refreshLists();
  refreshJson();
}

async function mountTalk(section, agentId) {
  try {
    const { mountTalkToAgent } = await import("./webcall.js");
    mountTalkToAgent(section, { agentId, getApiKey });
  } catch (error) {
    clear(section, h("h2", {}, "Talk to this agent"), h("p", { class: "hint" }, `Browser calls are not available here (${error.message}).`));
  }
}
