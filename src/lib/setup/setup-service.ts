import { conflict, fieldErrorsFromZod, invalid, notFound, stale } from "../errors";
import { type SecretKind, type SecretStore, secretName } from "../secrets/secret-store";
import type { SecretRef } from "../model/connection-setup";
import { ConcurrencyError, type SetupRepository, type Versioned } from "../storage/setup-repository";
import type { JobSummary } from "../model/active-jobs";
import type { ConnectionSetup } from "../model/connection-setup";
import { requireCompany, companyMessages, requireSetup } from "../model/company";
import { type ConnectionView, toConnectionView } from "./connection-view";
import { setupMessages } from "./messages";
import { type Notice, type SuppliedSecrets, connectionSetupInput, resolveSetupInput } from "./setup-input";

/** Something else a company owns (mappings, jobs, couplings) that goes when its setup is removed. */
export type CompanyDataRemover = (company: string) => Promise<void>;

export interface SetupServiceInit {
  setups: SetupRepository;
  secrets: SecretStore;
  /** The company's sync job entries, for "X of Y" (one query). */
  jobs?: (company: string) => Promise<JobSummary[]>;
  companyDataRemovers?: CompanyDataRemover[];
  clock?: () => Date;
}

export interface Preconditions {
  ifMatch?: string;
  ifNoneMatch?: string;
}

const secretFields: { field: keyof SuppliedSecrets; kind: SecretKind; ref: keyof ConnectionSetup["secrets"] }[] = [
  { field: "password", kind: "password", ref: "password" },
  { field: "clientSecret", kind: "client-secret", ref: "clientSecret" },
  { field: "certificatePem", kind: "certificate", ref: "certificate" },
];

export const enabledConflict = "The connection is enabled, so its settings are read-only. Disable the connection before you change or remove the setup.";

export class SetupService {
  private readonly clock: () => Date;

  constructor(private readonly init: SetupServiceInit) {
    this.clock = init.clock ?? (() => new Date());
  }

  async read(company: string): Promise<ConnectionView> {
    requireCompany(company);
    const [stored, jobs] = await Promise.all([this.init.setups.get(company), this.jobs(company)]);
    if (!stored) throw notFound(companyMessages.noConnection(company));
    return this.view(stored, jobs);
  }

  /** PUT: create or replace the setup. Omitted secrets keep their stored version. */
  async save(company: string, body: unknown, preconditions: Preconditions = {}): Promise<{ view: ConnectionView; created: boolean }> {
    requireCompany(company);
    const input = connectionSetupInput.safeParse(body);
    if (!input.success) throw invalid(fieldErrorsFromZod(input.error));
    const resolved = resolveSetupInput(input.data);
    if (!resolved.ok) throw invalid(resolved.errors);

    const [existing, jobs] = await Promise.all([this.init.setups.get(company), this.jobs(company)]);
    checkPreconditions(existing, preconditions);
    if (existing?.value.isEnabled) throw conflict(enabledConflict);

    const notices: Notice[] = [...resolved.notices];
    if (input.data.connectionString !== undefined && (resolved.secrets.password || resolved.secrets.clientSecret)) {
      if (!input.data.password && !input.data.clientSecret) {
        notices.push({
          code: "secret-moved",
          message: "The secret in the connection string was moved to the secret store; the stored connection string keeps a placeholder.",
        });
      }
    }
    const secrets = await this.writeSecrets(company, resolved.secrets, existing?.value.secrets ?? {});
    const previous = existing?.value;
    const authenticationTypeChanged = previous !== undefined && previous.authenticationType !== resolved.fields.authenticationType;
    if (authenticationTypeChanged && previous.usersMustMapToCrmUsers) {
      notices.push({ code: "users-must-map-switched-off", message: setupMessages.usersMustMapSwitchedOff });
    }
    const setup: ConnectionSetup = {
      ...resolved.fields,
      company,
      secrets,
      isEnabled: false,
      ...(previous?.disableReason !== undefined && { disableReason: previous.disableReason }),
      integrationSolutionImported: previous?.integrationSolutionImported ?? false,
      ...(previous?.erpWebUrl !== undefined && { erpWebUrl: previous.erpWebUrl }),
      connectionUserIsIntegrationUser: previous?.connectionUserIsIntegrationUser ?? false,
      salesOrderIntegrationEnabled: previous?.salesOrderIntegrationEnabled ?? false,
      autoCreateSalesOrders: previous?.autoCreateSalesOrders ?? false,
      usersMustMapToCrmUsers: authenticationTypeChanged ? false : (previous?.usersMustMapToCrmUsers ?? false),
      updatedAt: this.clock().toISOString(),
    };
    let etag: string;
    try {
      etag = await this.saveRow(setup, existing?.etag);
    } catch (error) {
      // Lost to a concurrent save (or failed): the secret versions written for it are taken back.
      const stored = existing?.value.secrets ?? {};
      const written = Object.entries(secrets).filter(([ref, value]) => value && stored[ref as keyof typeof stored]?.version !== value.version);
      await Promise.all(written.map(([, value]) => this.init.secrets.discard(value!).catch(() => undefined)));
      throw error;
    }
    return { view: this.view({ value: setup, etag }, jobs, notices), created: existing === undefined };
  }

  /** DELETE: the setup row, then its secrets and everything else the company owns. */
  async remove(company: string, preconditions: Preconditions = {}): Promise<void> {
    const existing = await requireSetup(this.init.setups, company);
    checkPreconditions(existing, preconditions);
    if (existing.value.isEnabled) throw conflict(enabledConflict);
    try {
      await this.init.setups.delete(company, existing.etag);
    } catch (error) {
      throw translateConcurrency(error);
    }
    await Promise.all([
      ...secretFields.map(({ kind }) => this.init.secrets.remove(secretName(company, kind))),
      ...(this.init.companyDataRemovers ?? []).map((remove) => remove(company)),
    ]);
  }

  /** Saves the row with an ETag condition; for use cases that change a setup (enable, settings). */
  async saveRow(setup: ConnectionSetup, etag: string | undefined): Promise<string> {
    try {
      return await this.init.setups.save(setup, etag);
    } catch (error) {
      throw translateConcurrency(error);
    }
  }

  view(stored: Versioned<ConnectionSetup>, jobs: JobSummary[], notices: Notice[] = []): ConnectionView {
    return toConnectionView(stored.value, {
      etag: stored.etag,
      secretStore: this.init.secrets.description,
      jobs,
      notices,
    });
  }

  jobs(company: string): Promise<JobSummary[]> {
    return this.init.jobs ? this.init.jobs(company) : Promise.resolve([]);
  }

  /** One write per supplied secret; secrets not supplied keep their stored reference. */
  private async writeSecrets(company: string, supplied: SuppliedSecrets, stored: ConnectionSetup["secrets"]): Promise<ConnectionSetup["secrets"]> {
    const refs: ConnectionSetup["secrets"] = { ...stored };
    await Promise.all(
      secretFields.map(async ({ field, kind, ref }) => {
        const value = supplied[field];
        if (value === undefined) return;
        refs[ref] = await this.init.secrets.set(secretName(company, kind), value);
      }),
    );
    return refs satisfies Record<string, SecretRef>;
  }
}

function checkPreconditions(existing: Versioned<ConnectionSetup> | undefined, { ifMatch, ifNoneMatch }: Preconditions): void {
  if (ifNoneMatch === "*" && existing) throw stale("A connection setup already exists for this company (If-None-Match: *).");
  if (ifMatch === undefined) return;
  if (!existing) throw stale("The connection setup does not exist, so If-Match cannot match.");
  if (ifMatch !== "*" && ifMatch !== existing.etag) {
    throw stale(companyMessages.staleSetup);
  }
}

function translateConcurrency(error: unknown): unknown {
  return error instanceof ConcurrencyError ? stale(error.message) : error;
}
