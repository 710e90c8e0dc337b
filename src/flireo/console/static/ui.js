// Small DOM helpers shared by the pages (no framework, no build step).

/** h("button", {type: "button", onclick}, "Save") → element. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "text") el.textContent = v;
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled" || k === "hidden") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
export function nextId(prefix = "f") {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled control: field("Name", input) wires label[for] ↔ input[id]. */
export function field(labelText, control, hint) {
  if (!control.id) control.id = nextId("fld");
  const errorId = `${control.id}-error`;
  const parts = [h("label", { for: control.id }, labelText), control];
  const described = [errorId];
  if (hint) {
    const hintId = `${control.id}-hint`;
    parts.push(h("p", { class: "hint", id: hintId }, hint));
    described.push(hintId);
  }
  parts.push(h("p", { class: "field-error", id: errorId }));
  control.setAttribute("aria-describedby", described.join(" "));
  return h("div", { class: "field" }, parts);
}

export function fmtDate(value) {
  if (!value) return "—";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(Number(seconds));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function fmtClock(seconds) {
  const s = Math.max(0, Number(seconds) || 0);
  const m = Math.floor(s / 60);
  return `${m}:${(s % 60).toFixed(1).padStart(4, "0")}`;
}

export function fmtMoney(value, currency = "USD") {
  if (value === null || value === undefined) return "—";
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, maximumFractionDigits: 4 }).format(value);
  } catch {
    return `${Number(value).toFixed(4)} ${currency}`;
  }
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status || "unknown"}`, dataset: { status: status || "" } }, status || "—");
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 4000);
}

/** An alert box for errors that belong to no single field. */
export function alertBox() {
  return h("div", { class: "alert", role: "alert", hidden: true });
}

export function showAlert(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

/** A table: columns [{label, render(row) → node|string}] */
export function table(caption, columns, rows, { empty = "Nothing here yet." } = {}) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            { dataset: row.id ? { id: row.id } : {} },
            columns.map((c) => h("td", { dataset: { col: c.key || c.label } }, c.render(row))),
          ),
        ),
      ),
    ),
  );
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { id: "page-title" }, title), h("div", { class: "actions" }, actions));
}

export function jsonBlock(value, label) {
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, JSON.stringify(value, null, 2));
}

/** Pagination controls for {total, limit, offset}. */
export function pager(pagination, onOffset, label = "Pagination") {
  const { total = 0, limit = 20, offset = 0 } = pagination || {};
  const from = total ? offset + 1 : 0;
  const to = Math.min(offset + limit, total);
  return h(
    "nav",
    { class: "pager", "aria-label": label },
    h("button", { type: "button", disabled: offset <= 0, onclick: () => onOffset(Math.max(0, offset - limit)) }, "Previous"),
    h("span", { class: "pager-info", "aria-live": "polite" }, `${from}–${to} of ${total}`),
    h("button", { type: "button", disabled: offset + limit >= total, onclick: () => onOffset(offset + limit) }, "Next"),
  );
}

/** Show an API error at the control whose data-path matches error.param (or a parent of it). */
export function showFieldError(form, error, fallbackBox) {
  clearFieldErrors(form);
  const param = error && error.param;
  if (param) {
    const parts = String(param).split(".");
    for (let n = parts.length; n > 0; n -= 1) {
      const path = parts.slice(0, n).join(".");
      const control = form.querySelector(`[data-path="${CSS.escape(path)}"]`);
      if (control) {
        control.setAttribute("aria-invalid", "true");
        const holder = control.closest(".field, fieldset");
        const errorEl = holder && holder.querySelector(":scope > .field-error");
        if (errorEl) errorEl.textContent = error.message;
        const details = control.closest("details");
        if (details) details.open = true;
        control.focus();
        if (fallbackBox) showAlert(fallbackBox, `Please fix the highlighted field: ${error.message}`);
        return true;
      }
    }
  }
  if (fallbackBox) showAlert(fallbackBox, error ? error.message : "Something went wrong");
  return false;
}

export function clearFieldErrors(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
}

/** Parse a small CSV (RFC 4180 quoting) into rows of strings. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 1;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i += 1;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows.filter((r) => r.some((v) => v.trim() !== ""));
}
