import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { useSyncHarness } from "../support/sync-harness";

// The OpenAPI document as tools use it: valid for a maintained validator, unique operation ids, a server to
// call, and response schemas that real answers of a working setup match.
const harness = useSyncHarness();
const { enabledCompany, put, run } = harness;

async function loadDocument() {
  const response = await harness.demo.app.call("GET", "/api/openapi.json");
  expect(response.status).toBe(200);
  return response.json as { paths: Record<string, Record<string, { operationId: string }>>; servers: { url: string }[] };
}

describe("the OpenAPI document", () => {
  it("is valid OpenAPI 3.1 for a maintained validator, with unique operation ids and the app as server", async () => {
    const document = await loadDocument();
    const result = await new Validator().validate(document as never);
    expect(result.valid, JSON.stringify(result.errors ?? null).slice(0, 2000)).toBe(true);
    // The validator does refuse a broken document (this test can fail).
    expect((await new Validator().validate({ ...document, paths: { "/x": { get: { responses: { 200: {} } } } } } as never)).valid).toBe(false);
    const ids = Object.values(document.paths).flatMap((operations) => Object.values(operations).map((operation) => operation.operationId));
    expect(new Set(ids).size).toBe(ids.length);
    expect(document.servers).toEqual([expect.objectContaining({ url: new URL(harness.demo.app.url).origin })]);
  });

  it("describes the answers a working setup gives: each validates against its response schema", async () => {
    const document = await loadDocument();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema(document, "api");
    const pointer = (path: string, method: string, status: number) =>
      `api#/paths/${path.replace(/~/g, "~0").replace(/\//g, "~1")}/${method}/responses/${status}/content/application~1json/schema`;
    const check = async (method: string, template: string, url: string, status = 200, body?: unknown) => {
      const response = await harness.demo.app.call(method, url, body === undefined ? {} : { body });
      expect(response.status, `${method} ${url}: ${response.text.slice(0, 300)}`).toBe(status);
      const validate = ajv.getSchema(pointer(template, method.toLowerCase(), status));
      expect(validate, `${method} ${template} ${status} has a schema`).toBeDefined();
      const valid = validate!(response.json);
      expect(valid, `${method} ${url}: ${JSON.stringify(validate!.errors).slice(0, 1000)}`).toBe(true);
      // A field the schema does not describe fails it (the schemas are strict, so they follow the views).
      expect(validate!({ ...response.json, undocumented: true }), `${method} ${url} refuses an undocumented field`).toBe(false);
      return response.json;
    };

    const company = await enabledCompany();
    await put(company, "customers", [{ id: "C1", name: `${company} One`, blocked: "All" }]);
    await put(company, "contacts", [{ id: "P1", firstName: "Pat", surname: company, companyNo: "C1" }]);
    await put(company, "customers", [{ id: "C2", name: `${company} Two` }]);
    await run(company, "CUSTOMER");
    const contactRun = await run(company, "CONTACT");
    const base = `/api/companies/${company}`;
    const t = "/api/companies/{company}";

    await check("GET", `${t}/connection`, `${base}/connection`);
    await check("PATCH", `${t}/connection/settings`, `${base}/connection/settings`, 200, { erpWebUrl: "https://erp.contoso.example/bc" });
    await check("GET", `${t}/sync/mappings`, `${base}/sync/mappings`);
    await check("PATCH", `${t}/sync/mappings/{mapping}`, `${base}/sync/mappings/CONTACT`, 200, { fields: [{ erp: "phoneNo", enabled: false }] });
    await check("GET", `${t}/sync/jobs`, `${base}/sync/jobs`);
    await check("PATCH", `${t}/sync/jobs/{job}`, `${base}/sync/jobs/CUSTOMER`, 200, { inactivityTimeoutMinutes: 30 });
    await check("POST", `${t}/sync/jobs/{job}/hold`, `${base}/sync/jobs/CUSTOMER/hold`);
    const log = await check("GET", `${t}/sync/log`, `${base}/sync/log?mapping=CONTACT&runId=${contactRun.runId}`);
    const failed = log.value.find((entry: { failed: number }) => entry.failed > 0);
    await check("GET", `${t}/sync/log/{id}/errors`, `${failed.links.errors}?top=5`);
    const issues = await check("GET", `${t}/sync/issues`, failed.links.issues);
    expect(issues.value).not.toEqual([]);
    await check("GET", `${t}/sync/conflicts`, `${base}/sync/conflicts`);
    await check("GET", `${t}/sync/skipped`, `${base}/sync/skipped`);
    const couplings = await check("GET", `${t}/sync/couplings`, `${base}/sync/couplings?mapping=CUSTOMER`);
    expect(couplings.value).not.toEqual([]);
    await check("POST", `${t}/connection/disable`, `${base}/connection/disable`, 200, { reason: "Maintenance" });
  });
});
