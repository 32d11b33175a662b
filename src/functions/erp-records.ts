import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { erpReadQuery } from "../lib/erp/erp-records-service";
import { erpRecordsPutBody } from "../lib/model/erp-schemas";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, readJson, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";

const route = "companies/{company}/erp/{table}";

export function erpRecordFunctions(services: () => Services): FunctionDefinition[] {
  async function upsertErpRecords(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().erpRecords.upsert(request.params.company ?? "", request.params.table ?? "", await readJson(request))),
    );
  }

  async function readErpRecords(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().erpRecords.read(request.params.company ?? "", request.params.table ?? "", Object.fromEntries(request.query.entries()))),
    );
  }

  async function deleteErpRecord(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      await services().erpRecords.delete(request.params.company ?? "", request.params.table ?? "", request.params.id ?? "");
      return { status: 204 };
    });
  }

  return [
    {
      name: "erp-records-put",
      trigger: "http",
      route,
      methods: ["PUT"],
      authLevel: "function",
      summary: "Upsert up to 1000 ERP records",
      handler: upsertErpRecords,
      contract: {
        body: erpRecordsPutBody,
        responses: { 200: "{ count, records: [{ id, modifiedAt }] }", 400: "Bad records, named by index", 404: "Unknown table or no setup" },
      },
    },
    {
      name: "erp-records-get",
      trigger: "http",
      route,
      methods: ["GET"],
      authLevel: "function",
      summary: "ERP records changed since a time, with continuation",
      handler: readErpRecords,
      contract: { query: erpReadQuery, responses: { 200: "{ value, continuationToken? }", 400: "Invalid query", 404: "Unknown table or no setup" } },
    },
    {
      name: "erp-records-delete",
      trigger: "http",
      route: `${route}/{id}`,
      methods: ["DELETE"],
      authLevel: "function",
      summary: "Delete an ERP record",
      handler: deleteErpRecord,
      contract: { responses: { 204: "Deleted", 404: "No such record" } },
    },
  ];
}
