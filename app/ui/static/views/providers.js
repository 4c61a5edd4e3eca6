// Providers: breaker state per provider (or provider/model) with force open / reset /
// disable, bulkhead use and retry budget.
import { api } from "../api.js";
import { clear, h, table, toast } from "../dom.js";

export function render(main) {
  const body = h("div", { "data-testid": "providers" });

  async function act(provider, model, action) {
    try {
      await api("POST", `/v1/providers/${provider}/breaker`, model ? { action, model } : { action });
      toast(`${provider}${model ? "/" + model : ""}: ${action}`);
    } catch (error) {
      toast(error.message, "error");
    }
    refresh();
  }

  function buttons(provider, model) {
    const label = model ? `${provider}/${model}` : provider;
    return [
      h("button", { type: "button", class: "small danger", "data-testid": `force-open-${label}`,
        onclick: () => act(provider, model, "force_open") }, "force open"),
      h("button", { type: "button", class: "small", "data-testid": `reset-${label}`,
        onclick: () => act(provider, model, "reset") }, "reset"),
      h("button", { type: "button", class: "small", onclick: () => act(provider, model, "disable") },
        "disable"),
    ];
  }

  async function refresh() {
    let providers;
    try {
      providers = (await api("GET", "/v1/providers")).providers;
    } catch (error) {
      clear(body).append(h("p", { class: "error" }, error.message));
      return;
    }
    clear(body).append(...providers.map((p) => {
      const breakerRows = p.breakers.map((b) => {
        const model = b.name.includes("/") ? b.name.split("/").slice(1).join("/") : null;
        return h("tr", { "data-breaker": b.name },
          h("td", {}, b.name),
          h("td", {}, h("span", { class: `badge state-${b.state}`, "data-state": b.state }, b.state)),
          h("td", { class: "num" }, b.failure_rate === null ? "–" : `${b.failure_rate.toFixed(0)} %`),
          h("td", { class: "num" }, `${b.calls}/${b.required_calls}`),
          h("td", { class: "num" }, b.rejected_calls),
          h("td", { class: "num" }, b.next_probe_in_s === null ? "–" : `${b.next_probe_in_s.toFixed(1)} s`),
          h("td", {}, model ? buttons(p.name, model) : ""));
      });
      return h("section", { class: "card", "data-provider": p.name },
        h("h2", {}, p.name, " ", h("span", { class: `pill ${p.configured ? "ok" : "warn"}` },
          p.configured ? "configured" : "no key")),
        h("p", { class: "muted" }, p.base_url || ""),
        h("div", { class: "row" },
          h("span", {}, `bulkhead ${p.bulkhead.in_use}/${p.bulkhead.limit} in use, ${p.bulkhead.waiting} waiting`),
          h("span", {}, `retry budget ${p.retry_budget.available.toFixed(1)} available ` +
            `(${p.retry_budget.retries} retries / ${p.retry_budget.requests} requests)`),
          h("span", {}, "whole provider:"), buttons(p.name, null)),
        breakerRows.length
          ? table(["breaker", "state", "failure rate", "calls", "rejected", "next probe", ""], breakerRows, { class: "grid" })
          : h("p", { class: "muted" }, "no calls yet"));
    }));
  }

  main.append(h("h1", {}, "Providers"), body);
  refresh();
  const timer = setInterval(refresh, 2000);
  return () => clearInterval(timer);
}
