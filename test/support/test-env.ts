import { randomBytes } from "node:crypto";
import { inject } from "vitest";

// The settings every test process runs with, so code that calls loadConfig() sees real Azurite storage.
process.env.AzureWebJobsStorage = inject("storageConnectionString");
process.env.LOCAL_SECRET_KEY ??= randomBytes(32).toString("base64");
delete process.env.WEBSITE_INSTANCE_ID;
delete process.env.KEY_VAULT_URL;
