import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useSimulatorApi } from "../support/raw-dataverse";

const web = useSimulatorApi();
const { api } = web;

async function newAccount(name = "Conditional"): Promise<{ id: string; etag: string }> {
  const created = await api("POST", "accounts", { body: { name }, headers: { prefer: "return=representation" } });
  return { id: created.json.accountid, etag: created.json["@odata.etag"] };
}

describe("conditional operations (learn.microsoft.com/power-apps/developer/data-platform/webapi/perform-conditional-operations-using-web-api)", () => {
  it("answers 304 to a GET whose If-None-Match is current, except with annotations", async () => {
    const { id, etag } = await newAccount();
    expect((await api("GET", `accounts(${id})?$select=name`, { headers: { "If-None-Match": etag } })).status).toBe(304);
    expect((await api("GET", `accounts(${id})?$select=name`, { headers: { "If-None-Match": etag, prefer: 'odata.include-annotations="*"' } })).status).toBe(
      200,
    );
    await api("PATCH", `accounts(${id})`, { body: { name: "Changed" } });
    expect((await api("GET", `accounts(${id})?$select=name`, { headers: { "If-None-Match": etag } })).status).toBe(200);
  });

  it("refuses a DELETE or PATCH whose If-Match is stale with 412, and keeps the row", async () => {
    const { id, etag } = await newAccount();
    await api("PATCH", `accounts(${id})`, { body: { name: "Newer" } });
    const remove = await api("DELETE", `accounts(${id})`, { headers: { "If-Match": etag } });
    expect(remove.status).toBe(412);
    expect(remove.json.error).toEqual({ code: "0x80060882", message: "The version of the existing record doesn't match the RowVersion property provided." });
    expect(web.simulator.store.get("accounts", id)).toBeDefined();
    expect((await api("PATCH", `accounts(${id})`, { body: { name: "Lost" }, headers: { "If-Match": etag } })).status).toBe(412);
    expect((await api("PATCH", `accounts(${id})`, { body: { name: "Dup" }, headers: { "If-None-Match": "*" } })).json.error.code).toBe("0x80040237");
    expect((await api("PATCH", `accounts(${randomUUID()})`, { body: { name: "Missing" }, headers: { "If-Match": "*" } })).status).toBe(404);
  });
});

describe("bulk messages (learn.microsoft.com/power-apps/developer/data-platform/bulk-operations, .../webapi/reference/upsertmultiple)", () => {
  it("CreateMultiple answers the ids; UpsertMultiple answers 204 and accepts the @odata.id alternate-key form", async () => {
    const created = await api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", {
      body: { Targets: [1, 2].map((index) => ({ "@odata.type": "Microsoft.Dynamics.CRM.account", name: `Bulk ${index}` })) },
    });
    expect(created.status).toBe(200);
    expect(created.json.Ids).toHaveLength(2);
    const key = `BULK-${randomUUID().slice(0, 8)}`;
    const upserted = await api("POST", "accounts/Microsoft.Dynamics.CRM.UpsertMultiple", {
      body: {
        Targets: [
          { "@odata.type": "Microsoft.Dynamics.CRM.account", "@odata.id": `accounts(accountnumber='${key}')`, name: "By key" },
          { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: created.json.Ids[0], name: "By id" },
        ],
      },
    });
    expect(upserted.status).toBe(204);
    expect(upserted.text).toBe("");
    expect(web.simulator.store.findByKey("accounts", { accountnumber: key })?.name).toBe("By key");
    expect(web.simulator.store.get("accounts", created.json.Ids[0])?.name).toBe("By id");
  });

  it("needs @odata.type on every target, rolls the whole request back on one bad row, and exists only on tables that have it", async () => {
    const untyped = await api("POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", { body: { Targets: [{ name: "No type" }] } });
    expect(untyped.status).toBe(400);
    const good = randomUUID();
    const mixed = await api("POST", "accounts/Microsoft.Dynamics.CRM.UpsertMultiple", {
      body: {
        Targets: [
          { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: good, name: "Fine" },
          { "@odata.type": "Microsoft.Dynamics.CRM.account", accountid: randomUUID(), name: "x".repeat(200) },
        ],
      },
    });
    expect(mixed.status).toBe(400);
    expect(web.simulator.store.get("accounts", good)).toBeUndefined();
    const users = await api("POST", "systemusers/Microsoft.Dynamics.CRM.UpdateMultiple", {
      body: { Targets: [{ "@odata.type": "Microsoft.Dynamics.CRM.systemuser", systemuserid: randomUUID() }] },
    });
    expect(users.status).toBe(404);
    expect(users.json.error).toMatchObject({ code: "0x8006088a", message: "Resource not found for the segment 'Microsoft.Dynamics.CRM.UpdateMultiple'." });
  });
});

describe("$batch (learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api)", () => {
  const batchOf = (parts: string[], changeSet = true) => {
    const boundary = `batch_${randomUUID()}`;
    const changes = `changeset_${randomUUID()}`;
    const http = (part: string, index: number) =>
      [`Content-Type: application/http`, "Content-Transfer-Encoding: binary", `Content-ID: ${index + 1}`, "", part].join("\r\n");
    const body = changeSet
      ? [
          `--${boundary}`,
          `Content-Type: multipart/mixed; boundary=${changes}`,
          "",
          ...parts.flatMap((part, index) => [`--${changes}`, http(part, index)]),
          `--${changes}--`,
          `--${boundary}--`,
          "",
        ].join("\r\n")
      : [...parts.flatMap((part, index) => [`--${boundary}`, http(part, index)]), `--${boundary}--`, ""].join("\r\n");
    return { body, headers: { "content-type": `multipart/mixed; boundary=${boundary}` } };
  };
  const post = (name: string) => `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name })}`;

  it("resolves $n Content-ID references in URLs and @odata.bind values within a change set", async () => {
    const contact = `POST /api/data/v9.2/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ lastname: "Referenced" })}`;
    const account = `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name: "With contact", "primarycontactid@odata.bind": "$1" })}`;
    const rename = `PATCH $2 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ telephone1: "555" })}`;
    const response = await api("POST", "$batch", batchOf([contact, account, rename]));
    expect(response.status).toBe(200);
    const created = web.simulator.store.rows("accounts").find((row) => row.name === "With contact")!;
    expect(created.telephone1).toBe("555");
    expect(web.simulator.store.get("contacts", String(created._primarycontactid_value))?.lastname).toBe("Referenced");
    const forward = await api("POST", "$batch", batchOf([`PATCH $5 HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"name":"x"}`]));
    expect(forward.status).toBe(400);
    expect(forward.text).toContain("Content-ID Reference: '$5' does not exist in the batch context.");
  });

  it("answers 400 outside when a part fails (the change set rolled back), 200 with odata.continue-on-error", async () => {
    const tooLong = `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name: "x".repeat(161) })}`;
    const failed = await api("POST", "$batch", batchOf([post("Rolled back"), tooLong]));
    expect(failed.status).toBe(400);
    expect(failed.text).toContain("0x80044331");
    expect(web.simulator.store.rows("accounts").some((row) => row.name === "Rolled back")).toBe(false);
    const independent = batchOf([tooLong, post("Kept")], false);
    const continued = await api("POST", "$batch", { ...independent, headers: { ...independent.headers, prefer: "odata.continue-on-error" } });
    expect(continued.status).toBe(200);
    expect(web.simulator.store.rows("accounts").some((row) => row.name === "Kept")).toBe(true);
  });

  it("refuses more than 1000 operations", async () => {
    const response = await api("POST", "$batch", batchOf(Array.from({ length: 1001 }, (_, index) => post(`Too many ${index}`))));
    expect(response.status).toBe(400);
    expect(response.json.error.message).toContain("maximum number of '1000'");
    expect(web.simulator.store.rows("accounts").some((row) => row.name === "Too many 0")).toBe(false);
  });
});
