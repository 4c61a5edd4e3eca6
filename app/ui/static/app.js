// The console's entry point: key handling, the hash router, the server-state pill.
import { forgetKey, getKey, onUnauthorized, request, setKey } from "./api.js";
import { clear } from "./dom.js";
import * as agents from "./views/agents.js";
import * as costs from "./views/costs.js";
import * as events from "./views/events.js";
import * as providers from "./views/providers.js";
import * as tasks from "./views/tasks.js";

const VIEWS = { agents, tasks, events, providers, costs };
let config = { auth_required: false, grafana_url: null };
let cleanup = null;

function route() {
  const [path, query] = (location.hash.slice(1) || "/agents").split("?");
  const parts = path.split("/").filter(Boolean);
  const name = VIEWS[parts[0]] ? parts[0] : "agents";
  const params = Object.fromEntries(new URLSearchParams(query || ""));
  if (parts[1]) params.id = decodeURIComponent(parts[1]);
  for (const link of document.querySelectorAll("#nav a[data-view]")) {
    link.classList.toggle("active", link.dataset.view === name);
  }
  if (cleanup) cleanup();
  const main = clear(document.getElementById("main"));
  cleanup = VIEWS[name].render(main, params) || null;
}

function askForKey(message = "") {
  const dialog = document.getElementById("key-dialog");
  document.getElementById("key-error").textContent = message;
  if (!dialog.open) dialog.showModal();
}

async function checkServer() {
  const pill = document.getElementById("server-state");
  const key = getKey();
  if (config.auth_required && !key) {
    pill.textContent = "key needed";
    pill.className = "pill warn";
    return;
  }
  try {
    const response = await fetch("/ready", { headers: key ? { authorization: `Bearer ${key}` } : {} });
    const body = await response.json();
    pill.textContent = response.ok ? "ready" : body.status || "not ready";
    pill.className = `pill ${response.ok ? "ok" : "warn"}`;
  } catch {
    pill.textContent = "unreachable";
    pill.className = "pill bad";
  }
}

async function start() {
  try {
    config = await (await fetch("/ui/config.json")).json();
  } catch {
    /* keep defaults: the server may be restarting */
  }
  if (config.grafana_url) {
    const link = document.getElementById("grafana-link");
    link.href = config.grafana_url;
    link.classList.remove("hidden");
  }
  const forget = document.getElementById("forget-key");
  forget.classList.toggle("hidden", !config.auth_required);
  forget.addEventListener("click", () => { forgetKey(); askForKey(); });
  document.getElementById("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = document.getElementById("key-input").value.trim();
    setKey(key);
    const response = await request("GET", "/v1/agents");
    if (response.status === 401) { forgetKey(); askForKey("That key was refused."); return; }
    document.getElementById("key-dialog").close();
    checkServer();
    route();
  });
  onUnauthorized(() => { forgetKey(); askForKey("The server asks for a key."); });
  window.addEventListener("hashchange", route);
  checkServer();
  setInterval(checkServer, 3000);
  if (config.auth_required && !getKey()) askForKey();
  else route();
}

start();
