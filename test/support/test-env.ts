import { randomBytes } from "node:crypto";
import { inject } from "vitest";

// The settings every test process runs with, so code that calls loadConfig() sees real Azurite storage:
// the storage account of this worker (VITEST_POOL_ID is unique among the workers running at once).
const accounts = inject("storageConnectionStrings");
const worker = Number(process.env.VITEST_POOL_ID ?? "1");
process.env.AzureWebJobsStorage = accounts[(worker - 1) % accounts.length];
process.env.LOCAL_SECRET_KEY ??= randomBytes(32).toString("base64");
delete process.env.WEBSITE_INSTANCE_ID;
delete process.env.KEY_VAULT_URL;
