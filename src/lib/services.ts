import type { TableServiceClientOptions } from "@azure/data-tables";
import { DefaultAzureCredential, type TokenCredential } from "@azure/identity";
import { type Config, loadConfig } from "./config";
import { KeyVaultSecretStore } from "./secrets/key-vault-secret-store";
import { LocalSecretStore, loadLocalSecretKey } from "./secrets/local-secret-store";
import type { SecretStore } from "./secrets/secret-store";
import { SetupService } from "./setup/setup-service";
import { SetupRepository } from "./storage/setup-repository";
import { TableStorage } from "./storage/table-storage";

/** Everything a handler needs, built once per process from the configuration. */
export interface Services {
  config: Config;
  tables: TableStorage;
  secrets: SecretStore;
  setups: SetupRepository;
  setup: SetupService;
}

export interface ServiceOverrides {
  credential?: TokenCredential;
  secrets?: SecretStore;
  tableOptions?: TableServiceClientOptions;
}

/** The composition root: adapters from config, use cases over adapters. */
export function createServices(config: Config, overrides: ServiceOverrides = {}): Services {
  let credential = overrides.credential;
  const azureCredential = () => (credential ??= new DefaultAzureCredential());
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
  const setup = new SetupService({ setups, secrets });
  return { config, tables, secrets, setups, setup };
}

let current: Services | undefined;

/** The process-wide services, created on first use so a cold start pays only for what it touches. */
export function services(): Services {
  current ??= createServices(loadConfig());
  return current;
}

/** For the local host and tests that build services themselves (e.g. with a request counter). */
export function useServices(replacement: Services | undefined): void {
  current = replacement;
}
