import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, settings } from "../../src/lib/config";

const base = { AzureWebJobsStorage: "UseDevelopmentStorage=true" };

describe("loadConfig", () => {
  it("fills defaults for unset settings", () => {
    const config = loadConfig(base);
    expect(config).toMatchObject({
      SYNC_SCHEDULE: "0 */1 * * * *",
      INTEGRATION_SOLUTION_NAME: "MicrosoftDynamicsNavIntegration",
      AUTHORITY_HOST: "https://login.microsoftonline.com",
      DATAVERSE_ALLOWED_HOSTS: [],
      runningInAzure: false,
    });
  });

  it("names every bad setting and the rule it breaks", () => {
    const attempt = () =>
      loadConfig({ ...base, SYNC_BATCH_SIZE: "many", KEY_VAULT_URL: "http://vault.example", SYNC_SCHEDULE: "*/5 * * * *", ERP_LOCAL_CURRENCY: "euro" });
    expect(attempt).toThrow(ConfigError);
    try {
      attempt();
    } catch (error) {
      const problems = (error as ConfigError).problems;
      expect(problems).toHaveLength(4);
      expect(problems.join("\n")).toMatch(/SYNC_BATCH_SIZE: .*number/);
      expect(problems.join("\n")).toMatch(/KEY_VAULT_URL: must be an https:\/\/ URL/);
      expect(problems.join("\n")).toMatch(/SYNC_SCHEDULE: must be an NCRONTAB expression with 6 fields/);
      expect(problems.join("\n")).toMatch(/ERP_LOCAL_CURRENCY: must be a 3-letter ISO currency code/);
    }
  });

  it("requires storage", () => {
    expect(() => loadConfig({})).toThrow(/AzureWebJobsStorage: set a storage connection string/);
  });

  it("requires Key Vault when running in Azure", () => {
    expect(() => loadConfig({ ...base, WEBSITE_INSTANCE_ID: "abc" })).toThrow(/KEY_VAULT_URL: required when running in Azure/);
    const schedules = Object.fromEntries(
      Object.keys(settings)
        .filter((name) => name.startsWith("SYNC_SCHEDULE_"))
        .map((name) => [name, "0 */1 * * * *"]),
    );
    expect(loadConfig({ ...base, ...schedules, WEBSITE_INSTANCE_ID: "abc", KEY_VAULT_URL: "https://kv.vault.azure.net/" }).KEY_VAULT_URL).toBe(
      "https://kv.vault.azure.net",
    );
  });

  it("reads the allowed hosts as a lowercase list", () => {
    expect(loadConfig({ ...base, DATAVERSE_ALLOWED_HOSTS: " Localhost:7443, crm.contoso.local ," }).DATAVERSE_ALLOWED_HOSTS).toEqual([
      "localhost:7443",
      "crm.contoso.local",
    ]);
  });

  it("requires every per-job schedule in Azure, where the host resolves %SYNC_SCHEDULE_<JOB>% itself, and falls back locally", () => {
    const local = { AzureWebJobsStorage: "UseDevelopmentStorage=true", LOCAL_SECRET_KEY: Buffer.alloc(32).toString("base64") };
    expect(() => loadConfig(local)).not.toThrow();
    const inAzure = {
      WEBSITE_INSTANCE_ID: "abc",
      AzureWebJobsStorage__tableServiceUri: "https://s.table.core.windows.net",
      AzureWebJobsStorage__queueServiceUri: "https://s.queue.core.windows.net",
      KEY_VAULT_URL: "https://v.vault.azure.net",
    };
    let message = "";
    try {
      loadConfig(inAzure);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/SYNC_SCHEDULE_CUSTOMER: must be set in Azure/);
  });
});
