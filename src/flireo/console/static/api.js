// The console's only way to the server: the public REST API with a Bearer key.
// The key lives in sessionStorage["flireo.apiKey"] (this tab only), never in a
// URL or a cookie.

export const KEY_STORAGE = "flireo.apiKey";
export const API = "/api/v1";

export function getApiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function setApiKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function clearApiKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** An API error in the documented shape {"error": {code, message, param, type}}. */
export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "error";
    this.param = err.param || null;
    this.type = err.type || null;
  }
}

// Listeners told when the server answers 401 to a signed-in request.
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: { message: text.slice(0, 200) } };
  }
}

/**
 * request("GET", "/agents") → parsed JSON; throws ApiError on 4xx/5xx.
 * `query` values that are "" / null / undefined are left out.
 */
export async function request(method, path, { body, query, key, signal } = {}) {
  const apiKey = key ?? getApiKey();
  let url = API + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== "" && v !== null && v !== undefined) params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += `?${qs}`;
  }
  const headers = { Accept: "application/json", ...authHeaders(apiKey) };
  const init = { method, headers, signal, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const data = await parse(response);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && key === undefined) {
      for (const fn of unauthorizedListeners) fn(error);
    }
    throw error;
  }
  return data;
}

export const get = (path, query, opts = {}) => request("GET", path, { ...opts, query });
export const post = (path, body, opts = {}) => request("POST", path, { ...opts, body });
export const patch = (path, body, opts = {}) => request("PATCH", path, { ...opts, body });
export const del = (path, query, opts = {}) => request("DELETE", path, { ...opts, query });

/**
 * Read a Server-Sent Events stream with fetch() (EventSource cannot send the
 * Authorization header). Calls onEvent(type, data, id) for each message; resolves
 * when the server closes the stream; rejects on HTTP errors (ApiError) or when
 * `signal` aborts (AbortError).
 */
export async function streamEvents(path, onEvent, { signal } = {}) {
  const response = await fetch(API + path, {
    headers: { Accept: "text/event-stream", ...authHeaders(getApiKey()) },
    signal,
    cache: "no-store",
  });
  if (!response.ok) {
    const error = new ApiError(response.status, await parse(response));
    if (response.status === 401) for (const fn of unauthorizedListeners) fn(error);
    throw error;
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let type = "message";
  let data = [];
  let id = null;
  const dispatch = () => {
    if (data.length) {
      const raw = data.join("\n");
      let value = raw;
      try {
        value = JSON.parse(raw);
      } catch {
        /* not JSON: hand over the text */
      }
      onEvent(type, value, id);
    }
    type = "message";
    data = [];
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith("\r\n", nl) ? 2 : 1));
      if (line === "") {
        dispatch();
        continue;
      }
      if (line.startsWith(":")) continue; // comment / heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? "" : line.slice(colon + 1);
      if (val.startsWith(" ")) val = val.slice(1);
      if (field === "event") type = val || "message";
      else if (field === "data") data.push(val);
      else if (field === "id") id = val;
    }
  }
  dispatch();
}
