import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { functionDefinitions } from "../../src/functions/definitions";
import { openApiPaths } from "../../src/lib/http/openapi";
import { type TestApp, startTestApp } from "../support/test-app";

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app.close());

describe("GET /api/openapi.json", () => {
  it("describes every HTTP function of the definitions list, with its request schemas", async () => {
    const response = await app.call("GET", "/api/openapi.json");
    expect(response.status).toBe(200);
    const document = response.json;
    expect(document.openapi).toBe("3.1.0");
    for (const definition of functionDefinitions) {
      if (definition.trigger !== "http") continue;
      for (const { path } of openApiPaths(definition.route)) {
        for (const method of definition.methods) {
          expect(document.paths[path]?.[method.toLowerCase()]?.operationId, `${method} ${path}`).toMatch(new RegExp(`^${definition.name}(-|$)`));
        }
      }
    }
    const put = document.paths["/api/companies/{company}/connection"].put;
    expect(put.requestBody.content["application/json"].schema.properties).toHaveProperty("serverAddress");
    expect(put.parameters).toEqual(expect.arrayContaining([expect.objectContaining({ in: "path", name: "company" })]));
    expect(put.responses["400"].content["application/problem+json"]).toBeDefined();
    expect(document.components.securitySchemes.functionKey).toEqual({ type: "apiKey", in: "header", name: "x-functions-key" });
    expect(document.paths["/api/health"].get.security).toBeUndefined();
    expect(openApiPaths("setup/{file?}")).toEqual([
      { path: "/api/setup", names: [] },
      { path: "/api/setup/{file}", names: ["file"] },
    ]);
    expect(document.paths["/api/setup"].get).toBeDefined();
    expect(document.paths["/api/setup/{file}"].get.parameters[0]).toMatchObject({ in: "path", name: "file", required: true });
  });
});
