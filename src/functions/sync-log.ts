// The integration synchronization log and each row's errors.
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { logErrorsQuery, logQuery } from "../lib/sync/sync-views";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { errorPageSchema, logPageSchema } from "../lib/http/response-schemas";

const base = "companies/{company}/sync";

export function syncLogFunctions(services: () => Services): FunctionDefinition[] {
  async function readLog(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, await services().syncViews.log(request.params.company ?? "", Object.fromEntries(request.query.entries()))));
  }

  async function readLogErrors(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { company = "", id = "" } = request.params;
      return json(200, await services().syncViews.logErrors(company, id, Object.fromEntries(request.query.entries())));
    });
  }

  return [
    {
      name: "sync-log",
      trigger: "http",
      route: `${base}/log`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Job log rows, newest first",
      handler: readLog,
      contract: {
        query: logQuery,
        responses: { 200: { description: "{ value: log rows, newest first }", schema: logPageSchema }, 400: "Invalid query", 404: "No setup" },
      },
    },
    {
      name: "sync-log-errors",
      trigger: "http",
      route: `${base}/log/{id}/errors`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Error rows of one run",
      handler: readLogErrors,
      contract: {
        query: logErrorsQuery,
        responses: { 200: { description: "{ value: error rows, continuationToken? }", schema: errorPageSchema }, 400: "Invalid query", 404: "No such log row" },
      },
    },
  ];
}
