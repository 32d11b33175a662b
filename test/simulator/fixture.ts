import type { Row } from "./odata-query";

/** A user that can sign in with a password (Office365 / OAuth). */
export interface FixtureUser {
  systemuserid: string;
  fullname: string;
  internalemailaddress: string;
  domainname: string;
  password: string;
  isdisabled?: boolean;
  islicensed?: boolean;
  roles: string[];
  /** The user's Entra object id (systemuser.azureactivedirectoryobjectid); derived from the systemuserid when absent. */
  objectId?: string;
  /** Sign-in that Entra ID refuses even with the right password: MFA, Conditional Access, a federated IdP's challenge. */
  signIn?: "mfa-required" | "conditional-access" | "external-challenge";
  /** A tenant user who was never added to the Dataverse environment (no systemuser row). */
  notInOrganization?: boolean;
}

/** An app registration (client credentials) mapped to an application user. */
export interface FixtureApplication {
  clientId: string;
  clientSecret?: string;
  /** PEM of the certificate whose private key signs client assertions. */
  certificatePem?: string;
  systemuserid: string;
  roles: string[];
  /** Registered in the tenant but never added as an application user in Dataverse. */
  notInOrganization?: boolean;
}

/** A public client registration users sign in through with a password (ROPC). */
export interface FixturePublicClient {
  clientId: string;
  name: string;
}

/**
 * An app registration that exposes an API (an ERP front end asks for tokens to call this service): its
 * identifier URI and which access token version it accepts (the manifest's accessTokenAcceptedVersion; null,
 * the default of `az ad app create`, means 1).
 */
export interface FixtureExposedApi {
  clientId: string;
  identifierUri: string;
  accessTokenVersion: 1 | 2;
}

export interface Fixture {
  tenantId: string;
  tenantDomain: string;
  organization: { organizationid: string; name: string; version: string; issopintegrationenabled: boolean; baseCurrencyCode: string };
  solutions: { uniquename: string; version: string }[];
  users: FixtureUser[];
  applications: FixtureApplication[];
  publicClients: FixturePublicClient[];
  exposedApis?: FixtureExposedApi[];
  /** Extra rows by entity set, e.g. salesorders. */
  rows: Record<string, Row[]>;
}

export const demoPassword = "Demo-Passw0rd!";
export const demoClientId = "6a1f4d0e-3b5c-4f7a-9e2d-1c8b7a6f5e4d";
export const demoClientSecret = "demo-client-secret";
/** An app registration with a secret but no application user in the organization. */
export const unregisteredAppClientId = "0b3d5f7a-9c1e-4a2b-8d6f-5e4c3b2a1f0e";
export const xrmToolingSampleClientId = "51f81489-12ee-4a9e-aaae-a2591f45987d";

/** The Entra object id of a fixture user (deterministic, different from its systemuserid). */
export function objectIdOf(user: Pick<FixtureUser, "systemuserid" | "objectId">): string {
  return user.objectId ?? `0b1ec7${user.systemuserid.slice(6)}`;
}

/** The demo organization of API.md "Local demo"; `npm start -- --simulator` and most tests use it. */
export function demoFixture(): Fixture {
  return {
    tenantId: "8f3c9d2e-5b4a-4c1d-9e8f-7a6b5c4d3e2f",
    tenantDomain: "demo.example",
    organization: {
      organizationid: "0f7e3a52-1c2b-4d6e-8f9a-b1c2d3e4f5a6",
      name: "Demo Sales",
      version: "9.2.24083.00212",
      issopintegrationenabled: false,
      baseCurrencyCode: "USD",
    },
    solutions: [
      { uniquename: "MicrosoftDynamicsNavIntegration", version: "2.5.0.0" },
      { uniquename: "System", version: "9.2.24083.00212" },
    ],
    users: [
      user("a1b2c3d4-0001-4000-8000-000000000001", "Integration User", "integration@demo.example", ["Salesperson", "Integration"]),
      user("a1b2c3d4-0002-4000-8000-000000000002", "Alex Admin", "admin@demo.example", ["System Administrator"]),
      user("a1b2c3d4-0003-4000-8000-000000000003", "Dana Disabled", "disabled@demo.example", ["Salesperson"], { isdisabled: true }),
      user("a1b2c3d4-0004-4000-8000-000000000004", "Uma Unlicensed", "unlicensed@demo.example", ["Salesperson"], { islicensed: false }),
      user("a1b2c3d4-0005-4000-8000-000000000005", "Nora Noroles", "noroles@demo.example", []),
      user("a1b2c3d4-0006-4000-8000-000000000006", "Jane Seller", "jane@demo.example", ["Salesperson"]),
      user("a1b2c3d4-0008-4000-8000-000000000008", "Mia Mfa", "mfa@demo.example", ["Salesperson", "Integration"], { signIn: "mfa-required" }),
      user("a1b2c3d4-0009-4000-8000-000000000009", "Cora Conditional", "blocked@demo.example", ["Salesperson", "Integration"], {
        signIn: "conditional-access",
      }),
      user("a1b2c3d4-0010-4000-8000-000000000010", "Fred Federated", "federated@demo.example", ["Salesperson", "Integration"], {
        signIn: "external-challenge",
      }),
      user("a1b2c3d4-0011-4000-8000-000000000011", "Olga Outsider", "outsider@demo.example", [], { notInOrganization: true }),
    ],
    applications: [
      { clientId: demoClientId, clientSecret: demoClientSecret, systemuserid: "a1b2c3d4-0007-4000-8000-000000000007", roles: ["Integration"] },
      {
        clientId: unregisteredAppClientId,
        clientSecret: demoClientSecret,
        systemuserid: "a1b2c3d4-0012-4000-8000-000000000012",
        roles: [],
        notInOrganization: true,
      },
    ],
    // Microsoft's sample app registration for XRM tooling connection strings, present in every tenant.
    publicClients: [{ clientId: xrmToolingSampleClientId, name: "XRM tooling sample" }],
    // This service's own API, registered as the README says (v1 tokens, the default).
    exposedApis: [{ clientId: demoClientId, identifierUri: `api://${demoClientId}`, accessTokenVersion: 1 }],
    rows: {
      salesorders: [
        { salesorderid: "5a1e0001-0000-4000-8000-000000000001", name: "Order 1001", statecode: 0, statuscode: 1 },
        { salesorderid: "5a1e0002-0000-4000-8000-000000000002", name: "Order 1002", statecode: 0, statuscode: 1 },
      ],
    },
  };
}

function user(
  systemuserid: string,
  fullname: string,
  email: string,
  roles: string[],
  flags: Partial<Pick<FixtureUser, "isdisabled" | "islicensed" | "signIn" | "notInOrganization">> = {},
): FixtureUser {
  return { systemuserid, fullname, internalemailaddress: email, domainname: email, password: demoPassword, roles, ...flags };
}
