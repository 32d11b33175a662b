// The mappings of a company: list, change, match records.
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { matchInput } from "../lib/sync/sync-admin";
import { mappingPatch } from "../lib/sync/mapping-settings";
import { mappingListSchema, mappingSchema } from "../lib/http/response-schemas";
import { preconditions, readJson } from "../lib/http/respond";

const base = "companies/{company}/sync";

export function syncMappingFunctions(services: () => Services): FunctionDefinition[] {
  async function listMappings(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, await services().syncViews.mappings(request.params.company ?? "")));
  }

  async function updateMapping(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { mapping, etag } = await services().syncAdmin.updateMapping(
        request.params.company ?? "",
        request.params.mapping ?? "",
        await readJson(request),
        preconditions(request),
      );
      return json(200, { ...mapping, etag }, { etag });
    });
  }

  async function matchRecords(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().syncAdmin.match(request.params.company ?? "", request.params.mapping ?? "", await readJson(request))),
    );
  }

  return [
    {
      name: "sync-mappings",
      trigger: "http",
      route: `${base}/mappings`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Mappings with direction, filters, field mappings, watermarks",
      handler: listMappings,
      contract: { responses: { 200: { description: "{ value: mappings }", schema: mappingListSchema } } },
    },
    {
      name: "sync-mapping-update",
      trigger: "http",
      route: `${base}/mappings/{mapping}`,
      methods: ["PATCH"],
      authLevel: "function",
      summary: "Change a mapping's direction, filters, conflict, deletion and retry settings and its field mappings (If-Match)",
      handler: updateMapping,
      contract: {
        versioned: true,
        body: mappingPatch,
        responses: {
          200: { description: "The mapping, with its ETag", schema: mappingSchema },
          400: "Invalid settings",
          404: "No such mapping",
          412: "Changed since read",
        },
      },
    },
    {
      name: "sync-mapping-match",
      trigger: "http",
      route: `${base}/mappings/{mapping}/match`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Match-based coupling of uncoupled records",
      handler: matchRecords,
      contract: {
        body: matchInput,
        responses: { 200: "{ coupled, created, ambiguous, unmatched }", 400: "Invalid fields", 404: "No such mapping", 409: "The connection is disabled" },
      },
    },
  ];
}
