// Agents: the list (state, kind, model, queue, running task, cost), create and delete, and
// the task form with the task's live progress and its result.
import { api, EventStream, eventSummary, FINISHED, TERMINAL } from "../api.js";
import { clear, field, h, money, stateBadge, table, toast } from "../dom.js";

export function render(main) {
  const list = h("div", { id: "agents-list" });
  const agentSelect = h("select", { name: "agent", required: true, "data-testid": "task-agent" });
  const progress = h("div", { id: "task-progress", class: "progress hidden" });
  let stream = null;

  async function refresh() {
    let agents;
    try {
      agents = (await api("GET", "/v1/agents")).agents;
    } catch (error) {
      clear(list).append(h("p", { class: "error" }, error.message));
      return;
    }
    const rows = agents.map((a) => h("tr", { "data-agent": a.name },
      h("td", {}, h("a", { href: `#/tasks?agent=${encodeURIComponent(a.name)}` }, a.name)),
      h("td", {}, a.kind),
      h("td", {}, stateBadge(a.state)),
      h("td", {}, `${a.provider}/${a.model}`),
      h("td", { class: "num" }, a.queued_tasks),
      h("td", {}, a.running_task_id
        ? h("a", { href: `#/tasks/${a.running_task_id}` }, a.running_task_id.slice(0, 8)) : "–"),
      h("td", { class: "num" }, a.tasks_total),
      h("td", { class: "num" }, money(a.cost_usd)),
      h("td", {}, h("button", {
        type: "button", class: "danger small", "data-testid": `delete-${a.name}`,
        onclick: () => remove(a.name),
      }, "delete"))));
    clear(list).append(agents.length
      ? table(["name", "kind", "state", "provider/model", "queued", "running", "tasks", "cost", ""],
        rows, { class: "grid", "data-testid": "agents-table" })
      : h("p", { class: "muted" }, "No agents yet: create one below."));
    const chosen = agentSelect.value;
    clear(agentSelect).append(...agents.map((a) => h("option", { value: a.name }, a.name)));
    if (agents.some((a) => a.name === chosen)) agentSelect.value = chosen;
  }

  async function remove(name) {
    if (!confirm(`Delete agent ${name}? Its queued and running tasks are cancelled.`)) return;
    try {
      await api("DELETE", `/v1/agents/${encodeURIComponent(name)}`);
      toast(`deleted ${name}`);
    } catch (error) {
      toast(error.message, "error");
    }
    refresh();
  }

  const createForm = h("form", { id: "create-agent", class: "card" },
    h("h2", {}, "Create an agent"),
    h("div", { class: "row" },
      field("name", h("input", {
        name: "name", required: true, maxlength: 64, pattern: "[a-z0-9]([a-z0-9_\\-]{0,62}[a-z0-9])?",
        title: "lowercase letters, digits, '-' and '_', 1–64 characters, starting and ending with a letter or digit",
        "data-testid": "agent-name",
      })),
      // a list to pick from, but free text: a server may offer kinds this page does not know
      field("kind", h("input", { name: "kind", value: "chat", list: "agent-kinds", required: true })),
      h("datalist", { id: "agent-kinds" },
        ["chat", "coder", "orchestrator", "browser", "claude_code"].map((k) => h("option", { value: k }))),
      field("provider", h("select", { name: "provider" },
        ["openai", "anthropic", "gemini"].map((p) => h("option", { value: p }, p)))),
      field("model", h("input", { name: "model", required: true, value: "gpt-4o-mini",
        "data-testid": "agent-model" }))),
    field("instructions", h("textarea", { name: "instructions", rows: 2 })),
    h("button", { type: "submit", "data-testid": "agent-create" }, "Create"));
  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(createForm));
    try {
      await api("POST", "/v1/agents", data);
      toast(`created ${data.name}`);
      createForm.reset();
      await refresh();
      agentSelect.value = data.name;
    } catch (error) {
      toast(error.message, "error");
    }
  });

  const taskForm = h("form", { id: "run-task", class: "card" },
    h("h2", {}, "Give an agent a task"),
    h("div", { class: "row" },
      field("agent", agentSelect),
      field("timeout (s)", h("input", { name: "timeout_s", type: "number", min: 1, step: "any",
        placeholder: "server default" }))),
    field("prompt", h("textarea", { name: "prompt", rows: 3, required: true,
      "data-testid": "task-prompt" })),
    h("button", { type: "submit", "data-testid": "task-submit" }, "Run"),
    progress);
  taskForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(taskForm));
    const body = { prompt: data.prompt };
    if (data.timeout_s) body.timeout_s = Number(data.timeout_s);
    try {
      const task = await api("POST", `/v1/agents/${encodeURIComponent(data.agent)}/tasks`, body);
      follow(task);
    } catch (error) {
      toast(error.message, "error");
    }
  });

  // the task's events as they arrive, then its result
  function follow(task) {
    if (stream) stream.stop();
    const state = h("span", { "data-testid": "progress-state" }, stateBadge(task.state));
    const cancel = h("button", { type: "button", class: "danger small", "data-testid": "task-cancel",
      onclick: async () => {
        try { await api("POST", `/v1/tasks/${task.id}/cancel`); } catch (error) { toast(error.message, "error"); }
      } }, "cancel");
    const events = h("ol", { class: "timeline", "data-testid": "progress-events" });
    const result = h("pre", { class: "result hidden", "data-testid": "task-result" });
    const error = h("p", { class: "error hidden", "data-testid": "task-error" });
    clear(progress).append(
      h("div", { class: "row spread" },
        h("span", {}, "task ", h("a", { href: `#/tasks/${task.id}` }, task.id.slice(0, 8)), " "),
        state, cancel),
      events, result, error);
    progress.classList.remove("hidden");
    stream = new EventStream({
      taskId: task.id,
      onEvent: async (event) => {
        events.append(h("li", { "data-type": event.type },
          h("span", { class: "seq" }, event.seq), " ", h("span", { class: "type" }, event.type), " ",
          h("span", { class: "muted" }, eventSummary(event))));
        if (event.type.startsWith("task.")) {
          clear(state).append(stateBadge(event.type.slice(5)));
        }
        if (TERMINAL.has(event.type)) {
          stream.stop();
          const done = await api("GET", `/v1/tasks/${task.id}`);
          clear(state).append(stateBadge(done.state));
          cancel.remove();
          if (done.result !== null) { result.textContent = done.result; result.classList.remove("hidden"); }
          if (done.error) { error.textContent = `${done.error.type}: ${done.error.message}`; error.classList.remove("hidden"); }
          refresh();
        }
      },
    }).start();
    if (FINISHED.has(task.state)) cancel.remove();
  }

  main.append(h("h1", {}, "Agents"), list, createForm, taskForm);
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => { clearInterval(timer); if (stream) stream.stop(); };
}
