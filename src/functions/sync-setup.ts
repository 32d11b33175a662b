import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { defaultSetupInput } from "../lib/sync/sync-setup-service";
import { json, readJson, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";

export function syncSetupFunctions(services: () => Services): FunctionDefinition[] {
  async function useDefaultSyncSetup(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const result = await services().syncSetup.installDefault(request.params.company ?? "", await readJson(request));
      return json(200, {
        message: result.message,
        mappings: result.mappings,
        jobs: result.jobs.length,
        activeScheduledSyncJobs: result.activeScheduledSyncJobs,
      });
    });
  }

  return [
    {
      name: "sync-default-setup",
      trigger: "http",
      route: "companies/{company}/sync/default-setup",
      methods: ["POST"],
      authLevel: "function",
      summary: "Install the default synchronization setup",
      handler: useDefaultSyncSetup,
      contract: { body: defaultSetupInput, responses: { 200: "Installed", 404: "No setup", 409: "Mappings exist: confirm with { confirm: true }" } },
    },
  ];
}
