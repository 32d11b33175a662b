// Over 250 lines: the sync routes' handlers and their definitions; the next step splits them by resource (mappings, jobs, log, couplings, issues).
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from "@azure/functions";
import { scheduleSettingOf } from "../lib/config";
import { logErrorsQuery, logQuery } from "../lib/sync/sync-views";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { type SyncMessage, syncMessage, syncQueueName } from "../lib/storage/work-queue";
import { defaultMappings, statisticsJobId, timerNameOf } from "../lib/sync/default-mappings";
import { salesOrderJobIds } from "../lib/sync/sync-setup-service";
import { jobPatch, jobView } from "../lib/sync/job-runner";
import { coupleInput, couplingQuery, issueQuery, matchInput, resolveInput, synchronizeInput } from "../lib/sync/sync-admin";
import { mappingPatch } from "../lib/sync/mapping-settings";
import {
  couplingPageSchema,
  couplingSchema,
  errorPageSchema,
  issuePageSchema,
  jobListSchema,
  jobViewSchema,
  logPageSchema,
  mappingListSchema,
  mappingSchema,
} from "../lib/http/response-schemas";
import { preconditions, readJson } from "../lib/http/respond";

const base = "companies/{company}/sync";

const jobIds = [...defaultMappings.map((mapping) => mapping.name), statisticsJobId, ...Object.values(salesOrderJobIds)];

export function syncFunctions(services: () => Services): FunctionDefinition[] {
  async function listMappings(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, await services().syncViews.mappings(request.params.company ?? "")));
  }

  async function listJobs(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, await services().syncViews.jobs(request.params.company ?? "")));
  }

  function jobAction(action: "hold" | "ready" | "run") {
    return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
      respond(context, async () => {
        const company = request.params.company ?? "";
        const job = request.params.job ?? "";
        const { jobs } = services();
        if (action === "run") {
          const runId = await jobs.runNow(company, job);
          return json(
            202,
            { runId, log: `/api/companies/${company}/sync/log?runId=${runId}` },
            { location: `/api/companies/${company}/sync/log?runId=${runId}` },
          );
        }
        return json(200, jobView(await jobs.setStatus(company, job, action === "hold" ? "On Hold" : "Ready"), new Date()));
      });
  }

  async function readLog(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, await services().syncViews.log(request.params.company ?? "", Object.fromEntries(request.query.entries()))));
  }

  async function readLogErrors(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { company = "", id = "" } = request.params;
      return json(200, await services().syncViews.logErrors(company, id, Object.fromEntries(request.query.entries())));
    });
  }

  async function fullSync(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const runId = await services().jobs.queueFull(company);
      return json(202, { runId, log: `/api/companies/${company}/sync/log?runId=${runId}` });
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

  async function updateMapping(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const { mapping, etag } = await services().syncAdmin.updateMapping(
        request.params.company ?? "",
        request.params.mapping ?? "",
        await readJson(request),
        preconditions(request).ifMatch,
      );
      return json(200, { ...mapping, etag }, { etag });
    });
  }

  async function updateJob(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const job = await services().jobs.update(company, request.params.job ?? "", await readJson(request));
      return json(200, jobView(job, new Date()));
    });
  }

  async function matchRecords(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().syncAdmin.match(request.params.company ?? "", request.params.mapping ?? "", await readJson(request))),
    );
  }

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

  /** A job entry's timer: queues a run for each company whose entry is due. */
  function dispatchTimer(jobId: string) {
    return async (_timer: Timer, context: InvocationContext): Promise<void> => {
      const queued = await services().jobs.dispatchDue(jobId);
      if (queued > 0) context.log(`${jobId}: queued ${queued} company run(s)`);
    };
  }

  /** The queue worker: one company's job (or full synchronization) per message. */
  async function syncWorker(message: unknown, context: InvocationContext): Promise<void> {
    const parsed: SyncMessage = syncMessage.parse(typeof message === "string" ? JSON.parse(message) : message);
    const { jobs } = services();
    if (parsed.kind === "full") {
      await jobs.runFull(parsed.company, parsed.runId);
      context.log(`full synchronization of ${parsed.company} finished (run ${parsed.runId})`);
      return;
    }
    const outcome = await jobs.runJob(parsed.company, parsed.job, parsed.runId, parsed.now === true);
    context.log(`${parsed.job} for ${parsed.company}: ${outcome} (run ${parsed.runId})`);
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
      name: "sync-jobs",
      trigger: "http",
      route: `${base}/jobs`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Job entries with state and X of Y",
      handler: listJobs,
      contract: { responses: { 200: { description: "{ value: job entries, activeScheduledSyncJobs }", schema: jobListSchema }, 404: "No setup" } },
    },
    {
      name: "sync-job-update",
      trigger: "http",
      route: `${base}/jobs/{job}`,
      methods: ["PATCH"],
      authLevel: "function",
      summary: "Change a job entry's minutes between runs, maximum attempts or earliest start",
      handler: updateJob,
      contract: { body: jobPatch, responses: { 200: { description: "The job entry", schema: jobViewSchema }, 400: "Invalid settings", 404: "No such job" } },
    },
    {
      name: "sync-job-hold",
      trigger: "http",
      route: `${base}/jobs/{job}/hold`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Set a job entry On Hold",
      handler: jobAction("hold"),
      contract: { responses: { 200: { description: "The job entry", schema: jobViewSchema }, 404: "No such job", 409: "The connection is disabled" } },
    },
    {
      name: "sync-job-ready",
      trigger: "http",
      route: `${base}/jobs/{job}/ready`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Set a job entry Ready",
      handler: jobAction("ready"),
      contract: { responses: { 200: { description: "The job entry", schema: jobViewSchema }, 404: "No such job", 409: "The connection is disabled" } },
    },
    {
      name: "sync-job-run",
      trigger: "http",
      route: `${base}/jobs/{job}/run`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Run a job entry now (202 + run id)",
      handler: jobAction("run"),
      contract: { responses: { 202: "{ runId, log }", 404: "No such job" } },
    },
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
    {
      name: "sync-full",
      trigger: "http",
      route: `${base}/full`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Full synchronization (202 + run id)",
      handler: fullSync,
      contract: { responses: { 202: "{ runId, log }", 404: "No setup" } },
    },
    ...jobIds.map((jobId): FunctionDefinition => ({
      name: timerNameOf(jobId),
      trigger: "timer",
      scheduleSetting: scheduleSettingOf(jobId),
      summary: `Runs the ${jobId} job entries that are due`,
      handler: dispatchTimer(jobId),
    })),
    { name: "sync-worker", trigger: "queue", queueName: syncQueueName, summary: "Runs one company's job or full synchronization", handler: syncWorker },
  ];
}
