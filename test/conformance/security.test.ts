import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoClientSecret, unregisteredAppClientId, xrmToolingSampleClientId } from "../simulator/fixture";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";
import { demoUsers, rawRequest, tokenRequest, webApiAs } from "../support/raw-dataverse";

let simulator: DataverseSimulator;
beforeAll(async () => {
  simulator = await startDataverseSimulator();
});
afterAll(() => simulator.close());

const adminId = "a1b2c3d4-0002-4000-8000-000000000002";
const janeId = "a1b2c3d4-0006-4000-8000-000000000006";

describe("security roles (learn.microsoft.com/power-platform/admin/security-roles-privileges, .../troubleshoot/power-platform/dataverse/user-permissions/client-errors)", () => {
  it("refuses a Salesperson who updates the organization row, with the missing privilege named", async () => {
    const jane = await webApiAs(simulator, demoUsers.jane);
    const response = await jane("PATCH", `organizations(${simulator.fixture.organization.organizationid})`, { body: { issopintegrationenabled: true } });
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe("0x80040220");
    expect(response.json.error.message).toMatch(
      new RegExp(
        `^Principal user \\(Id=${janeId}, type=8, roleCount=1, privilegeCount=\\d+, accessMode=0\\), is missing prvWriteOrganization privilege \\(Id=[0-9a-f-]{36}\\) on OTC=1019 for entity 'organization'`,
      ),
    );
    expect(simulator.store.rows("organizations")[0]!.issopintegrationenabled).toBe(false);
  });

  it("refuses a Salesperson who disables the administrator", async () => {
    const jane = await webApiAs(simulator, demoUsers.jane);
    const response = await jane("PATCH", `systemusers(${adminId})`, { body: { isdisabled: true } });
    expect(response.status).toBe(403);
    expect(response.json.error.message).toContain("is missing prvWriteUser privilege");
    expect(simulator.store.get("systemusers", adminId)!.isdisabled).toBe(false);
  });

  it("lets a Salesperson create an account but not a product, and needs AppendTo on a lookup's target", async () => {
    const jane = await webApiAs(simulator, demoUsers.jane);
    expect((await jane("POST", "accounts", { body: { name: "Jane's account" } })).status).toBe(204);
    const product = await jane("POST", "products", { body: { name: "Widget", productnumber: "W-1" } });
    expect(product.status).toBe(403);
    expect(product.json.error.message).toContain("is missing prvCreateProduct privilege");
  });

  it("offers only Retrieve, RetrieveMultiple and Update on the organization table, even to an administrator", async () => {
    const admin = await webApiAs(simulator, demoUsers.admin);
    const remove = await admin("DELETE", `organizations(${simulator.fixture.organization.organizationid})`);
    expect(remove.status).toBe(400);
    expect(remove.json.error).toMatchObject({
      code: "0x80040800",
      message: expect.stringContaining("The 'Delete' method does not support entities of type 'organization'"),
    });
    expect((await admin("POST", "organizations", { body: { name: "Second" } })).status).toBe(400);
    expect(simulator.store.rows("organizations")).toHaveLength(1);
    expect((await admin("PATCH", `organizations(${simulator.fixture.organization.organizationid})`, { body: { issopintegrationenabled: false } })).status).toBe(
      204,
    );
  });

  it("refuses a user with no roles on any table (roleCount=0)", async () => {
    const nobody = await webApiAs(simulator, demoUsers.noRoles);
    const response = await nobody("GET", "accounts?$select=name");
    expect(response.status).toBe(403);
    expect(response.json.error.message).toMatch(/roleCount=0, privilegeCount=0, accessMode=0\), is missing prvReadAccount privilege/);
  });

  it("answers 403 0x80072560 to a tenant user or an app registration with no systemuser in the organization", async () => {
    const outsider = await webApiAs(simulator, demoUsers.outsider);
    const response = await outsider("GET", "WhoAmI");
    expect(response.status).toBe(403);
    expect(response.json.error).toEqual({ code: "0x80072560", message: "The user is not a member of the organization." });

    const token = await tokenRequest(simulator, {
      grant_type: "client_credentials",
      client_id: unregisteredAppClientId,
      client_secret: demoClientSecret,
      scope: `${simulator.url}/.default`,
    });
    expect(token.status).toBe(200);
    const app = await rawRequest(simulator, "GET", "/api/data/v9.2/WhoAmI", { headers: { authorization: `Bearer ${token.json.access_token}` } });
    expect(app.status).toBe(403);
    expect(app.json.error.code).toBe("0x80072560");
  });
});

describe("impersonation (learn.microsoft.com/power-apps/developer/data-platform/webapi/impersonate-another-user-web-api)", () => {
  it("acts as the user named by CallerObjectId (Entra object id) or MSCRMCallerID (systemuserid)", async () => {
    const integration = await webApiAs(simulator, demoUsers.integration);
    const jane = simulator.store.get("systemusers", janeId)!;
    const byObjectId = await integration("GET", "WhoAmI", { headers: { CallerObjectId: String(jane.azureactivedirectoryobjectid) } });
    expect(byObjectId.json.UserId).toBe(janeId);
    const bySystemUserId = await integration("GET", "WhoAmI", { headers: { MSCRMCallerID: janeId } });
    expect(bySystemUserId.json.UserId).toBe(janeId);
  });

  it("needs prvActOnBehalfOfAnotherUser, and then both users' privileges apply", async () => {
    const jane = await webApiAs(simulator, demoUsers.jane);
    const refused = await jane("GET", "WhoAmI", { headers: { MSCRMCallerID: adminId } });
    expect(refused.status).toBe(403);
    expect(refused.json.error.message).toContain("is missing prvActOnBehalfOfAnotherUser privilege");
    // The integration user may create products; impersonating Jane (a Salesperson) it may not.
    const integration = await webApiAs(simulator, demoUsers.integration);
    const asJane = await integration("POST", "products", { body: { name: "Gadget", productnumber: "G-1" }, headers: { MSCRMCallerID: janeId } });
    expect(asJane.status).toBe(403);
    const unknown = await integration("GET", "WhoAmI", { headers: { CallerObjectId: "00000000-0000-4000-8000-00000000abcd" } });
    expect(unknown.status).toBe(404);
  });
});

describe("Entra ID token errors (learn.microsoft.com/entra/identity-platform/reference-error-codes)", () => {
  const scope = () => `${simulator.url}/.default`;

  it("requires a client_id (AADSTS900144) and a registered application (AADSTS700016)", async () => {
    const missing = await tokenRequest(simulator, { grant_type: "password", username: demoUsers.integration, password: "x", scope: scope() });
    expect(missing.status).toBe(400);
    expect(missing.json).toMatchObject({ error: "invalid_request", error_codes: [900144] });
    expect(missing.json.error_description).toMatch(/^AADSTS900144: The request body must contain the following parameter: 'client_id'\.\r\nTrace ID: /);
    const unknown = await tokenRequest(simulator, {
      grant_type: "password",
      client_id: "11111111-2222-4333-8444-555555555555",
      username: demoUsers.integration,
      password: "x",
      scope: scope(),
    });
    expect(unknown.json).toMatchObject({ error: "unauthorized_client", error_codes: [700016] });
  });

  it("refuses users that need MFA, are blocked by Conditional Access, or face an external challenge, even with the right password", async () => {
    const signIn = (username: string) =>
      tokenRequest(simulator, { grant_type: "password", client_id: xrmToolingSampleClientId, username, password: "Demo-Passw0rd!", scope: scope() });
    const mfa = await signIn(demoUsers.mfa);
    expect(mfa.json).toMatchObject({ error: "invalid_grant", error_codes: [50076], suberror: "basic_action" });
    expect(mfa.json.error_description).toContain("you must use multi-factor authentication");
    const blocked = await signIn(demoUsers.blocked);
    expect(blocked.json).toMatchObject({ error: "interaction_required", error_codes: [53003] });
    expect(blocked.json.error_description).toContain("Access has been blocked by Conditional Access policies.");
    const federated = await signIn(demoUsers.federated);
    expect(federated.json).toMatchObject({ error: "interaction_required", error_codes: [50158] });
    expect((await signIn(demoUsers.integration)).status).toBe(200);
  });
});
