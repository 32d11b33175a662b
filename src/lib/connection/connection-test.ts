import type { DataverseClient } from "../dataverse/dataverse-client";
import { DataverseRequestError, describeFailure, failureStep } from "../dataverse/dataverse-errors";
import { type FailureStep } from "../model/failure-step";
import type { CallerPrincipal } from "../caller";
import type { SecretStoreDescription } from "../secrets/secret-store";
import type { ConnectionSetup } from "../model/connection-setup";
import type { StatusRepository } from "../storage/status-repository";
import { type CrmConnector, missingCredentials } from "./crm-connector";
import { connectionMessages } from "./messages";
import type { Prompt } from "./prompts";

export interface ConnectionTestResult {
  ok: boolean;
  message: string;
  testedAt: string;
  details?: { crmVersion: string; userId: string; organizationId: string; businessUnitId: string; connectionUser: string };
  error?: { step: FailureStep; reason: string };
  warnings: string[];
  prompts: Prompt[];
}

/** A successful test leaves a signed-in client behind, for enabling right after. */
export interface OpenSession {
  client: DataverseClient;
  userId: string;
  organizationId: string;
  crmVersion: string;
}

const systemAdministrator = "System Administrator";

/**
 * Test Connection (BEHAVIOUR §2): required fields, sign-in, WhoAmI, the connection user's state and
 * roles, the CRM version; the result is recorded for the status view.
 */
export class ConnectionTester {
  constructor(
    private readonly init: {
      connector: CrmConnector;
      status: StatusRepository;
      secretStore: SecretStoreDescription;
      clock?: () => Date;
    },
  ) {}

  async test(setup: ConnectionSetup, caller?: CallerPrincipal): Promise<{ result: ConnectionTestResult; session?: OpenSession }> {
    const testedAt = (this.init.clock?.() ?? new Date()).toISOString();
    const prompts = this.encryptionPrompts(setup.company);
    const outcome = await this.run(setup, caller);
    const result: ConnectionTestResult =
      "failure" in outcome
        ? { ok: false, message: connectionMessages.testFailed(outcome.failure.reason), testedAt, error: outcome.failure, warnings: [], prompts }
        : { ok: true, message: outcome.message, testedAt, details: outcome.details, warnings: outcome.warnings, prompts };
    await this.init.status.recordTest(setup.company, {
      at: testedAt,
      ok: result.ok,
      message: result.message,
      ...(result.error && { step: result.error.step }),
    });
    return { result, ...("session" in outcome && { session: outcome.session }) };
  }

  private async run(
    setup: ConnectionSetup,
    caller: CallerPrincipal | undefined,
  ): Promise<
    | { failure: { step: FailureStep; reason: string } }
    | { message: string; details: NonNullable<ConnectionTestResult["details"]>; warnings: string[]; session: OpenSession }
  > {
    const missing = missingCredentials(setup);
    if (missing) return { failure: { step: "settings", reason: missing } };
    const connectionUser = setup.userName ?? setup.clientId ?? "the connection user";
    let client: DataverseClient;
    let who: Awaited<ReturnType<DataverseClient["whoAmI"]>>;
    try {
      client = await this.init.connector.client(setup);
      who = await client.whoAmI();
    } catch (error) {
      return { failure: { step: failureStep(error), reason: userStateReason(error, connectionUser) ?? withSignInAdvice(describeFailure(error)) } };
    }
    try {
      const user = await client.retrieve<{ isdisabled?: boolean; islicensed?: boolean; applicationid?: string | null }>("systemusers", who.UserId, [
        "fullname",
        "isdisabled",
        "islicensed",
        "applicationid",
      ]);
      if (user.isdisabled) return { failure: { step: "permission", reason: connectionMessages.connectionUserDisabled(connectionUser) } };
      if (user.islicensed === false && !user.applicationid) {
        return { failure: { step: "permission", reason: connectionMessages.connectionUserUnlicensed(connectionUser) } };
      }
      const roles = await client.retrieveMultiple<{ name: string }>(`systemusers(${who.UserId})/systemuserroles_association`, { select: ["name"] });
      if (roles.length === 0) return { failure: { step: "permission", reason: connectionMessages.connectionUserHasNoRoles(connectionUser) } };
      const warnings = roles.some((role) => role.name === systemAdministrator) ? [connectionMessages.connectionUserIsAdministrator(connectionUser)] : [];
      const crmVersion = await client.retrieveVersion();
      let message: string = connectionMessages.testSucceeded;
      if (setup.usersMustMapToCrmUsers && caller) {
        const mapped = caller.email ? await findCrmUserByEmail(client, caller.email) : undefined;
        if (!mapped) message = `${message} ${connectionMessages.usersMustMapUnmapped(caller.name)}`;
      }
      return {
        message,
        warnings,
        details: { crmVersion, userId: who.UserId, organizationId: who.OrganizationId, businessUnitId: who.BusinessUnitId, connectionUser },
        session: { client, userId: who.UserId, organizationId: who.OrganizationId, crmVersion },
      };
    } catch (error) {
      return { failure: { step: failureStep(error), reason: userStateReason(error, connectionUser) ?? describeFailure(error) } };
    }
  }

  private encryptionPrompts(company: string): Prompt[] {
    if (this.init.secretStore.kind === "key-vault") return [];
    return [
      { id: "enable-encryption", message: connectionMessages.secretsNotInKeyVault, action: { method: "PUT", href: `/api/companies/${company}/connection` } },
    ];
  }
}

/** Dataverse refuses disabled and unlicensed users outright; say which, in the ERP's words. */
function userStateReason(error: unknown, user: string): string | undefined {
  if (!(error instanceof DataverseRequestError) || error.status !== 403) return undefined;
  if (error.code === "0x80040225") return connectionMessages.connectionUserDisabled(user);
  if (error.code === "0x80072560" && /licen[cs]e/i.test(error.message)) return connectionMessages.connectionUserUnlicensed(user);
  if (error.code === "0x80072560") return connectionMessages.userNotInOrganization(user);
  if (error.code === "0x80040220" && /roleCount=0/.test(error.message)) return connectionMessages.connectionUserHasNoRoles(user);
  return undefined;
}

/** Entra ID's words, then what to do when the sign-in needs an interaction a service cannot give. */
function withSignInAdvice(reason: string): string {
  const code = /AADSTS\d+/.exec(reason)?.[0];
  const advice = code ? connectionMessages.signInNeedsInteraction[code] : undefined;
  return advice ? `${reason} ${advice}` : reason;
}

/** The active CRM user whose primary email is the ERP user's (users-must-map rule). */
export async function findCrmUserByEmail(client: DataverseClient, email: string): Promise<{ systemuserid: string; fullname?: string } | undefined> {
  const escaped = email.replace(/'/g, "''");
  const [user] = await client.retrieveMultiple<{ systemuserid: string; fullname?: string }>("systemusers", {
    select: ["systemuserid", "fullname"],
    filter: `internalemailaddress eq '${escaped}' and isdisabled eq false`,
    top: 1,
  });
  return user;
}
