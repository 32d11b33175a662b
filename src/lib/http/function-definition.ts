import type { HttpHandler, HttpMethod, StorageQueueHandler, TimerHandler } from "@azure/functions";
import type { z } from "zod";
import type { SettingName } from "../config";

/**
 * One function of the app. The list of these is the single source of truth: `src/functions/index.ts`
 * registers it with the Functions runtime, the local host serves it, and tests and docs read it.
 */
export type FunctionDefinition = HttpFunctionDefinition | TimerFunctionDefinition | QueueFunctionDefinition;

export interface HttpFunctionDefinition {
  name: string;
  trigger: "http";
  /** Azure Functions route template under /api, e.g. `companies/{company}/connection`. */
  route: string;
  methods: HttpMethod[];
  authLevel: "anonymous" | "function" | "admin";
  summary: string;
  handler: HttpHandler;
  /** What the OpenAPI document says of the request and responses (the schemas are the ones the handler uses). */
  contract?: HttpContract;
}

export interface HttpContract {
  body?: z.ZodType;
  query?: z.ZodObject;
  /** The resource is versioned: If-Match is taken (412 when stale) and 2xx answers carry an ETag. */
  versioned?: boolean;
  /** Status code -> what it means (and the answer's schema); 4xx/5xx answers are problem+json. */
  responses: Record<number, string | { description: string; schema: z.ZodType }>;
}

export interface TimerFunctionDefinition {
  name: string;
  trigger: "timer";
  /** The setting whose value is the NCRONTAB schedule (registered as `%SETTING%`). */
  scheduleSetting: SettingName;
  summary: string;
  handler: TimerHandler;
}

export interface QueueFunctionDefinition {
  name: string;
  trigger: "queue";
  /** A Storage queue in the AzureWebJobsStorage account. */
  queueName: string;
  summary: string;
  handler: StorageQueueHandler;
}
