import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { functionDefinitions } from "../../src/functions/definitions";
import { settings } from "../../src/lib/config";
import { localSettingsExample, settingsMarkdownTable } from "../../src/lib/settings-docs";
import { zipEntryName } from "../../scripts/zip-entry-name";

describe("project files follow config.ts and the definitions", () => {
  it("local.settings.example.json lists every setting (regenerate: npm run settings:example)", () => {
    expect(JSON.parse(readFileSync("local.settings.example.json", "utf8"))).toEqual(localSettingsExample());
    expect(Object.keys(localSettingsExample().Values)).toEqual(expect.arrayContaining(Object.keys(settings)));
  });

  it("the README's settings table is the one config.ts generates", () => {
    expect(readFileSync("README.md", "utf8")).toContain(settingsMarkdownTable());
  });

  it("host.json is a v4 host with the extension bundle and a timeout above the sync time budget", () => {
    const host = JSON.parse(readFileSync("host.json", "utf8"));
    expect(host.version).toBe("2.0");
    expect(host.extensionBundle.id).toBe("Microsoft.Azure.Functions.ExtensionBundle");
    const [hours, minutes, seconds] = String(host.functionTimeout).split(":").map(Number);
    const timeoutSeconds = hours! * 3600 + minutes! * 60 + seconds!;
    const budget = settings.SYNC_TIME_BUDGET_SECONDS.schema.parse(undefined);
    expect(budget).toBeLessThan(timeoutSeconds);
  });

  it("every function has a unique name, and HTTP routes with methods are unique", () => {
    const names = functionDefinitions.map((definition) => definition.name);
    expect(new Set(names).size).toBe(names.length);
    const routes = functionDefinitions.flatMap((definition) =>
      definition.trigger === "http" ? definition.methods.map((method) => `${method} ${definition.route}`) : [],
    );
    expect(new Set(routes).size).toBe(routes.length);
  });

  it("no route or function name starts with 'admin', which the Functions host reserves", () => {
    for (const definition of functionDefinitions) {
      expect(definition.name.toLowerCase().startsWith("admin"), definition.name).toBe(false);
      if (definition.trigger === "http") expect(definition.route.toLowerCase().startsWith("admin"), definition.route).toBe(false);
    }
  });

  it("package.json main points at the compiled functions entry that func start loads", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    expect(pkg.main).toBe("dist/main.js");
  });
});

describe("the deployment zip", () => {
  it("names entries with / whatever the platform's separator", async () => {
    expect(zipEntryName("dist\\vendor", "msal.js")).toBe("dist/vendor/msal.js");
    expect(zipEntryName("dist/setup-page", "setup.css")).toBe("dist/setup-page/setup.css");
  });
});

describe("azure.yaml (azd up)", () => {
  it("names the Bicep entry point, the service the function app is tagged for, and the folder npm run package writes", () => {
    const azure = readFileSync("azure.yaml", "utf8");
    const path = /^\s+path:\s*(\S+)/m.exec(azure)?.[1];
    const module = /^\s+module:\s*(\S+)/m.exec(azure)?.[1];
    expect(readFileSync(`${path}/${module}.bicep`, "utf8")).toContain("module functionApp");
    const service = /^services:\n\s+(\w+):/m.exec(azure)?.[1];
    expect(readFileSync("infra/modules/function-app.bicep", "utf8")).toContain(`'azd-service-name': '${service}'`);
    const dist = /^\s+dist:\s*(\S+)/m.exec(azure)?.[1];
    expect(readFileSync("scripts/package.ts", "utf8")).toContain(`join("${dist}", name)`);
    expect(azure).toMatch(/host: function/);
  });
});
