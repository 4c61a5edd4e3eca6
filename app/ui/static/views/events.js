// The live event stream: filters (agent, type prefix, task), pause/resume, and reconnection
// from the last seq seen after any drop — no event lost, none shown twice.
import { api, EventStream, eventSummary } from "../api.js";
import { field, h, time } from "../dom.js";

const KEEP = 500; // rows kept on screen
const RECENT = 200; // stored events shown when the stream starts

export function render(main, params) {
  const agent = h("input", { name: "agent", value: params.agent || "", placeholder: "any",
    "data-testid": "events-agent" });
  const type = h("input", { name: "type", value: params.type || "", placeholder: "e.g. task.*",
    "data-testid": "events-type" });
  const task = h("input", { name: "task_id", value: params.task_id || "", placeholder: "task id",
    "data-testid": "events-task" });
  const status = h("span", { class: "pill", "data-testid": "stream-status" }, "connecting");
  const count = h("span", { class: "muted", "data-testid": "events-count" }, "0 events");
  const pause = h("button", { type: "button", "data-testid": "events-pause" }, "Pause");
  const rows = h("tbody", { "data-testid": "events-rows" });
  let received = 0;
  let stream = null;

  const form = h("form", { class: "row filters" }, field("agent", agent),
    field("type (prefix*)", type), field("task", task), h("button", { type: "submit" }, "Apply"),
    pause, status, count);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    if (agent.value) query.set("agent", agent.value.trim());
    if (type.value) query.set("type", type.value.trim());
    if (task.value) query.set("task_id", task.value.trim());
    location.hash = `#/events?${query}`;
  });
  pause.addEventListener("click", () => {
    if (!stream) return;
    if (stream.stopped) { stream.resume(); pause.textContent = "Pause"; }
    else { stream.pause(); pause.textContent = "Resume"; }
  });

  function show(event) {
    received += 1;
    count.textContent = `${received} events`;
    rows.prepend(h("tr", { "data-seq": event.seq, "data-type": event.type },
      h("td", { class: "num" }, event.seq),
      h("td", {}, time(event.ts)),
      h("td", { class: "type" }, event.type),
      h("td", {}, event.agent || ""),
      h("td", {}, event.task_id ? h("a", { href: `#/tasks/${event.task_id}` }, event.task_id.slice(0, 8)) : ""),
      h("td", { class: "muted" }, eventSummary(event))));
    while (rows.childElementCount > KEEP) rows.lastElementChild.remove();
  }

  async function start() {
    let afterSeq = 0;
    try {
      const page = await api("GET", "/v1/events?limit=1&after_seq=0");
      afterSeq = Math.max(0, page.last_seq - RECENT);
    } catch (error) {
      status.textContent = error.message;
    }
    stream = new EventStream({
      afterSeq, agent: params.agent, type: params.type, taskId: params.task_id,
      onEvent: show,
      onStatus: (state, detail) => {
        status.textContent = detail ? `${state}: ${detail}` : state;
        status.className = `pill ${state === "live" ? "ok" : state === "error" ? "bad" : "warn"}`;
        status.dataset.state = state;
      },
    }).start();
  }

  main.append(h("h1", {}, "Events"), form,
    h("table", { class: "grid events" },
      h("thead", {}, h("tr", {}, ["seq", "time", "type", "agent", "task", ""].map((c) => h("th", {}, c)))),
      rows));
  start();
  return () => { if (stream) stream.stop(); };
}
