import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import * as z from "zod";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { badRequest, fieldErrorsFromZod } from "../lib/http/problem";
import { json, readJson, respond } from "../lib/http/respond";
import { services } from "../lib/services";

const defaultSetupInput = z.strictObject({ confirm: z.boolean().optional() });

export async function useDefaultSyncSetup(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return respond(context, async () => {
    const input = defaultSetupInput.safeParse(await readJson(request));
    if (!input.success) throw badRequest(fieldErrorsFromZod(input.error));
    const { syncSetup, setup } = services();
    const company = request.params.company ?? "";
    const result = await syncSetup.installDefault(company, input.data);
    const view = await setup.read(company);
    return json(200, { message: result.message, mappings: result.mappings, jobs: result.jobs.length, activeScheduledSyncJobs: view.activeScheduledSyncJobs });
  });
}

export const syncSetupFunctions: FunctionDefinition[] = [
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
