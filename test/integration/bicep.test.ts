import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type BicepCli, findBicep } from "../../scripts/bicep-cli";

function bicepFiles(folder = "infra"): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? bicepFiles(join(folder, entry.name)) : entry.name.endsWith(".bicep") ? [join(folder, entry.name)] : [],
  );
}

/**
 * Linter rules whose warning is accepted, each with its reason. Empty: every warning is a failure.
 * (Add a rule only with the reason it does not apply to this template.)
 */
const acceptedWarnings: Record<string, string> = {};

let bicep: BicepCli;
beforeAll(() => {
  bicep = findBicep();
  if ("unavailable" in bicep) console.warn(`Skipping the Bicep compiler checks: ${bicep.unavailable}.`);
}, 300_000);

describe("infra/ with the real Bicep compiler", () => {
  it.each(bicepFiles())("bicep build %s: no error", (file) => {
    if ("unavailable" in bicep) return;
    const result = bicep.run(["build", file, "--stdout"]);
    expect(result.output.split("\n").filter((line) => / : Error /.test(line))).toEqual([]);
    expect(result.status).toBe(0);
  });

  it.each(bicepFiles())("bicep lint %s: no warning without a stated reason", (file) => {
    if ("unavailable" in bicep) return;
    const result = bicep.run(["lint", file]);
    const findings = result.output.split("\n").filter((line) => / : (Error|Warning) /.test(line));
    const unexplained = findings.filter((line) => {
      const rule = / : Warning ([a-z0-9-]+):/.exec(line)?.[1];
      return !rule || !acceptedWarnings[rule];
    });
    expect(unexplained).toEqual([]);
    expect(result.status).toBe(0);
  });

  it("compiles main.bicep to an ARM template whose app settings follow the parameters", () => {
    if ("unavailable" in bicep) return;
    const result = bicep.run(["build", "infra/main.bicep", "--stdout"]);
    const template = JSON.parse(result.output.slice(result.output.indexOf("{"))) as { parameters: Record<string, { defaultValue?: unknown }> };
    // The authority host follows the cloud the template is deployed to (no hard-coded login URL).
    expect(String(template.parameters.authorityHost?.defaultValue)).toBe("[environment().authentication.loginEndpoint]");
    // Node.js 22 by default; 20 is past its end of life.
    expect(template.parameters.nodeVersion?.defaultValue).toBe("22");
    // A salt changes every generated name (a re-created resource group meets the soft-deleted vault's name).
    expect(JSON.stringify(template)).toMatch(/uniqueString\(resourceGroup\(\)\.id, parameters\('nameSalt'\)\)/);
    // App Service authentication without an app registration fails the deployment instead of allowing audiences 'api://' and ''.
    expect(JSON.stringify(template)).toContain("fail('authClientId is required when enableAppServiceAuthentication is true.')");
  });
});
