import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { loadConfig } from "../lib/config";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";

export function healthFunctions(services: () => Services): FunctionDefinition[] {
  /**
   * Liveness plus what every request needs: valid settings, and table storage answering a data-plane read
   * (the operations the app's roles allow). A bad setting answers 503 naming the setting and its rule.
   */
  async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      try {
        loadConfig();
      } catch (error) {
        return json(503, { status: "misconfigured", checks: { settings: error instanceof Error ? error.message : String(error), storage: "not checked" } });
      }
      const { tables, secrets } = services();
      const storage = await tables
        .probe()
        .then(() => "ok" as const)
        .catch((error: unknown) => {
          context.warn(`Health: table storage did not answer: ${error instanceof Error ? error.message : String(error)}`);
          return "unreachable" as const;
        });
      const healthy = storage === "ok";
      return json(healthy ? 200 : 503, { status: healthy ? "ok" : "degraded", checks: { settings: "ok", storage }, secretStore: secrets.description });
    });
  }

  return [
    {
      name: "health",
      trigger: "http",
      route: "health",
      methods: ["GET"],
      authLevel: "anonymous",
      summary: "Service health",
      handler: health,
      contract: { responses: { 200: "Healthy", 503: "A setting is invalid, or storage does not answer" } },
    },
  ];
}
