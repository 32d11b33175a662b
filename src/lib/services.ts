import { readCrmData } from "./connection/crm-data";
import { readConnectionStatus } from "./connection/connection-status";
import type { TableServiceClientOptions } from "@azure/data-tables";
import type { TokenCredential } from "@azure/identity";
import { type Config, loadConfig } from "./config";
import { AdvancedSettings } from "./connection/advanced-settings";
import { ConnectionLifecycle } from "./connection/connection-lifecycle";
import { ConnectionTester } from "./connection/connection-test";
import { CrmConnector } from "./connection/crm-connector";
import { DataverseClient } from "./dataverse/dataverse-client";
import { HttpsTransport } from "./dataverse/https-transport";
import { OutboundGuard } from "./dataverse/outbound-guard";
import { TokenProvider } from "./dataverse/token-provider";
import { KeyVaultSecretStore } from "./secrets/key-vault-secret-store";
import { LocalSecretStore, loadLocalSecretKey } from "./secrets/local-secret-store";
import type { SecretStore } from "./secrets/secret-store";
import { SetupService } from "./setup/setup-service";
import { SetupRepository } from "./storage/setup-repository";
import { StatusRepository } from "./storage/status-repository";
import { SyncRepository } from "./storage/sync-repository";
import { TableStorage } from "./storage/table-storage";
import { SyncSetupService } from "./sync/sync-setup-service";
import { ErpRecordsService } from "./erp/erp-records-service";
import { CouplingRepository } from "./storage/coupling-repository";
import { ErpRecordRepository } from "./storage/erp-record-repository";
import { SyncLogRepository } from "./storage/sync-log-repository";
import { WorkQueue } from "./storage/work-queue";
import { JobRunner } from "./sync/job-runner";
import { SyncRunner } from "./sync/sync-runner";
import { OrderNumberRepository } from "./storage/order-numbers";
import { SyncIssueRepository } from "./storage/sync-issue-repository";
import { SyncViews } from "./sync/sync-views";
import { SyncAdmin } from "./sync/sync-admin";
import { CallerTokenVerifier } from "./http/caller-token";
import { SalesOrderService } from "./sales-orders/sales-order-service";
import { CustomerStatisticsService } from "./statistics/customer-statistics";

/** Everything a handler needs, built once per process from the configuration. */
export interface Services {
  /** Aborted when the host shuts down (appTerminate, SIGTERM locally): running synchronizations stop. */
  shutdown: AbortController;
  config: Config;
  tables: TableStorage;
  secrets: SecretStore;
  setups: SetupRepository;
  status: StatusRepository;
  sync: SyncRepository;
  setup: SetupService;
  connector: CrmConnector;
  lifecycle: ConnectionLifecycle;
  settings: AdvancedSettings;
  syncSetup: SyncSetupService;
  erpRecordStore: ErpRecordRepository;
  erpRecords: ErpRecordsService;
  couplings: CouplingRepository;
  syncLog: SyncLogRepository;
  syncViews: SyncViews;
  syncIssues: SyncIssueRepository;
  syncAdmin: SyncAdmin;
  salesOrders: SalesOrderService;
  /** The connection's status page (BEHAVIOUR §3): setup, last test, version, jobs, last sync, secret store. */
  connectionStatus: (company: string) => ReturnType<typeof readConnectionStatus>;
  /** CRM rows for the calling ERP user, impersonated when users must map to CRM users. */
  crmData: (company: string, entitySet: string, query: Record<string, string>, caller: Parameters<typeof readCrmData>[3]) => ReturnType<typeof readCrmData>;
  /** Validates ERP users' bearer tokens when CALLER_TOKEN_TENANT_ID and CALLER_TOKEN_AUDIENCE are set. */
  callerTokens: CallerTokenVerifier | undefined;
  queue: WorkQueue;
  runner: SyncRunner;
  jobs: JobRunner;
}

export interface ServiceOverrides {
  credential?: TokenCredential;
  secrets?: SecretStore;
  tableOptions?: TableServiceClientOptions;
  /** A certificate authority to trust for Dataverse and sign-in calls (the local simulator's). */
  trustedCa?: string;
  /** Where the structured line of each sync run goes (default: the console, which the Functions host collects). */
  runLog?: (line: string) => void;
}

/** The composition root: adapters from config, use cases over adapters. */
export function createServices(config: Config, overrides: ServiceOverrides = {}): Services {
  let credential = overrides.credential;
  // Loaded on first use: a cold start that never needs Azure identity or Key Vault does not pay for them.
  const azureCredential = () => (credential ??= new (require("@azure/identity") as typeof import("@azure/identity")).DefaultAzureCredential());
  const tables = new TableStorage(
    config.AzureWebJobsStorage
      ? { connectionString: config.AzureWebJobsStorage }
      : { tableServiceUri: config.AzureWebJobsStorage__tableServiceUri!, credential: azureCredential() },
    overrides.tableOptions,
  );
  const secrets =
    overrides.secrets ??
    (config.KEY_VAULT_URL
      ? new KeyVaultSecretStore({ vaultUrl: config.KEY_VAULT_URL, credential: azureCredential() })
      : new LocalSecretStore(tables, loadLocalSecretKey(config.LOCAL_SECRET_KEY, config.LOCAL_SECRET_KEY_FILE), config.runningInAzure));

  const setups = new SetupRepository(tables);
  const status = new StatusRepository(tables);
  const sync = new SyncRepository(tables);
  const erpRecordStore = new ErpRecordRepository(tables);
  const couplings = new CouplingRepository(tables);
  const syncLog = new SyncLogRepository(tables);
  const syncIssues = new SyncIssueRepository(tables);
  const orderNumbers = new OrderNumberRepository(tables);
  const setup = new SetupService({
    setups,
    secrets,
    jobs: (company) => sync.jobSummaries(company),
    companyDataRemovers: [
      (company) => sync.removeCompany(company),
      (company) => status.remove(company),
      (company) => couplings.removeCompany(company),
      (company) => erpRecordStore.removeCompany(company),
      (company) => syncIssues.removeCompany(company),
      (company) => orderNumbers.removeCompany(company),
    ],
  });

  const guard = new OutboundGuard(config.DATAVERSE_ALLOWED_HOSTS);
  const transport = new HttpsTransport({ guard, ...(overrides.trustedCa && { ca: overrides.trustedCa }) });
  // The authority host is an operator setting, not user input: its own transport, without the host guard.
  const authorityTransport = new HttpsTransport({ ...(overrides.trustedCa && { ca: overrides.trustedCa }) });
  const tokens = new TokenProvider({
    authorityHost: config.AUTHORITY_HOST,
    transport: authorityTransport,
    discoverTenant: (serverAddress) => DataverseClient.discoverTenant(transport, serverAddress),
  });
  const connector = new CrmConnector({ secrets, tokens, transport, guard, config });
  const tester = new ConnectionTester({ connector, status, secretStore: secrets.description });
  const syncSetup = new SyncSetupService({ sync, setups, couplings });
  const lifecycle = new ConnectionLifecycle({ setups, setup, tester, connector, syncSetup, config });
  const settings = new AdvancedSettings({ setups, setup, connector, config, salesOrderJobs: (company, saved) => syncSetup.syncSalesOrderJobs(company, saved) });
  const erpRecords = new ErpRecordsService({ records: erpRecordStore, setups, onChanged: (company, table) => jobs.wake(company, table) });
  const queue = new WorkQueue(
    config.AzureWebJobsStorage
      ? { connectionString: config.AzureWebJobsStorage }
      : { queueServiceUri: config.AzureWebJobsStorage__queueServiceUri!, credential: azureCredential() },
  );
  const runner = new SyncRunner({
    sync,
    couplings,
    erpRecords: erpRecordStore,
    logs: syncLog,
    issues: syncIssues,
    connector,
    setups,
    config,
    ...(overrides.runLog && { log: overrides.runLog }),
  });
  // ERP users' own Entra ID tokens, validated here when App Service authentication is not in front.
  const callerTokens =
    config.CALLER_TOKEN_TENANT_ID && config.CALLER_TOKEN_AUDIENCE
      ? new CallerTokenVerifier({
          authorityHost: config.AUTHORITY_HOST,
          tenantId: config.CALLER_TOKEN_TENANT_ID,
          audience: config.CALLER_TOKEN_AUDIENCE,
          fetchKeys: async (url) => {
            const response = await authorityTransport.send({ method: "GET", url, timeoutMs: 10_000 });
            if (response.status !== 200) throw new Error(`The tenant's signing keys could not be read (${response.status}).`);
            return JSON.parse(response.body.toString("utf8")) as import("jose").JSONWebKeySet;
          },
        })
      : undefined;
  const salesOrders = new SalesOrderService({ setups, connector, couplings, erpRecords: erpRecordStore, sync, logs: syncLog, orderNumbers });
  const statistics = new CustomerStatisticsService({ setups, connector, couplings, erpRecords: erpRecordStore, logs: syncLog });
  const shutdown = new AbortController();
  const jobs = new JobRunner({ sync, setups, runner, queue, logs: syncLog, config, salesOrders, statistics, shutdown: shutdown.signal });
  const syncViews = new SyncViews({ sync, setups, logs: syncLog });
  const syncAdmin = new SyncAdmin({ sync, setups, issues: syncIssues, runner, couplings, erpRecords: erpRecordStore, connector });
  return {
    shutdown,
    connectionStatus: (company) => readConnectionStatus(company, { setups, status, sync, secretStore: secrets.description }),
    crmData: (company, entitySet, query, caller) => readCrmData(company, entitySet, query, caller, { setups, connector }),
    config,
    tables,
    secrets,
    setups,
    status,
    sync,
    setup,
    connector,
    lifecycle,
    settings,
    syncSetup,
    erpRecordStore,
    erpRecords,
    couplings,
    syncLog,
    syncIssues,
    syncAdmin,
    syncViews,
    salesOrders,
    queue,
    runner,
    jobs,
    callerTokens,
  };
}

let current: Services | undefined;

/** Stops what the process's services are running (the Functions host is shutting the worker down). */
export function shutDownServices(reason: string): void {
  current?.shutdown.abort(new Error(reason));
}

/**
 * The services of the Functions process, created on first use so a cold start pays only for what it touches.
 * Only functions/definitions.ts calls this; the local host and tests build their own and pass them.
 */
export function services(): Services {
  current ??= createServices(loadConfig());
  return current;
}
