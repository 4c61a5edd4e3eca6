// Costs: tokens and USD per agent, per provider/model, and in total.
import { api } from "../api.js";
import { clear, h, money, table } from "../dom.js";

export function render(main) {
  const body = h("div", { "data-testid": "costs" });

  async function refresh() {
    try {
      const report = await api("GET", "/v1/costs");
      clear(body).append(
        h("p", { class: "total" }, `Total ${money(report.total_cost_usd)} — `,
          `${report.total_input_tokens} tokens in, ${report.total_output_tokens} out`),
        h("h2", {}, "By agent"),
        table(["agent", "provider/model", "tokens in", "tokens out", "cost"],
          report.by_agent.map((a) => h("tr", {}, h("td", {}, a.agent), h("td", {}, `${a.provider}/${a.model}`),
            h("td", { class: "num" }, a.usage.input_tokens), h("td", { class: "num" }, a.usage.output_tokens),
            h("td", { class: "num" }, money(a.cost_usd)))), { class: "grid" }),
        h("h2", {}, "By provider/model (all time)"),
        table(["provider/model", "calls", "tokens in", "tokens out", "cost"],
          report.by_model.map((m) => h("tr", {}, h("td", {}, `${m.provider}/${m.model}`),
            h("td", { class: "num" }, m.calls), h("td", { class: "num" }, m.input_tokens),
            h("td", { class: "num" }, m.output_tokens), h("td", { class: "num" }, money(m.cost_usd)))),
          { class: "grid" }));
    } catch (error) {
      clear(body).append(h("p", { class: "error" }, error.message));
    }
  }

  main.append(h("h1", {}, "Costs"), body);
  refresh();
  const timer = setInterval(refresh, 5000);
  return () => clearInterval(timer);
}
