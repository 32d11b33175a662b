import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { useSimulatorApi } from "../support/raw-dataverse";

// Hostile and malformed requests: the simulator answers 400 as Dataverse does, and never fails with a 500 of
// its own (which would let a connector bug pass as an outage).
const web = useSimulatorApi();
const { api } = web;

const batch = (parts: string[], changeSet: boolean) => {
  const boundary = `batch_${randomUUID()}`;
  const changes = `changeset_${randomUUID()}`;
  const http = (part: string, index: number) =>
    ["Content-Type: application/http", "Content-Transfer-Encoding: binary", `Content-ID: ${index + 1}`, "", part].join("\r\n");
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

describe("malformed requests answer 400, never a 500 (learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors)", () => {
  it.each([
    ["POST", "accounts", "null"],
    ["POST", "accounts", "[]"],
    ["POST", "accounts", "42"],
    ["POST", "accounts", "{bad"],
    ["POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", "null"],
    ["POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", '{"Targets":[null]}'],
    ["POST", "accounts/Microsoft.Dynamics.CRM.CreateMultiple", '{"Targets":[{"@odata.type":"Microsoft.Dynamics.CRM.account","name":"x"}],"Bogus":1}'],
    ["GET", "accounts%E0%A4%A", undefined],
    ["GET", "accounts?$top=1e0", undefined],
    ["GET", "accounts?$top=1&$top=3", undefined],
    ["GET", "accounts?$select=name,name", undefined],
    ["GET", "accounts?$select=name,", undefined],
    ["GET", "accounts?$orderby=name asc desc", undefined],
    ["GET", "accounts?$count=yes", undefined],
    ["GET", "accounts?$deltatoken=99999999!2099-01-01T00:00:00Z", undefined],
    ["GET", "accounts?$deltatoken=-5", undefined],
  ])("%s %s %s", async (method, path, body) => {
    const response = await api(method, path, body === undefined ? {} : { body, headers: { "content-type": "application/json" } });
    expect(response.status, response.text).toBe(400);
  });

  it("refuses malformed $batch parts, nested change sets and repeated Content-IDs with 400", async () => {
    const post = (text: string) => `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${text}`;
    for (const parts of [[post("{bad")], [post("null")], ["GET http://[::1 HTTP/1.1\r\n\r\n"]]) {
      const response = await api("POST", "$batch", batch(parts, true));
      expect(response.status, parts[0]).toBeLessThan(500);
    }
    const nestedBoundary = `changeset_${randomUUID()}`;
    const nested = batch(
      [`Content-Type: multipart/mixed; boundary=${nestedBoundary}\r\n\r\n--${nestedBoundary}\r\n${post('{"name":"x"}')}\r\n--${nestedBoundary}--`],
      true,
    );
    expect((await api("POST", "$batch", nested)).status).toBe(400);
    const boundary = `batch_${randomUUID()}`;
    const changes = `changeset_${randomUUID()}`;
    const twice = [
      `--${boundary}`,
      `Content-Type: multipart/mixed; boundary=${changes}`,
      "",
      ...[1, 2].flatMap(() => [`--${changes}`, "Content-Type: application/http", "Content-ID: 1", "", post('{"name":"twice"}')]),
      `--${changes}--`,
      `--${boundary}--`,
      "",
    ].join("\r\n");
    const repeated = await api("POST", "$batch", { body: twice, headers: { "content-type": `multipart/mixed; boundary=${boundary}` } });
    expect(repeated.status).toBe(400);
    expect(repeated.text).toContain("was found more than once");
  });

  it("resolves relative URLs of batch parts against the service root", async () => {
    const response = await api("POST", "$batch", batch(["GET accounts?$select=name&$top=1 HTTP/1.1\r\n\r\n"], false));
    expect(response.status).toBe(200);
    expect(response.text).toContain("$metadata#accounts(name)");
  });

  it("binds a lookup only to a row of this organization", async () => {
    const contact = await api("POST", "contacts", { body: { lastname: "Bound" }, headers: { prefer: "return=representation" } });
    const foreign = await api("POST", "accounts", {
      body: { name: "Foreign", "primarycontactid@odata.bind": `https://evil.example/api/data/v9.2/contacts(${contact.json.contactid})` },
    });
    expect(foreign.status).toBe(400);
    const own = await api("POST", "accounts", {
      body: { name: "Own", "primarycontactid@odata.bind": `${web.simulator.url}/api/data/v9.2/contacts(${contact.json.contactid})` },
    });
    expect(own.status).toBe(204);
  });

  it("reads a date without an offset as UTC, refuses days that do not exist and dates before 1753", async () => {
    const account = await api("POST", "accounts", { body: { name: "Dates" }, headers: { prefer: "return=representation" } });
    const invoice = await api("POST", "invoices", {
      body: { name: "Due", duedate: "2024-02-01T10:00:00", "customerid_account@odata.bind": `/accounts(${account.json.accountid})` },
      headers: { prefer: "return=representation" },
    });
    expect(invoice.status).toBe(201);
    expect(invoice.json.duedate).toBe("2024-02-01T10:00:00Z");
    for (const duedate of ["2024-02-30", "1700-01-01"]) expect((await api("POST", "invoices", { body: { name: "Bad", duedate } })).status, duedate).toBe(400);
  });

  it("does not report a delete rolled back with its change set as a deletion", async () => {
    const start = await api("GET", "accounts?$select=accountid", { headers: { prefer: "odata.track-changes" } });
    const link = String(start.json["@odata.deltaLink"]);
    const id = randomUUID();
    const post = `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ accountid: id, name: "Phantom" })}`;
    const remove = "DELETE $1 HTTP/1.1\r\n\r\n";
    const failing = `POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name: "x".repeat(200) })}`;
    expect((await api("POST", "$batch", batch([post, remove, failing], true))).status).toBe(400);
    const delta = await api("GET", link.slice(link.indexOf("/api/data/v9.2/") + "/api/data/v9.2/".length));
    expect(delta.status).toBe(200);
    expect(delta.json.value.some((entry: { id?: string }) => entry.id === id)).toBe(false);
  });
});
