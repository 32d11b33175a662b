// Coupled records, conflicts and skipped records: couple, uncouple, synchronize, resolve, retry.
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { coupleInput, couplingQuery, issueQuery, resolveInput, synchronizeInput } from "../lib/sync/sync-admin";
import { couplingPageSchema, couplingSchema, issuePageSchema } from "../lib/http/response-schemas";
import { readJson } from "../lib/http/respond";

const base = "companies/{company}/sync";

export function syncRecordFunctions(services: () => Services): FunctionDefinition[] {
  async function listCouplings(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().syncAdmin.listCouplings(request.params.company ?? "", Object.fromEntries(request.query.entries()))),
    );
  }

  async function coupleRecord(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { company = "", mapping = "", erpId = "" } = request.params;
      if (request.method === "DELETE") {
        await services().syncAdmin.uncouple(company, mapping, erpId);
        return { status: 204 };
      }
      return json(200, await services().syncAdmin.couple(company, mapping, erpId, await readJson(request)));
    });
  }

  async function synchronizeRecord(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { company = "", mapping = "", erpId = "" } = request.params;
      const result = await services().syncAdmin.synchronize(company, mapping, erpId, await readJson(request));
      return json(200, { runId: result.runId, log: result.logs });
    });
  }

  async function listIssues(request: HttpRequest, context: InvocationContext, kind?: "conflict" | "skipped"): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().syncAdmin.list(request.params.company ?? "", Object.fromEntries(request.query.entries()), kind)),
    );
  }

  async function resolveConflict(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { issue, result } = await services().syncAdmin.resolve(request.params.company ?? "", request.params.id ?? "", await readJson(request));
      return json(200, { resolved: issue, log: result.logs });
    });
  }

  async function retrySkipped(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { issue, result } = await services().syncAdmin.retry(request.params.company ?? "", request.params.id ?? "");
      return json(200, { restored: issue, log: result.logs });
    });
  }

  return [
    {
      name: "sync-couplings",
      trigger: "http",
      route: `${base}/couplings`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Couplings with their state, filtered and paged",
      handler: listCouplings,
      contract: {
        query: couplingQuery,
        responses: { 200: { description: "{ value: couplings, continuationToken? }", schema: couplingPageSchema }, 400: "Invalid query", 404: "No setup" },
      },
    },
    {
      name: "sync-coupling",
      trigger: "http",
      route: `${base}/couplings/{mapping}/{erpId}`,
      methods: ["PUT", "DELETE"],
      authLevel: "function",
      summary: "Couple an ERP record to a CRM row by hand, or uncouple it",
      handler: coupleRecord,
      contract: {
        body: coupleInput,
        responses: {
          200: { description: "The coupling", schema: couplingSchema },
          204: "Uncoupled",
          400: "Invalid body",
          404: "No such record, row or coupling",
          409: "Coupled elsewhere, or the connection is disabled",
        },
      },
    },
    {
      name: "sync-coupling-synchronize",
      trigger: "http",
      route: `${base}/couplings/{mapping}/{erpId}/synchronize`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Synchronize one record now (optionally one way)",
      handler: synchronizeRecord,
      contract: {
        body: synchronizeInput,
        responses: { 200: "{ runId, log }", 400: "Invalid body", 404: "No such mapping", 409: "The connection is disabled" },
      },
    },
    {
      name: "sync-conflicts",
      trigger: "http",
      route: `${base}/conflicts`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Open conflicts with both values",
      handler: (request, context) => listIssues(request, context, "conflict"),
      contract: {
        query: issueQuery,
        responses: { 200: { description: "{ value: conflicts, continuationToken? }", schema: issuePageSchema }, 400: "Invalid query", 404: "No setup" },
      },
    },
    {
      name: "sync-conflict-resolve",
      trigger: "http",
      route: `${base}/conflicts/{id}/resolve`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Resolve a conflict by keeping the ERP or the CRM values",
      handler: resolveConflict,
      contract: { body: resolveInput, responses: { 200: "{ resolved, log }", 400: "Invalid body", 404: "No such conflict", 409: "Not in conflict" } },
    },
    {
      name: "sync-skipped",
      trigger: "http",
      route: `${base}/skipped`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Skipped records with their last error",
      handler: (request, context) => listIssues(request, context, "skipped"),
      contract: {
        query: issueQuery,
        responses: { 200: { description: "{ value: skipped records, continuationToken? }", schema: issuePageSchema }, 400: "Invalid query", 404: "No setup" },
      },
    },
    {
      name: "sync-issues",
      trigger: "http",
      route: `${base}/issues`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Records that did not synchronize (deferred, failed, conflict, skipped), by kind, mapping and run",
      handler: (request, context) => listIssues(request, context),
      contract: {
        query: issueQuery,
        responses: { 200: { description: "{ value: records, continuationToken? }", schema: issuePageSchema }, 400: "Invalid query", 404: "No setup" },
      },
    },
    {
      name: "sync-skipped-retry",
      trigger: "http",
      route: `${base}/skipped/{id}/retry`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Restore a skipped record and synchronize it now",
      handler: retrySkipped,
      contract: { responses: { 200: "{ restored, log }", 404: "No such record", 409: "Not skipped" } },
    },
  ];
}
