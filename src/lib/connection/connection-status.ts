import { notFound } from "../errors";
import type { SecretStoreDescription } from "../secrets/secret-store";
import { isSupportedCrmVersion } from "../model/connection-setup";
import { requireCompany, companyMessages } from "../model/company";
import type { SetupRepository } from "../storage/setup-repository";
import type { LastTest, StatusRepository } from "../storage/status-repository";
import type { SyncRepository } from "../storage/sync-repository";
import { type ActiveScheduledSyncJobs, countedStatuses, describeActiveJobs } from "../model/active-jobs";

export interface ConnectionStatus {
  company: string;
  isEnabled: boolean;
  disableReason: string | null;
  lastTest: LastTest | null;
  crmVersion: string | null;
  crmVersionSupported: boolean | null;
  integrationSolutionImported: boolean;
  activeScheduledSyncJobs: ActiveScheduledSyncJobs;
  lastSyncPerMapping: { mapping: string; lastSyncAt: string | null; lastSyncResult: string | null }[];
  secretStore: SecretStoreDescription;
}

/** GET .../connection/status: one place to see whether the connection works and the sync runs. */
export async function readConnectionStatus(
  company: string,
  init: { setups: SetupRepository; status: StatusRepository; sync: SyncRepository; secretStore: SecretStoreDescription },
): Promise<ConnectionStatus> {
  requireCompany(company);
  const [stored, lastTest, jobs, mappings] = await Promise.all([
    init.setups.get(company),
    init.status.lastTest(company),
    init.sync.jobSummaries(company),
    init.sync.mappings(company),
  ]);
  if (!stored) throw notFound(companyMessages.noConnection(company));
  const setup = stored.value;
  return {
    company,
    isEnabled: setup.isEnabled,
    disableReason: setup.disableReason ?? null,
    lastTest: lastTest ?? null,
    crmVersion: setup.crmVersion ?? null,
    crmVersionSupported: isSupportedCrmVersion(setup.crmVersion) ?? null,
    integrationSolutionImported: setup.integrationSolutionImported,
    activeScheduledSyncJobs: describeActiveJobs(countedStatuses(jobs, setup.integrationSolutionImported), setup.isEnabled),
    lastSyncPerMapping: mappings.map(({ value }) => ({
      mapping: value.name,
      lastSyncAt: value.lastSyncAt ?? null,
      lastSyncResult: value.lastSyncResult ?? null,
    })),
    secretStore: init.secretStore,
  };
}
