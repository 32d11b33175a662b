// The connector's services as the benchmark builds them: Azurite, the simulator's host and CA, a local secret key.
import { loadConfig } from "../src/lib/config";
import { type Services, createServices } from "../src/lib/services";
import type { StoragePolicy } from "./operation-counter";

/** Where a benchmark connector finds its storage and its Dataverse. */
export interface BenchTarget {
  azurite: string;
  simulatorUrl: string;
  simulatorHost: string;
  ca: string;
  /** The parent's key: a worker reads the credentials the parent stored. */
  localSecretKey: string;
}

/** The connector's services, with `storagePolicy` (the run's counter) in every storage client's pipeline. */
export function benchServices(target: BenchTarget, storagePolicy: StoragePolicy): Services {
  const config = loadConfig({
    AzureWebJobsStorage: target.azurite,
    DATAVERSE_ALLOWED_HOSTS: target.simulatorHost,
    AUTHORITY_HOST: target.simulatorUrl,
    LOCAL_SECRET_KEY: target.localSecretKey,
    SYNC_BATCH_SIZE: process.env.SYNC_BATCH_SIZE,
    SYNC_MAX_PARALLEL: process.env.SYNC_MAX_PARALLEL,
    SYNC_TIME_BUDGET_SECONDS: "3600",
  });
  return createServices(config, { trustedCa: target.ca, tableOptions: { additionalPolicies: [storagePolicy] } });
}
