import * as z from "zod";

/**
 * Every setting the service reads, in one place. This list feeds start-up validation,
 * `local.settings.example.json`, the README settings table and the Bicep parity check,
 * so a setting that is not declared here does not exist.
 */
export interface SettingDefinition<T extends z.ZodType = z.ZodType> {
  schema: T;
  description: string;
  /** Value written to local.settings.example.json; omitted settings are left out of it. */
  localExample?: string;
  /** Not needed in Azure (Bicep may leave it unset). */
  optionalInAzure?: boolean;
}

const define = <T extends z.ZodType>(definition: SettingDefinition<T>) => definition;

const httpsUrl = z.url({ protocol: /^https$/, error: "must be an https:// URL" }).transform((value) => value.replace(/\/+$/, ""));

const commaList = z.string().transform((value) =>
  value
    .split(",")
    .map((item) => item.trim().toLowerCase())
    .filter((item) => item.length > 0),
);

const positiveInt = (max: number) => z.coerce.number().int("must be a whole number").min(1).max(max);

/** NCRONTAB: {second} {minute} {hour} {day} {month} {day-of-week}, as Azure Functions timers use. */
export const ncrontab = z
  .string()
  .trim()
  .refine((value) => value.split(/\s+/).length === 6, "must be an NCRONTAB expression with 6 fields (second minute hour day month day-of-week)");

function jobSchedule(job: string) {
  return define({
    schema: ncrontab.optional(),
    description:
      `Schedule of the ${job} job's timer. The Functions host reads it itself when it registers the timer, so in Azure it must be set ` +
      `(Bicep sets every one, from syncSchedule or jobSchedules); the local host uses SYNC_SCHEDULE when it is unset.`,
    localExample: "0 */1 * * * *",
  });
}

/** The setting that schedules a job's timer, e.g. SYNC_SCHEDULE_ITEM_PRODUCT for ITEM-PRODUCT. */
export function scheduleSettingOf(jobId: string): SettingName {
  return `SYNC_SCHEDULE_${jobId.toUpperCase().replace(/[^A-Z0-9]+/g, "_")}` as SettingName;
}

export const settings = {
  AzureWebJobsStorage: define({
    schema: z.string().min(1).optional(),
    description:
      "Storage connection string for tables and queues (local runs: UseDevelopmentStorage=true). In Azure use the identity-based " +
      "AzureWebJobsStorage__* settings instead.",
    localExample: "UseDevelopmentStorage=true",
    optionalInAzure: true,
  }),
  AzureWebJobsStorage__tableServiceUri: define({
    schema: httpsUrl.optional(),
    description: "Table endpoint for identity-based storage access (managed identity); used when no connection string is set.",
  }),
  AzureWebJobsStorage__queueServiceUri: define({
    schema: httpsUrl.optional(),
    description: "Queue endpoint for identity-based storage access (managed identity).",
  }),
  KEY_VAULT_URL: define({
    schema: httpsUrl.optional(),
    description: "Key Vault that holds the connection secrets. Required in Azure; without it local runs use the encrypted local store.",
  }),
  LOCAL_SECRET_KEY: define({
    schema: z
      .string()
      .refine((value) => Buffer.from(value, "base64").length === 32, "must be 32 bytes, base64-encoded (openssl rand -base64 32)")
      .optional(),
    description: "AES-256 key (base64) for the local secret store. When unset, a key is generated into LOCAL_SECRET_KEY_FILE.",
    optionalInAzure: true,
  }),
  LOCAL_SECRET_KEY_FILE: define({
    schema: z.string().min(1).default(".local/secret.key"),
    description: "Where the generated local secret key is kept (git-ignored). Local runs only.",
    optionalInAzure: true,
  }),
  DATAVERSE_ALLOWED_HOSTS: define({
    schema: commaList.default([]),
    description:
      "Extra Dataverse hosts (comma-separated, host or host:port) allowed besides the Dynamics 365 online domains, e.g. an on-premises server or the " +
      "simulator.",
    localExample: "",
  }),
  AUTHORITY_HOST: define({
    schema: httpsUrl.default("https://login.microsoftonline.com"),
    description: "Entra ID authority host used to sign in to Dataverse.",
  }),
  CALLER_TOKEN_TENANT_ID: define({
    schema: z
      .string()
      .trim()
      .regex(/^[0-9a-fA-F-]{36}$/, "must be a tenant id (GUID)")
      .optional(),
    description:
      "With CALLER_TOKEN_AUDIENCE: ERP users are identified by an Entra ID access token (Authorization: Bearer) issued by this tenant and validated " +
      "here (issuer, audience, signature, lifetime), when App Service authentication is off.",
    optionalInAzure: true,
  }),
  CALLER_TOKEN_AUDIENCE: define({
    schema: z.string().trim().min(1).optional(),
    description: "The audience ERP users' access tokens must carry (the app registration's client id or its api:// URI).",
    optionalInAzure: true,
  }),
  INTEGRATION_SOLUTION_NAME: define({
    schema: z.string().min(1).default("MicrosoftDynamicsNavIntegration"),
    description: "Unique name of the CRM integration solution that is detected when the connection is enabled.",
  }),
  ERP_WEB_URL_DEFAULT: define({
    schema: httpsUrl.optional(),
    description: "Default ERP web client URL written to CRM (the reset action restores it).",
    localExample: "https://erp.example.com",
  }),
  ERP_LOCAL_CURRENCY: define({
    schema: z
      .string()
      .regex(/^[A-Z]{3}$/, "must be a 3-letter ISO currency code")
      .optional(),
    description: "The ERP's local currency (LCY) code; when set it must match the CRM base currency.",
  }),
  SYNC_SCHEDULE: define({
    schema: ncrontab.default("0 */1 * * * *"),
    description: "NCRONTAB schedule of the synchronization timers (each run picks up the entries that are due).",
    localExample: "0 */1 * * * *",
  }),
  // Per-job schedules (the timers register %SYNC_SCHEDULE_<JOB>%); unset locally means SYNC_SCHEDULE.
  SYNC_SCHEDULE_SALESPEOPLE: jobSchedule("SALESPEOPLE"),
  SYNC_SCHEDULE_CURRENCY: jobSchedule("CURRENCY"),
  SYNC_SCHEDULE_UNIT_OF_MEASURE: jobSchedule("UNIT OF MEASURE"),
  SYNC_SCHEDULE_CUSTOMER: jobSchedule("CUSTOMER"),
  SYNC_SCHEDULE_CONTACT: jobSchedule("CONTACT"),
  SYNC_SCHEDULE_ITEM_PRODUCT: jobSchedule("ITEM-PRODUCT"),
  SYNC_SCHEDULE_RESOURCE_PRODUCT: jobSchedule("RESOURCE-PRODUCT"),
  SYNC_SCHEDULE_CUSTPRCGRP_PRICE: jobSchedule("CUSTPRCGRP-PRICE"),
  SYNC_SCHEDULE_POSTEDSALESINV_INV: jobSchedule("POSTEDSALESINV-INV"),
  SYNC_SCHEDULE_SALESPRC_PRODPRICE: jobSchedule("SALESPRC-PRODPRICE"),
  SYNC_SCHEDULE_POSTEDSALESLINE_INV: jobSchedule("POSTEDSALESLINE-INV"),
  SYNC_SCHEDULE_CUSTOMER_STATISTICS: jobSchedule("CUSTOMER STATISTICS"),
  SYNC_SCHEDULE_SALES_ORDER_STATUS: jobSchedule("SALES ORDER STATUS"),
  SYNC_SCHEDULE_AUTO_CREATE_SALES_ORDERS: jobSchedule("AUTO CREATE SALES ORDERS"),
  SYNC_BATCH_SIZE: define({
    schema: positiveInt(1000).default(500),
    description: "Rows per Dataverse bulk request (UpsertMultiple / CreateMultiple / UpdateMultiple).",
  }),
  SYNC_MAX_PARALLEL: define({
    schema: positiveInt(52).default(52),
    description:
      "A cap on Dataverse requests in flight at once per run: a run sends as many as Dataverse's x-ms-dop-hint recommends (4 until its first answer), never more than this.",
  }),
  SYNC_TIME_BUDGET_SECONDS: define({
    schema: positiveInt(3600).default(540),
    description: "A sync run stops taking new work after this many seconds and resumes on the next run (keep below functionTimeout).",
  }),
  SYNC_LEASE_SECONDS: define({
    schema: positiveInt(600).min(10, "must be at least 10").default(90),
    description:
      "How long a run's hold on its job entry and mapping lasts unless renewed (renewed every third of it while the run lives): a run on an instance that died is taken over after this.",
    optionalInAzure: true,
  }),
} satisfies Record<string, SettingDefinition>;

export type SettingName = keyof typeof settings;

/**
 * Settings the Azure platform reads (the Functions host, Application Insights), not this code; Bicep sets
 * them beside the settings above. None of them holds a credential.
 */
export const platformSettings = {
  AzureWebJobsStorage__blobServiceUri: "The Functions host's blobs (timer and lease state), reached with the managed identity.",
  APPLICATIONINSIGHTS_CONNECTION_STRING: "Where telemetry goes; not a credential, as the component accepts Entra ID only (local auth off).",
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "Authorization=AAD: telemetry is sent with the managed identity.",
  WEBSITE_AUTH_ENABLED: "Set by the platform when App Service authentication is on; only then is x-ms-client-principal trusted.",
  languageWorkers__node__arguments: "Node.js arguments for the Functions worker: V8's old space sized to the instance (infra/node-worker.json).",
} as const;
export type Config = { [K in SettingName]: z.output<(typeof settings)[K]["schema"]> } & {
  /** True on an Azure Functions host (set by the platform, not by us). */
  runningInAzure: boolean;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Validates every setting; throws one ConfigError naming each bad or missing setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, definition] of Object.entries(settings) as [SettingName, SettingDefinition][]) {
    const raw = env[name];
    const parsed = definition.schema.safeParse(raw === "" ? undefined : raw);
    if (parsed.success) values[name] = parsed.data;
    else problems.push(`${name}: ${parsed.error.issues.map((issue) => issue.message).join("; ")}`);
  }
  const runningInAzure = Boolean(env.WEBSITE_INSTANCE_ID);
  // In Azure a timer whose %SYNC_SCHEDULE_<JOB>% is unset cannot be registered: say so at start, by name.
  if (runningInAzure) {
    for (const name of Object.keys(settings).filter((setting) => setting.startsWith("SYNC_SCHEDULE_"))) {
      if (!env[name]) problems.push(`${name}: must be set in Azure (the Functions host reads it to register the timer; Bicep sets it)`);
    }
  }
  if (!values.AzureWebJobsStorage && !values.AzureWebJobsStorage__tableServiceUri) {
    problems.push("AzureWebJobsStorage: set a storage connection string or AzureWebJobsStorage__tableServiceUri (identity-based)");
  }
  if (!values.AzureWebJobsStorage && values.AzureWebJobsStorage__tableServiceUri && !values.AzureWebJobsStorage__queueServiceUri) {
    problems.push("AzureWebJobsStorage__queueServiceUri: required with identity-based storage (the sync fans out through a queue)");
  }
  if (runningInAzure && !values.KEY_VAULT_URL) {
    problems.push("KEY_VAULT_URL: required when running in Azure (the local secret store is for local runs only)");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...(values as Omit<Config, "runningInAzure">), runningInAzure };
}

/** Every schedule setting's effective value: a per-job setting falls back to SYNC_SCHEDULE. */
export function scheduleSettings(config: Config): Record<string, string> {
  const schedules: Record<string, string> = {};
  for (const name of Object.keys(settings) as SettingName[]) {
    if (name === "SYNC_SCHEDULE" || name.startsWith("SYNC_SCHEDULE_")) schedules[name] = String(config[name] ?? config.SYNC_SCHEDULE);
  }
  return schedules;
}
