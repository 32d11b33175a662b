import * as z from "zod";
import { authenticationTypes } from "../model/authentication-type";
import type { ConnectionView } from "../setup/connection-view";
import type { MappingDefinition } from "../sync/default-mappings";
import { deletionConflictResolutions, mappingNames, updateConflictResolutions } from "../sync/default-mappings";
import { erpTables } from "../model/erp-tables";
import type { JobView } from "../sync/job-view";
import type { CouplingView, IssueView } from "../sync/sync-admin";
import type { SyncErrorEntry, SyncLogEntry } from "../storage/sync-log-repository";

/**
 * What the API answers, as zod schemas: the OpenAPI document's response schemas come from these, each is
 * checked against the TypeScript type the handler returns (`satisfies`), and a test validates real answers
 * against the document. Strict objects: a field added to a view without its schema fails that test.
 */
const time = z.string().meta({ description: "ISO 8601 time (UTC)" });
const direction = z.enum(["toCrm", "fromCrm"]);
const jobStatus = z.enum(["Ready", "In Process", "On Hold", "Error", "Finished"]);

const activeScheduledSyncJobs = z.strictObject({ ready: z.int(), total: z.int(), text: z.string(), message: z.string() });
const notice = z.strictObject({ code: z.string(), message: z.string() });
const prompt = z.strictObject({
  id: z.string(),
  message: z.string(),
  action: z.strictObject({ method: z.string(), href: z.string(), body: z.record(z.string(), z.unknown()) }),
});

export const connectionViewSchema = z
  .strictObject({
    company: z.string(),
    serverAddress: z.string(),
    authenticationType: z.enum(authenticationTypes),
    userName: z.string().nullable(),
    domain: z.string().nullable(),
    clientId: z.string().nullable(),
    tenantId: z.string().nullable(),
    redirectUri: z.string().nullable(),
    homeRealmUri: z.string().nullable(),
    certificateThumbprint: z.string().nullable(),
    proxyVersion: z.int(),
    connectionString: z.string().meta({ description: "The canonical XRM tooling string, secrets as {PASSWORD}-style placeholders" }),
    hasPassword: z.boolean(),
    hasClientSecret: z.boolean(),
    hasCertificate: z.boolean(),
    isEnabled: z.boolean(),
    disableReason: z.string().nullable(),
    crmVersion: z.string().nullable(),
    crmVersionSupported: z.boolean().nullable(),
    crmBaseCurrencyCode: z.string().nullable(),
    integrationSolutionImported: z.boolean(),
    erpWebUrl: z.string().nullable(),
    connectionUserIsIntegrationUser: z.boolean(),
    salesOrderIntegrationEnabled: z.boolean(),
    autoCreateSalesOrders: z.boolean(),
    usersMustMapToCrmUsers: z.boolean(),
    activeScheduledSyncJobs,
    secretStore: z.strictObject({ kind: z.enum(["key-vault", "local"]), encrypted: z.boolean() }),
    notices: z.array(notice),
    updatedAt: time,
    etag: z.string(),
    /** enable / disable / reset answers add these. */
    prompts: z.array(prompt).optional(),
    message: z.string().optional(),
  })
  .meta({ id: "ConnectionView" }) satisfies z.ZodType<ConnectionView>;

const fieldMapping = z.strictObject({
  erp: z.string(),
  crm: z.string(),
  direction: z.enum(["both", "toCrm", "fromCrm"]),
  lookup: z.strictObject({ mapping: z.enum(mappingNames), entitySet: z.string(), navigation: z.string(), required: z.boolean().optional() }).optional(),
  createOnly: z.boolean().optional(),
  afterCreate: z.boolean().optional(),
  enabled: z.boolean().optional(),
  constant: z.union([z.string(), z.number(), z.boolean(), z.null()]).optional(),
  option: z.enum(["paymentTerms", "shipmentMethods", "shippingAgents"]).optional(),
});

const mappingFields = {
  name: z.enum(mappingNames),
  erpTable: z.enum(erpTables),
  crmEntitySet: z.string(),
  crmKey: z.string(),
  crmNameField: z.string(),
  direction: z.enum(["both", "toCrm", "fromCrm"]),
  crmFilter: z.string().optional(),
  erpFilter: z.array(
    z.strictObject({ field: z.string(), op: z.enum(["eq", "ne", "present"]), value: z.union([z.string(), z.number(), z.boolean()]).optional() }),
  ),
  onlyCoupledRecords: z.boolean(),
  minutesBetweenRuns: z.int(),
  dependencyOrder: z.int(),
  fields: z.array(fieldMapping),
  crmDefaults: z.record(z.string(), z.unknown()),
  updateConflictResolution: z.enum(updateConflictResolutions),
  deletionConflictResolution: z.enum(deletionConflictResolutions),
  maxAttempts: z.int(),
  matchOn: z.strictObject({ erp: z.string(), crm: z.string() }).optional(),
};

export const mappingSchema = z.strictObject({ ...mappingFields, etag: z.string() }).meta({ id: "Mapping" });
// The stored definition is the schema's shape (checked both ways at compile time).
export const mappingDefinitionSchema = z.strictObject(mappingFields) satisfies z.ZodType<MappingDefinition>;

export const mappingListSchema = z.strictObject({
  value: z.array(
    z.strictObject({
      ...mappingFields,
      erpWatermark: time.nullable(),
      crmWatermark: time.nullable(),
      lastSyncAt: time.nullable(),
      lastSyncResult: z.string().nullable(),
      etag: z.string().meta({ description: "Send it as If-Match to PATCH the mapping" }),
    }),
  ),
});

export const jobViewSchema = z
  .strictObject({
    id: z.string(),
    kind: z.enum(["mapping", "statistics"]),
    description: z.string(),
    status: jobStatus,
    recurring: z.boolean(),
    minutesBetweenRuns: z.int(),
    maxAttempts: z.int(),
    rerunDelaySeconds: z.int(),
    attempts: z.int(),
    lastRunAt: time.optional(),
    nextRunAt: time.optional(),
    lastResult: z.string().optional(),
    lastError: z.string().optional(),
    leaseExpiresAt: time.optional(),
    requestedStatus: z.enum(["On Hold", "Ready"]).optional(),
    heldByFullSync: z.string().optional(),
    heldUntil: time.optional(),
    inactivityTimeoutMinutes: z.int().optional(),
    idleSince: time.optional(),
    sleeping: z.boolean().optional(),
    timer: z.string(),
    progress: z.strictObject({ runId: z.string(), phase: z.string(), recordsDone: z.int(), recordsTotal: z.int().optional(), updatedAt: time }).optional(),
  })
  .meta({ id: "JobEntry" }) satisfies z.ZodType<JobView>;

export const jobListSchema = z.strictObject({ value: z.array(jobViewSchema), activeScheduledSyncJobs });

const logEntry = z.strictObject({
  id: z.string(),
  runId: z.string(),
  mapping: z.string(),
  direction,
  startedAt: time,
  finishedAt: time.optional(),
  inserted: z.int(),
  modified: z.int(),
  deleted: z.int(),
  unchanged: z.int(),
  skipped: z.int(),
  failed: z.int(),
  message: z.string(),
  links: z.strictObject({ errors: z.string(), issues: z.string(), conflicts: z.string(), skipped: z.string() }),
}) satisfies z.ZodType<SyncLogEntry>;

const continuationToken = z.string().optional().meta({ description: "Send it back as ?continuationToken= for the next page" });

export const logPageSchema = z.strictObject({ value: z.array(logEntry), continuationToken }).meta({ id: "LogPage" });

export const errorPageSchema = z.strictObject({
  value: z.array(z.strictObject({ sourceId: z.string(), destinationId: z.string().optional(), reason: z.string() }) satisfies z.ZodType<SyncErrorEntry>),
  continuationToken,
});

const fieldConflict = z.strictObject({ erpField: z.string(), crmColumn: z.string(), erpValue: z.unknown(), crmValue: z.unknown(), syncedValue: z.unknown() });

const issueView = z.strictObject({
  id: z.string(),
  mapping: z.string(),
  kind: z.enum(["deferred", "failed", "conflict", "skipped"]),
  erpId: z.string().nullable(),
  crmId: z.string().nullable(),
  direction,
  attempts: z.int(),
  reason: z.string(),
  firstAt: time,
  lastAt: time,
  runId: z.string().nullable(),
  conflicts: z.array(fieldConflict).optional(),
}) satisfies z.ZodType<IssueView>;

export const issuePageSchema = z.strictObject({ value: z.array(issueView), continuationToken }).meta({ id: "IssuePage" });

const couplingView = z.strictObject({
  mapping: z.string(),
  erpId: z.string(),
  crmId: z.string(),
  status: z.enum(["coupled", "pending", "deferred", "failed", "conflict", "skipped"]),
  reason: z.string().nullable(),
  lastSynchronized: z.record(z.string(), z.unknown()).nullable(),
}) satisfies z.ZodType<CouplingView>;

export const couplingSchema = couplingView.meta({ id: "Coupling" });
export const couplingPageSchema = z.strictObject({ value: z.array(couplingView), continuationToken }).meta({ id: "CouplingPage" });
