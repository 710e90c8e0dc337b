// A form built from the API's own OpenAPI schema (so every field the API
// accepts is editable, including ones added later). Each control carries
// data-path="llm_config.temperature" so an API error's `param` finds it.
import { field, h, nextId } from "./ui.js";

let openapiPromise = null;
export function openapi() {
  if (!openapiPromise) {
    openapiPromise = fetch("/api/v1/openapi.json", { cache: "no-store" }).then((r) => {
      if (!r.ok) throw new Error(`openapi.json: HTTP ${r.status}`);
      return r.json();
    });
    openapiPromise.catch(() => {
      openapiPromise = null;
    });
  }
  return openapiPromise;
}

export function resolve(spec, schema) {
  let s = schema || {};
  while (s.$ref) s = spec.components.schemas[s.$ref.split("/").pop()];
  return s;
}

/** Unwrap `anyOf: [X, {type: null}]` → {schema: X, nullable: true}. */
export function unwrap(spec, schema) {
  let s = resolve(spec, schema);
  let nullable = false;
  if (s.anyOf) {
    const others = s.anyOf.filter((x) => x.type !== "null");
    nullable = others.length < s.anyOf.length;
    if (others.length === 1) s = { ...resolve(spec, others[0]), default: s.default ?? resolve(spec, others[0]).default };
  }
  return { schema: s, nullable };
}

export class FieldError extends Error {
  constructor(param, message) {
    super(message);
    this.param = param;
  }
}

export function humanize(key) {
  const words = key
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/_/g, " ")
    .replace(/\b(stt|llm|tts|url|id|ids|sip|gdpr|json)\b/gi, (w) => w.toUpperCase())
    .trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Serialize with sorted keys, dropping nulls and empty arrays (for change detection). */
export function canonical(value) {
  const norm = (v) => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === "object") {
      const out = {};
      for (const k of Object.keys(v).sort()) {
        const x = norm(v[k]);
        if (x === null || x === undefined || (Array.isArray(x) && x.length === 0)) continue;
        out[k] = x;
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

const isEnumArray = (s) => s.type === "array" && s.items && s.items.enum;

/**
 * build(spec, schema, path, {label, overrides}) → widget {el, get(), set(v)}.
 * overrides[path](ctx) may return a custom widget for that path.
 */
export function build(spec, rawSchema, path, opts = {}) {
  const { schema, nullable } = unwrap(spec, rawSchema);
  const key = path.split(".").pop();
  const label = opts.labels?.[path] ?? humanize(key);
  const hint = opts.hints?.[path] ?? schema.description;
  const override = opts.overrides?.[path];
  if (override) return override({ spec, schema, nullable, path, label, hint, opts });

  if (schema.type === "object" && schema.properties) return objectWidget(spec, schema, nullable, path, label, opts);
  if (schema.enum) return enumWidget(schema, nullable, path, label, hint);
  if (schema.type === "boolean") return boolWidget(schema, path, label, hint);
  if (schema.type === "integer" || schema.type === "number") return numberWidget(schema, path, label, hint);
  if (schema.type === "string") return textWidget(schema, path, label, hint);
  if (isEnumArray(schema)) return enumArrayWidget(schema, nullable, path, label);
  if (schema.type === "array" && resolve(spec, schema.items).type === "string") return linesWidget(nullable, path, label, hint);
  return jsonWidget(path, label, hint, nullable);
}

function objectWidget(spec, schema, nullable, path, label, opts) {
  const required = new Set(schema.required || []);
  const children = Object.entries(schema.properties).map(([k, sub]) => [
    k,
    build(spec, sub, path ? `${path}.${k}` : k, { ...opts, required: required.has(k) }),
  ]);
  const legendId = nextId("lg");
  const el = h(
    "fieldset",
    { class: "group", "data-path": path, "aria-labelledby": legendId, tabindex: "-1" },
    h("legend", { id: legendId }, label),
    h("p", { class: "field-error" }),
    children.map(([, w]) => w.el),
  );
  return {
    el,
    get() {
      // a nested config nobody filled in (all empty or at defaults) is "not set"
      if (nullable && !children.some(([, w]) => w.touched())) return null;
      const out = {};
      for (const [k, w] of children) {
        const v = w.get();
        if (v !== null && v !== undefined) out[k] = v;
      }
      return out;
    },
    set(value) {
      for (const [k, w] of children) w.set(value ? value[k] : undefined);
    },
    touched() {
      return children.some(([, w]) => w.touched());
    },
  };
}

function enumWidget(schema, nullable, path, label, hint) {
  const select = h(
    "select",
    { "data-path": path },
    h("option", { value: "" }, schema.default !== undefined && schema.default !== null ? `(default: ${schema.default})` : "(not set)"),
    schema.enum.map((v) => h("option", { value: v }, String(v))),
  );
  return {
    el: field(label, select, hint),
    control: select,
    get: () => (select.value === "" ? null : select.value),
    set(v) {
      select.value = v ?? "";
      if (select.selectedIndex < 0) select.value = "";
    },
    touched: () => select.value !== "",
  };
}

function boolWidget(schema, path, label, hint) {
  const input = h("input", { type: "checkbox", "data-path": path, value: "on" });
  input.id = nextId("fld");
  const wrap = h(
    "div",
    { class: "field check" },
    input,
    h("label", { for: input.id }, label),
    hint ? h("p", { class: "hint" }, hint) : null,
    h("p", { class: "field-error" }),
  );
  return {
    el: wrap,
    control: input,
    get: () => input.checked,
    set(v) {
      input.checked = v === undefined || v === null ? !!schema.default : !!v;
    },
    touched: () => input.checked !== !!schema.default,
  };
}

function numberWidget(schema, path, label, hint) {
  const input = h("input", {
    type: "number",
    inputmode: schema.type === "integer" ? "numeric" : "decimal",
    step: schema.type === "integer" ? "1" : "any",
    "data-path": path,
    placeholder: schema.default !== undefined ? String(schema.default) : null,
  });
  const range = [schema.minimum, schema.maximum].every((x) => x !== undefined) ? `${schema.minimum}–${schema.maximum}` : null;
  return {
    el: field(label, input, hint || range),
    control: input,
    get() {
      if (input.value.trim() === "") return null;
      const n = Number(input.value);
      return Number.isNaN(n) ? input.value : n;
    },
    set(v) {
      input.value = v === null || v === undefined ? "" : String(v);
    },
    touched: () => input.value.trim() !== "",
  };
}

function textWidget(schema, path, label, hint) {
  const long = (schema.maxLength || 0) >= 4000;
  const control = long
    ? h("textarea", { rows: 4, "data-path": path })
    : h("input", {
        type: schema.format === "email" ? "email" : path.endsWith("url") ? "url" : "text",
        "data-path": path,
        autocomplete: "off",
      });
  return {
    el: field(label, control, hint),
    control,
    get: () => (control.value.trim() === "" ? null : control.value.trim()),
    set(v) {
      control.value = v ?? "";
    },
    touched: () => control.value.trim() !== "",
  };
}

function enumArrayWidget(schema, nullable, path, label) {
  const legendId = nextId("lg");
  const boxes = schema.items.enum.map((v) => {
    const input = h("input", { type: "checkbox", value: v, "data-path": path, name: path });
    input.id = nextId("fld");
    return [v, input, h("div", { class: "check" }, input, h("label", { for: input.id }, v))];
  });
  const el = h(
    "fieldset",
    { class: "group checks", "data-path": path, "aria-labelledby": legendId, tabindex: "-1" },
    h("legend", { id: legendId }, label),
    h("p", { class: "field-error" }),
    boxes.map(([, , row]) => row),
  );
  return {
    el,
    get() {
      const picked = boxes.filter(([, input]) => input.checked).map(([v]) => v);
      return picked.length ? picked : nullable ? null : [];
    },
    set(v) {
      const set = new Set(v || []);
      for (const [value, input] of boxes) input.checked = set.has(value);
    },
    touched: () => boxes.some(([, input]) => input.checked),
  };
}

function linesWidget(nullable, path, label, hint) {
  const area = h("textarea", { rows: 3, "data-path": path });
  return {
    el: field(label, area, hint || "One per line"),
    control: area,
    get() {
      const lines = area.value
        .split("\n")
        .map((s) => s.trim())
        .filter(Boolean);
      return lines.length ? lines : nullable ? null : [];
    },
    set(v) {
      area.value = (v || []).join("\n");
    },
    touched: () => area.value.trim() !== "",
  };
}

export function jsonWidget(path, label, hint, nullable = true) {
  const area = h("textarea", { rows: 5, class: "code", "data-path": path, spellcheck: "false" });
  return {
    el: field(label, area, hint || "JSON"),
    control: area,
    get() {
      const text = area.value.trim();
      if (!text) return nullable ? null : undefined;
      try {
        return JSON.parse(text);
      } catch (error) {
        throw new FieldError(path, `${label}: not valid JSON (${error.message})`);
      }
    },
    set(v) {
      area.value = v === null || v === undefined || (Array.isArray(v) && !v.length) ? "" : JSON.stringify(v, null, 2);
    },
    touched: () => area.value.trim() !== "",
  };
}
