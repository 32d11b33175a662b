import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import { services } from "../lib/services";

/** Liveness plus the one dependency every request needs: table storage answers. */
export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return respond(context, async () => {
    const { tables, secrets } = services();
    const storage = await tables
      .serviceClient()
      .getProperties({ abortSignal: AbortSignal.timeout(5000) })
      .then(() => "ok" as const)
      .catch((error: unknown) => {
        context.warn(`Health: table storage did not answer: ${error instanceof Error ? error.message : String(error)}`);
        return "unreachable" as const;
      });
    const healthy = storage === "ok";
    return json(healthy ? 200 : 503, { status: healthy ? "ok" : "degraded", checks: { storage }, secretStore: secrets.description });
  });
}

export const healthFunctions: FunctionDefinition[] = [
  { name: "health", trigger: "http", route: "health", methods: ["GET"], authLevel: "anonymous", summary: "Service health", handler: health, contract: { responses: { 200: "Healthy", 503: "Storage does not answer" } } },
];
