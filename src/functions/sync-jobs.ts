// The job queue entries: list, change, hold, ready, run now, full synchronization; the timers and the queue worker.
import type { HttpRequest, HttpResponseInit, InvocationContext, Timer } from "@azure/functions";
import { scheduleSettingOf } from "../lib/config";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { syncQueueName } from "../lib/storage/work-queue";
import { defaultMappings, statisticsJobId, timerNameOf } from "../lib/sync/default-mappings";
import { salesOrderJobIds } from "../lib/sync/sync-setup-service";
import { jobPatch } from "../lib/sync/job-view";
import { jobListSchema, jobViewSchema } from "../lib/http/response-schemas";
import { readJson } from "../lib/http/respond";

const base = "companies/{company}/sync";

const jobIds = [...defaultMappings.map((mapping) => mapping.name), statisticsJobId, ...Object.values(salesOrderJobIds)];

export function syncJobFunctions(services: () => Services): FunctionDefinition[] {
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
        return json(200, await jobs.setStatus(company, job, action === "hold" ? "On Hold" : "Ready"));
      });
  }

  async function updateJob(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const job = await services().jobs.update(company, request.params.job ?? "", await readJson(request));
      return json(200, job);
    });
  }

  async function fullSync(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const runId = await services().jobs.queueFull(company);
      return json(202, { runId, log: `/api/companies/${company}/sync/log?runId=${runId}` });
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
    context.log(await services().jobs.handleMessage(message));
  }

  return [
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
