// Tasks: the list (filter by agent and state) and one task in full — result, error, usage,
// cost, timings, files changed, its event timeline (live while it runs) and its screenshots.
import { api, EventStream, eventSummary, FINISHED, request, TERMINAL } from "../api.js";
import { clear, field, h, money, seconds, stateBadge, table, time, toast } from "../dom.js";

const STATES = ["", "queued", "running", "succeeded", "failed", "cancelled", "timed_out", "interrupted"];

export function render(main, params) {
  return params.id ? detail(main, params.id) : list(main, params);
}

function list(main, params) {
  const agent = h("input", { name: "agent", value: params.agent || "", placeholder: "any agent",
    "data-testid": "filter-agent" });
  const state = h("select", { name: "state", "data-testid": "filter-state" },
    STATES.map((s) => h("option", { value: s }, s || "any state")));
  state.value = params.state || "";
  const form = h("form", { class: "row filters" }, field("agent", agent), field("state", state),
    h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (agent.value) query.set("agent", agent.value);
    if (state.value) query.set("state", state.value);
    location.hash = `#/tasks?${query}`;
  });
  const body = h("div", {});

  async function refresh() {
    const query = new URLSearchParams({ limit: "200" });
    if (params.agent) query.set("agent", params.agent);
    if (params.state) query.set("state", params.state);
    try {
      const { tasks } = await api("GET", `/v1/tasks?${query}`);
      const rows = tasks.map((t) => h("tr", { "data-task": t.id },
        h("td", {}, h("a", { href: `#/tasks/${t.id}` }, t.id.slice(0, 12))),
        h("td", {}, t.agent),
        h("td", {}, stateBadge(t.state)),
        h("td", {}, time(t.created_at)),
        h("td", { class: "num" }, t.run_s === null ? "–" : t.run_s.toFixed(2)),
        h("td", { class: "num" }, money(t.cost_usd)),
        h("td", { class: "prompt" }, t.prompt.slice(0, 80))));
      clear(body).append(tasks.length
        ? table(["task", "agent", "state", "created", "run s", "cost", "prompt"], rows,
          { class: "grid", "data-testid": "tasks-table" })
        : h("p", { class: "muted" }, "No tasks match."));
    } catch (error) {
      clear(body).append(h("p", { class: "error" }, error.message));
    }
  }

  main.append(h("h1", {}, "Tasks"), form, body);
  refresh();
  const timer = setInterval(refresh, 3000);
  return () => clearInterval(timer);
}

function detail(main, id) {
  const facts = h("div", { class: "card", "data-testid": "task-detail" });
  const timeline = h("ol", { class: "timeline", "data-testid": "task-timeline" });
  const artifacts = h("div", { class: "artifacts", "data-testid": "task-artifacts" });
  let stream = null;
  let lastSeq = 0;

  function addEvent(event) {
    lastSeq = Math.max(lastSeq, event.seq);
    timeline.append(h("li", { "data-type": event.type },
      h("span", { class: "seq" }, event.seq), " ", h("span", { class: "muted" }, time(event.ts)), " ",
      h("span", { class: "type" }, event.type), " ", h("span", { class: "muted" }, eventSummary(event))));
  }

  async function showTask() {
    const t = await api("GET", `/v1/tasks/${encodeURIComponent(id)}`);
    const rows = [
      ["agent", h("a", { href: `#/tasks?agent=${encodeURIComponent(t.agent)}` }, t.agent)],
      ["state", stateBadge(t.state)],
      ["prompt", h("pre", {}, t.prompt)],
      ["result", t.result === null ? "–" : h("pre", { "data-testid": "detail-result" }, t.result)],
      ["error", t.error ? h("span", { class: "error" }, `${t.error.type}: ${t.error.message}`) : "–"],
      ["usage", `${t.usage.input_tokens} in / ${t.usage.output_tokens} out` +
        (t.usage.cached_input_tokens ? ` (${t.usage.cached_input_tokens} cached)` : "")],
      ["cost", money(t.cost_usd)],
      ["attempts", t.attempts],
      ["created", time(t.created_at)],
      ["queue wait", seconds(t.queue_wait_s)],
      ["run time", seconds(t.run_s)],
      ["deadline", `${t.timeout_s} s`],
      ["files changed", t.files_changed.length ? h("ul", {}, t.files_changed.map((f) => h("li", {}, f))) : "–"],
    ];
    const cancel = FINISHED.has(t.state) ? null : h("button", { type: "button", class: "danger small",
      onclick: async () => { try { await api("POST", `/v1/tasks/${t.id}/cancel`); } catch (e) { toast(e.message, "error"); } },
    }, "cancel");
    clear(facts).append(h("h2", {}, `Task ${t.id} `, cancel),
      h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
    return t;
  }

  async function showArtifacts() {
    // screenshots of browser tasks; servers without the artifacts route answer 404: no section
    const response = await request("GET", `/v1/tasks/${encodeURIComponent(id)}/artifacts`);
    if (!response.ok) return;
    const body = await response.json();
    const items = Array.isArray(body) ? body : body.artifacts || [];
    if (!items.length) return;
    clear(artifacts).append(h("h2", {}, "Artifacts"));
    for (const item of items) {
      const artifactId = item.id || item.artifact_id;
      const type = item.content_type || item.media_type || "image/png";
      const blobResponse = await request("GET", `/v1/tasks/${encodeURIComponent(id)}/artifacts/${encodeURIComponent(artifactId)}`);
      if (!blobResponse.ok) continue;
      const url = URL.createObjectURL(await blobResponse.blob());
      const caption = item.name || item.label || item.url || artifactId;
      artifacts.append(h("figure", {},
        type.startsWith("image/") ? h("img", { src: url, alt: String(caption) })
          : h("a", { href: url, download: String(artifactId) }, String(caption)),
        h("figcaption", {}, String(caption))));
    }
  }

  async function load() {
    let task;
    try {
      task = await showTask();
    } catch (error) {
      clear(facts).append(h("p", { class: "error" }, error.message));
      return;
    }
    const page = await api("GET", `/v1/events?task_id=${encodeURIComponent(id)}&limit=1000`);
    page.events.forEach(addEvent);
    showArtifacts().catch(() => {});
    if (FINISHED.has(task.state)) return;
    stream = new EventStream({
      taskId: id, afterSeq: lastSeq,
      onEvent: (event) => {
        addEvent(event);
        if (TERMINAL.has(event.type)) {
          stream.stop();
          showTask();
          showArtifacts().catch(() => {});
        }
      },
    }).start();
  }

  main.append(h("p", {}, h("a", { href: "#/tasks" }, "← all tasks")), facts,
    h("h2", {}, "Events"), timeline, artifacts);
  load();
  return () => { if (stream) stream.stop(); };
}
