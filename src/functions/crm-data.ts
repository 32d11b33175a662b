import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { crmQueryInput } from "../lib/connection/crm-data";
import { identifyCaller } from "../lib/http/caller-principal";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";

export function crmDataFunctions(services: () => Services): FunctionDefinition[] {
  /** CRM rows for the calling ERP user (App Service authentication), impersonated when users must map. */
  async function getCrmData(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { company = "", entitySet = "" } = request.params;
      const caller = await identifyCaller(request, services().callerTokens);
      return json(200, await services().crmData(company, entitySet, Object.fromEntries(request.query.entries()), caller));
    });
  }

  return [
    {
      name: "crm-data",
      trigger: "http",
      route: "companies/{company}/crm/{entitySet}",
      methods: ["GET"],
      authLevel: "function",
      summary: "Read CRM rows on behalf of the calling ERP user",
      handler: getCrmData,
      contract: {
        query: crmQueryInput,
        responses: {
          200: "{ value, actingAs }",
          403: "Users must map and the caller has no CRM user",
          404: "Unknown entity set or no setup",
          409: "The connection is not enabled",
        },
      },
    },
  ];
}
