// The console's only way to the server: REST with the bearer key, and the event WebSocket
// with the key offered as a subprotocol (browsers cannot set headers on a WebSocket).

const KEY = "bigthree.key";
export const TERMINAL = new Set([
  "task.succeeded", "task.failed", "task.cancelled", "task.timed_out", "task.interrupted",
]);
export const FINISHED = new Set(["succeeded", "failed", "cancelled", "timed_out", "interrupted"]);

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

const listeners = { unauthorized: [] };
export function onUnauthorized(fn) { listeners.unauthorized.push(fn); }

export function getKey() { return sessionStorage.getItem(KEY); }
export function setKey(key) { sessionStorage.setItem(KEY, key); }
export function forgetKey() { sessionStorage.removeItem(KEY); }

export async function request(method, path, body) {
  const headers = {};
  const key = getKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) listeners.unauthorized.forEach((fn) => fn());
  return response;
}

export async function api(method, path, body) {
  const response = await request(method, path, body);
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    let message = error.message || `HTTP ${response.status}`;
    if (Array.isArray(error.fields) && error.fields.length) {
      message += ": " + error.fields.map((f) => `${f.loc.slice(1).join(".")}: ${f.message}`).join("; ");
    }
    throw new ApiError(response.status, error.type || "http_error", message, data);
  }
  return data;
}

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// Stored events after `afterSeq`, then live ones. When the socket drops (server restart, a
// slow-reader close) it reconnects with after_seq = the last seq delivered, and never hands
// the same seq twice: nothing lost, nothing repeated. `pause()` closes the socket; `resume()`
// reconnects from where it stopped.
export class EventStream {
  constructor({ afterSeq = 0, agent = "", type = "", taskId = "", onEvent, onStatus }) {
    this.lastSeq = afterSeq;
    this.filters = { agent, type, task_id: taskId };
    this.onEvent = onEvent;
    this.onStatus = onStatus || (() => {});
    this.ws = null;
    this.stopped = true;
    this.delay = 250;
    this.timer = null;
  }

  start() {
    this.stopped = false;
    this._connect();
    return this;
  }

  stop(status = "stopped") {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close(1000);
      this.ws = null;
    }
    this.onStatus(status);
  }

  pause() { this.stop("paused"); }
  resume() { if (this.stopped) this.start(); }

  _url() {
    const params = new URLSearchParams({ after_seq: String(this.lastSeq) });
    for (const [name, value] of Object.entries(this.filters)) if (value) params.set(name, value);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/v1/events/ws?${params}`;
  }

  _connect() {
    const key = getKey();
    const protocols = key ? ["bigthree.v1", `bearer.${base64url(key)}`] : ["bigthree.v1"];
    this.onStatus("connecting");
    const ws = new WebSocket(this._url(), protocols);
    this.ws = ws;
    ws.onopen = () => { this.delay = 250; this.onStatus("live"); };
    ws.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.type === "error" && frame.seq === undefined) {
        this.onStatus("error", frame.error && frame.error.message);
        return;
      }
      if (typeof frame.seq !== "number" || frame.seq <= this.lastSeq) return;
      this.lastSeq = frame.seq;
      this.onEvent(frame);
    };
    ws.onclose = (event) => {
      this.ws = null;
      if (this.stopped) return;
      if (event.code === 1008) { this.stopped = true; this.onStatus("error", event.reason); return; }
      this.onStatus("reconnecting");
      this.timer = setTimeout(() => this._connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }
}

// The interesting part of an event's payload, in a few words.
export function eventSummary(event) {
  const p = event.payload || {};
  if (event.type.startsWith("llm.") && p.model) {
    const reason = event.type === "llm.error" ? ` ${p.reason || p.type || ""}` : "";
    return `${p.provider || ""}/${p.model}${reason}`;
  }
  if (event.type === "tool.call" || event.type === "tool.result") return p.tool || p.name || "";
  if (p.error && typeof p.error === "object") return `${p.error.type}: ${p.error.message}`;
  if (p.result !== undefined) return String(p.result).slice(0, 120);
  if (p.state) return String(p.state);
  return "";
}
