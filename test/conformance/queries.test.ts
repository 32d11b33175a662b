import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DataverseSimulator, startDataverseSimulator } from "../simulator/simulator";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

let simulator: DataverseSimulator;
let api: Awaited<ReturnType<typeof webApiAs>>;
const tag = `q${randomUUID().slice(0, 8)}`;
beforeAll(async () => {
  simulator = await startDataverseSimulator();
  api = await webApiAs(simulator, demoUsers.integration);
  const contact = await api("POST", "contacts", { body: { firstname: "Pat", lastname: tag }, headers: { prefer: "return=representation" } });
  for (let index = 1; index <= 12; index++) {
    await api("POST", "accounts", {
      body: {
        name: `${tag} ${String(index).padStart(2, "0")}`,
        accountnumber: `${tag}-${index}`,
        creditlimit: index * 1000,
        customertypecode: 3,
        "primarycontactid@odata.bind": `/contacts(${contact.json.contactid})`,
      },
    });
  }
});
afterAll(() => simulator.close());

const mine = `$filter=startswith(name,'${tag}')`;

describe("paging (learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results)", () => {
  it("ignores $top when odata.maxpagesize is given, and honours it without", async () => {
    const both = await api("GET", `accounts?$select=name&${mine}&$top=2`, { headers: { prefer: "odata.maxpagesize=5" } });
    expect(both.json.value).toHaveLength(5);
    expect(both.headers["preference-applied"]).toBe("odata.maxpagesize=5");
    expect(both.json["@odata.nextLink"]).toBeDefined();
    const top = await api("GET", `accounts?$select=name&${mine}&$top=2`);
    expect(top.json.value).toHaveLength(2);
    expect(top.json["@odata.nextLink"]).toBeUndefined();
  });

  it("pages with Dataverse's paging cookie, and loses no row when one is deleted or added between pages", async () => {
    const first = await api("GET", `accounts?$select=name&${mine}&$orderby=name asc`, { headers: { prefer: "odata.maxpagesize=5" } });
    const next = String(first.json["@odata.nextLink"]);
    expect(new URL(next).searchParams.get("$skiptoken")).toMatch(/^<cookie pagenumber="2" pagingcookie="%3ccookie%20page%3d%221%22%3e%3cname%20last%3d/);
    // A row of the first page is deleted and a row sorting first is added before the second page is read.
    await api("DELETE", `accounts(${first.json.value[0].accountid})`);
    await api("POST", "accounts", { body: { name: `${tag} 00 new` } });
    const names: string[] = first.json.value.map((row: { name: string }) => row.name);
    let link: string | undefined = next;
    while (link) {
      const page = await api("GET", link.slice(link.indexOf("/api/data/v9.2/") + "/api/data/v9.2/".length), { headers: { prefer: "odata.maxpagesize=5" } });
      expect(page.status).toBe(200);
      names.push(...page.json.value.map((row: { name: string }) => row.name));
      link = page.json["@odata.nextLink"];
    }
    expect(names).toEqual(Array.from({ length: 12 }, (_, index) => `${tag} ${String(index + 1).padStart(2, "0")}`));
  });

  it("refuses a skiptoken it did not issue, and $skip", async () => {
    expect((await api("GET", `accounts?$skiptoken=${encodeURIComponent('{"offset":5}')}`)).status).toBe(400);
    const skip = await api("GET", "accounts?$skip=5");
    expect(skip.status).toBe(400);
    expect(skip.json.error.message).toContain("$skip is not supported");
  });

  it("refuses query options it does not support rather than ignoring them", async () => {
    for (const query of [
      `accounts?fetchXml=${encodeURIComponent("<fetch><entity name='account'/></fetch>")}`,
      "accounts?$apply=groupby((name))",
      "accounts?$search=x",
      "accounts?$format=xml",
    ]) {
      const response = await api("GET", query);
      expect(response.status, query).toBe(400);
    }
  });
});

describe("counting (learn.microsoft.com/power-apps/developer/data-platform/webapi/query/count-rows)", () => {
  it("answers $count=true with @odata.count and <set>/$count as plain text", async () => {
    const counted = await api("GET", `accounts?$select=name&${mine}&$count=true`, { headers: { prefer: "odata.maxpagesize=2" } });
    expect(counted.json["@odata.count"]).toBeGreaterThanOrEqual(12);
    expect(counted.json.value).toHaveLength(2);
    const plain = await api("GET", `accounts/$count?${mine}`);
    expect(plain.headers["content-type"]).toMatch(/^text\/plain/);
    expect(Number(plain.text)).toBe(counted.json["@odata.count"]);
  });
});

describe("joins and annotations (learn.microsoft.com/power-apps/developer/data-platform/webapi/query/join-tables, .../query/select-columns#formatted-values)", () => {
  it("expands a single-valued navigation property with its own $select", async () => {
    const response = await api("GET", `accounts?$select=name&${mine} and _primarycontactid_value ne null&$top=1&$expand=primarycontactid($select=fullname)`);
    expect(response.json.value[0].primarycontactid).toMatchObject({ fullname: `Pat ${tag}`, contactid: expect.any(String) });
    const collection = await api("GET", "systemusers?$select=fullname&$expand=systemuserroles_association");
    expect(collection.status).toBe(400);
    expect((await api("GET", "accounts?$expand=nosuchnavigation")).status).toBe(400);
  });

  it("adds formatted values and lookup annotations when asked with odata.include-annotations", async () => {
    const response = await api(
      "GET",
      `accounts?$select=name,creditlimit,customertypecode,_primarycontactid_value&${mine} and customertypecode eq 3&$top=1&$orderby=name asc`,
      {
        headers: { prefer: 'odata.include-annotations="*"' },
      },
    );
    const row = response.json.value[0];
    expect(row["customertypecode@OData.Community.Display.V1.FormattedValue"]).toBe("Customer");
    expect(row["creditlimit@OData.Community.Display.V1.FormattedValue"]).toBe("$2,000.00"); // "01" was deleted by the paging test;
    expect(row["_primarycontactid_value@OData.Community.Display.V1.FormattedValue"]).toBe(`Pat ${tag}`);
    expect(row["_primarycontactid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]).toBe("contact");
    expect(row["_primarycontactid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"]).toBe("primarycontactid");
    const plain = await api("GET", `accounts?$select=customertypecode&${mine}&$top=1`);
    expect(Object.keys(plain.json.value[0]).some((key) => key.includes("FormattedValue"))).toBe(false);
  });
});

describe("alternate keys (learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record)", () => {
  it("retrieves and upserts by a defined alternate key, and refuses a key the table does not define", async () => {
    const byKey = await api("GET", `accounts(accountnumber='${tag}-3')?$select=name`);
    expect(byKey.status).toBe(200);
    expect(byKey.json.name).toBe(`${tag} 03`);
    const upserted = await api("PATCH", `accounts(accountnumber='${tag}-99')`, { body: { name: `${tag} 99` } });
    expect(upserted.status).toBe(204);
    expect(simulator.store.findByKey("accounts", { accountnumber: `${tag}-99` })?.name).toBe(`${tag} 99`);
    const notAKey = await api("GET", `accounts(name='${tag} 03')`);
    expect(notAKey.status).toBe(400);
    expect(notAKey.json.error.message).toContain("is not an alternate key");
  });
});
