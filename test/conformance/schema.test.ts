import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

// Conformance of the simulator with the documented Dataverse Web API: raw HTTPS, no client library.
let simulator: DataverseSimulator;
let lenient: DataverseSimulator;
let api: Awaited<ReturnType<typeof webApiAs>>;
beforeAll(async () => {
  [simulator, lenient] = await Promise.all([startDataverseSimulator(), startDataverseSimulator({ readOnlyColumns: "ignore" })]);
  api = await webApiAs(simulator, demoUsers.integration);
});
afterAll(() => Promise.all([simulator.close(), lenient.close()]));

const payloadPrefix = "Error identified in Payload provided by the user for Entity :'accounts'";

describe("metadata (learn.microsoft.com/power-apps/developer/data-platform/webapi/web-api-service-documents, .../webapi/query-metadata-web-api)", () => {
  it("serves $metadata as CSDL with the tables, keys, properties and navigation properties", async () => {
    const response = await api("GET", "$metadata");
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toMatch(/application\/xml/);
    expect(response.text).toContain('<EntityType Name="account" BaseType="mscrm.crmbaseentity"><Key><PropertyRef Name="accountid" />');
    expect(response.text).toContain('<Property Name="_primarycontactid_value" Type="Edm.Guid" />');
    expect(response.text).toContain('<NavigationProperty Name="parentcustomerid_account" Type="mscrm.account"');
    expect(response.text).toContain('<EntitySet Name="transactioncurrencies" EntityType="Microsoft.Dynamics.CRM.transactioncurrency" />');
  });

  it("serves EntityDefinitions(LogicalName='account')?$expand=Attributes with type, length, requirement and validity", async () => {
    const response = await api("GET", "EntityDefinitions(LogicalName='account')?$expand=Attributes");
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject({
      LogicalName: "account",
      EntitySetName: "accounts",
      PrimaryIdAttribute: "accountid",
      PrimaryNameAttribute: "name",
      ObjectTypeCode: 1,
    });
    const name = response.json.Attributes.find((attribute: { LogicalName: string }) => attribute.LogicalName === "name");
    expect(name).toMatchObject({
      AttributeType: "String",
      MaxLength: 160,
      IsValidForCreate: true,
      IsValidForUpdate: true,
      RequiredLevel: { Value: "ApplicationRequired" },
    });
    const createdon = response.json.Attributes.find((attribute: { LogicalName: string }) => attribute.LogicalName === "createdon");
    expect(createdon).toMatchObject({ IsValidForCreate: false, IsValidForUpdate: false });
    expect((await api("GET", "EntityDefinitions(LogicalName='nosuchtable')")).status).toBe(404);
  });
});

describe("column names (learn.microsoft.com/troubleshoot/power-platform/dataverse/dataverse-web-api-and-sdk/web-api-client-errors)", () => {
  it("refuses an unknown column in $select, $filter and $orderby instead of answering null or no rows", async () => {
    for (const query of ["accounts?$select=name,nope", "accounts?$filter=nope eq 'x'", "accounts?$orderby=nope desc", "accounts?$select=Name"]) {
      const response = await api("GET", query);
      expect(response.status, query).toBe(400);
      expect(response.json.error.code).toBe("0x0");
      expect(response.json.error.message).toMatch(/^Could not find a property named '(nope|Name)' on type 'Microsoft\.Dynamics\.CRM\.account'\.$/);
    }
  });

  it("refuses an unknown property in a body and stores nothing", async () => {
    const id = randomUUID();
    const response = await api("POST", "accounts", { body: { accountid: id, name: "Ghost", nope: 1 } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe("0x80048d19");
    expect(response.json.error.message).toContain(payloadPrefix);
    expect(response.json.error.message).toContain("Invalid property 'nope' was found in entity 'Microsoft.Dynamics.CRM.account'.");
    expect(simulator.store.get("accounts", id)).toBeUndefined();
  });

  it("refuses a lookup written as its _x_value property (only @odata.bind sets a lookup)", async () => {
    const response = await api("POST", "accounts", { body: { name: "Bound wrong", _primarycontactid_value: randomUUID() } });
    expect(response.status).toBe(400);
    expect(response.json.error.message).toContain("Invalid property '_primarycontactid_value'");
  });

  it("refuses an unknown navigation property in @odata.bind", async () => {
    const response = await api("POST", "contacts", {
      body: { lastname: "Bind", "parentcustomerid@odata.bind": "/accounts(00000000-0000-0000-0000-000000000001)" },
    });
    expect(response.status).toBe(400);
    expect(response.json.error).toMatchObject({ code: "0x80048d19" });
    expect(response.json.error.message).toContain(
      "An undeclared property 'parentcustomerid' which only has property annotations in the payload but no property value was found in the payload.",
    );
  });

  it("refuses a binding to a row that does not exist (404) and to a set of the wrong type (400)", async () => {
    const missing = await api("POST", "contacts", { body: { lastname: "Orphan", "parentcustomerid_account@odata.bind": `/accounts(${randomUUID()})` } });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe("0x80040217");
    const wrongType = await api("POST", "accounts", { body: { name: "Wrong", "primarycontactid@odata.bind": `/accounts(${randomUUID()})` } });
    expect(wrongType.status).toBe(400);
  });
});

describe("values (learn.microsoft.com/power-apps/developer/data-platform/webapi/create-entity-web-api, .../execute-batch-operations-using-web-api#handling-errors)", () => {
  it("refuses a value of the wrong type", async () => {
    for (const body of [{ name: "T", creditlimit: "a lot" }, { name: "T", customertypecode: "3" }, { name: 42 }, { name: "T", donotemail: "yes" }]) {
      const response = await api("POST", "accounts", { body });
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.json.error.code).toBe("0x80048d19");
    }
  });

  it("refuses a string longer than the column's MaxLength with 0x80044331", async () => {
    const response = await api("POST", "accounts", { body: { name: "x".repeat(161) } });
    expect(response.status).toBe(400);
    expect(response.json.error).toEqual({
      code: "0x80044331",
      message: "A validation error occurred.  The length of the 'name' attribute of the 'account' entity exceeded the maximum allowed length of '160'.",
    });
    expect((await api("POST", "accounts", { body: { name: "x".repeat(160) } })).status).toBe(204);
  });

  it("refuses an option value outside the option set", async () => {
    const response = await api("POST", "accounts", { body: { name: "Options", customertypecode: 99 } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe("0x8004431a");
  });

  it("refuses a SystemRequired column left empty, and does not enforce ApplicationRequired ones", async () => {
    const product = await api("POST", "products", { body: { name: "No number" } });
    expect(product.status).toBe(400);
    expect(product.json.error.message).toContain("'productnumber'");
    // account.name is ApplicationRequired: the API does not enforce it (MicrosoftDocs/powerapps-docs#1580).
    expect((await api("POST", "accounts", { body: { telephone1: "1" } })).status).toBe(204);
  });

  it("refuses a read-only column by default, and drops it silently as Dataverse does when asked to", async () => {
    const strict = await api("POST", "contacts", { body: { lastname: "Readonly", fullname: "Forged Name" } });
    expect(strict.status).toBe(400);
    expect(strict.json.error.message).toContain("'fullname' attribute of the 'contact' entity is not valid for create");
    const update = await api("POST", "accounts", { body: { name: "Stamp" }, headers: { prefer: "return=representation" } });
    const patch = await api("PATCH", `accounts(${update.json.accountid})`, { body: { createdon: "2001-01-01T00:00:00Z" } });
    expect(patch.status).toBe(400);

    const lenientApi = await webApiAs(lenient, demoUsers.integration);
    const dropped = await lenientApi("POST", "contacts", {
      body: { lastname: "Readonly", fullname: "Forged Name" },
      headers: { prefer: "return=representation" },
    });
    expect(dropped.status).toBe(201);
    expect(dropped.json.fullname).toBe("Readonly");
  });
});

describe("server-set columns (learn.microsoft.com/power-apps/developer/data-platform/reference/entities/account)", () => {
  it("sets owner, business unit, base currency, state and status, created/modified stamps and version", async () => {
    const created = await api("POST", "accounts", { body: { name: "Defaults", creditlimit: 10 }, headers: { prefer: "return=representation" } });
    expect(created.status).toBe(201);
    const integrationUserId = "a1b2c3d4-0001-4000-8000-000000000001";
    expect(created.json).toMatchObject({
      _ownerid_value: integrationUserId,
      _owninguser_value: integrationUserId,
      _createdby_value: integrationUserId,
      _modifiedby_value: integrationUserId,
      _transactioncurrencyid_value: "c0c0c0c0-0000-4000-8000-000000000001",
      statecode: 0,
      statuscode: 1,
    });
    expect(Date.parse(created.json.createdon)).toBeGreaterThan(Date.now() - 60_000);
    const updated = await api("PATCH", `accounts(${created.json.accountid})`, { body: { name: "Defaults 2" }, headers: { prefer: "return=representation" } });
    expect(Number(updated.json.versionnumber)).toBeGreaterThan(Number(created.json.versionnumber));
  });

  it("computes a contact's fullname from first and last name, on create and on update", async () => {
    const created = await api("POST", "contacts", { body: { firstname: "Ada", lastname: "Lovelace" }, headers: { prefer: "return=representation" } });
    expect(created.json.fullname).toBe("Ada Lovelace");
    const updated = await api("PATCH", `contacts(${created.json.contactid})`, { body: { lastname: "Byron" }, headers: { prefer: "return=representation" } });
    expect(updated.json.fullname).toBe("Ada Byron");
  });

  it("makes the impersonated user the owner, and the caller the on-behalf-of user", async () => {
    const jane = "a1b2c3d4-0006-4000-8000-000000000006";
    const created = await api("POST", "accounts", { body: { name: "On behalf" }, headers: { prefer: "return=representation", MSCRMCallerID: jane } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ _ownerid_value: jane, _createdby_value: jane, _createdonbehalfby_value: "a1b2c3d4-0001-4000-8000-000000000001" });
  });
});
