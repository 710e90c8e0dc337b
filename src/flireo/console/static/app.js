// The console shell: sign-in, hash routing, and keeping a form's draft across a
// 401 (the key was revoked mid-session) so nothing typed is lost.
import { clearApiKey, get, getApiKey, onUnauthorized, setApiKey } from "./api.js";
import { clear, h } from "./ui.js";

const DRAFT_STORAGE = "flireo.draft";

const pages = {
  agents: () => import("./agents.js"),
  numbers: () => import("./numbers.js"),
  calls: () => import("./calls.js"),
  campaigns: () => import("./campaigns.js"),
  usage: () => import("./usage.js"),
  settings: () => import("./settings.js"),
};

const $ = (id) => document.getElementById(id);
let pageController = null;
let signedIn = false;

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = hash.split("?");
  const [name, ...rest] = path.split("/").filter(Boolean);
  return { name: pages[name] ? name : "agents", params: rest.map(decodeURIComponent), query: new URLSearchParams(search) };
}

function showSignIn({ note = "", error = "" } = {}) {
  signedIn = false;
  if (pageController) pageController.abort();
  $("view").hidden = true;
  $("nav").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-note").textContent = note;
  $("sign-in-error").textContent = error;
  const input = $("api-key");
  input.setAttribute("aria-invalid", error ? "true" : "false");
  input.value = "";
  document.title = "Sign in · Flireo console";
  input.focus();
}

function showApp() {
  signedIn = true;
  $("sign-in").hidden = true;
  $("view").hidden = false;
  $("nav").hidden = false;
  $("sign-out").hidden = false;
}

// -- drafts -----------------------------------------------------------------

function controlKey(el) {
  return el.dataset.path || el.name || el.id || null;
}

function saveDraft() {
  const forms = {};
  for (const form of $("view").querySelectorAll("form[data-draft]")) {
    const values = {};
    for (const el of form.elements) {
      const key = controlKey(el);
      if (!key || el.type === "password" || el.type === "file" || el.type === "submit" || el.type === "button") continue;
      if (el.type === "checkbox" || el.type === "radio") values[`${key}::${el.value}`] = el.checked;
      else values[key] = el.value;
    }
    forms[form.dataset.draft] = values;
  }
  if (Object.keys(forms).length) {
    sessionStorage.setItem(DRAFT_STORAGE, JSON.stringify({ hash: location.hash, forms }));
  }
}

function restoreDraft() {
  const raw = sessionStorage.getItem(DRAFT_STORAGE);
  if (!raw) return false;
  let draft;
  try {
    draft = JSON.parse(raw);
  } catch {
    sessionStorage.removeItem(DRAFT_STORAGE);
    return false;
  }
  if (draft.hash !== location.hash) return false;
  let restored = false;
  for (const form of $("view").querySelectorAll("form[data-draft]")) {
    const values = draft.forms[form.dataset.draft];
    if (!values) continue;
    for (const el of form.elements) {
      const key = controlKey(el);
      if (!key) continue;
      if (el.type === "checkbox" || el.type === "radio") {
        const v = values[`${key}::${el.value}`];
        if (v !== undefined && el.checked !== v) {
          el.checked = v;
          el.dispatchEvent(new Event("change", { bubbles: true }));
        }
      } else if (values[key] !== undefined && el.value !== values[key]) {
        el.value = values[key];
        el.dispatchEvent(new Event("change", { bubbles: true }));
        el.dispatchEvent(new Event("input", { bubbles: true }));
      }
    }
    form.dataset.restored = "true";
    restored = true;
  }
  sessionStorage.removeItem(DRAFT_STORAGE);
  return restored;
}

onUnauthorized(() => {
  if (!signedIn) return;
  saveDraft();
  clearApiKey();
  showSignIn({
    error: "Your API key is no longer accepted (revoked or expired). Sign in again: the form you were editing is kept.",
  });
});

// -- routing ----------------------------------------------------------------

async function render() {
  if (!getApiKey()) {
    showSignIn();
    return;
  }
  showApp();
  if (pageController) pageController.abort();
  const controller = new AbortController();
  pageController = controller;
  const { name, params, query } = route();
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const view = $("view");
  view.setAttribute("aria-busy", "true");
  try {
    const module = await pages[name]();
    // built off-screen and shown whole: no half-rendered page to click into
    const fresh = h("div", { class: "page", dataset: { page: name, route: location.hash } });
    await module.render(fresh, params, { signal: controller.signal, navigate, query });
    if (controller.signal.aborted) return;
    clear(view, fresh);
    const title = fresh.querySelector("h1");
    document.title = `${title ? title.textContent : name} · Flireo console`;
    if (restoreDraft()) {
      const note = h("p", { class: "note", role: "status" }, "Your unsaved changes were restored.");
      fresh.prepend(note);
    }
  } catch (error) {
    if (controller.signal.aborted || !signedIn) return;
    clear(view, h("div", { class: "alert", role: "alert" }, `Could not load this page: ${error.message}`));
  } finally {
    if (pageController === controller) view.removeAttribute("aria-busy");
  }
}

export function navigate(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

window.addEventListener("hashchange", () => {
  render();
  $("main").focus({ preventScroll: true });
});

$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  const errorEl = $("sign-in-error");
  if (!key) {
    errorEl.textContent = "Enter an API key.";
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const button = event.submitter || event.target.querySelector("button[type=submit]");
  button.disabled = true;
  errorEl.textContent = "";
  try {
    await get("/account", undefined, { key });
    setApiKey(key);
    input.value = "";
    await render();
  } catch (error) {
    input.setAttribute("aria-invalid", "true");
    errorEl.textContent =
      error.status === 401
        ? "That API key was not accepted: it is wrong or has been revoked."
        : `Could not sign in: ${error.message}`;
    input.focus();
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", () => {
  clearApiKey();
  sessionStorage.removeItem(DRAFT_STORAGE);
  showSignIn({ note: "Signed out. The API key was removed from this tab." });
});

render();
