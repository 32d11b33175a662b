import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Parser from "tree-sitter";
import Bicep from "tree-sitter-bicep";
import { describe, expect, it } from "vitest";
import { type SettingDefinition, platformSettings, settings } from "../../src/lib/config";

type SyntaxNode = Parser.SyntaxNode;

const parser = new Parser();
parser.setLanguage(Bicep as unknown as Parser.Language);

function bicepFiles(folder = "infra"): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? bicepFiles(join(folder, entry.name)) : entry.name.endsWith(".bicep") ? [join(folder, entry.name)] : [],
  );
}

function parse(file: string): SyntaxNode {
  return parser.parse(readFileSync(file, "utf8")).rootNode;
}

function descendants(node: SyntaxNode): SyntaxNode[] {
  return [node, ...node.children.flatMap(descendants)];
}

/** The keys and value nodes of `var <name> = { ... }`. */
function objectVariable(root: SyntaxNode, name: string): Map<string, SyntaxNode> {
  const declaration = root.children.find((node) => node.type === "variable_declaration" && node.namedChildren[0]?.text === name);
  const object = declaration?.namedChildren.find((node) => node.type === "object");
  if (!object) throw new Error(`no object variable ${name}`);
  return new Map(
    object.namedChildren
      .filter((node) => node.type === "object_property")
      .map((property) => {
        const [key, value] = property.namedChildren;
        const text = key!.type === "string" ? key!.text.slice(1, -1) : key!.text;
        return [text, value!] as const;
      }),
  );
}

describe("Bicep (infra/)", () => {
  it.each(bicepFiles())("%s parses with no error node", (file) => {
    const root = parse(file);
    const broken = descendants(root).filter((node) => node.type === "ERROR" || node.isMissing);
    expect(broken.map((node) => `${node.type} at ${node.startPosition.row + 1}:${node.startPosition.column + 1}`)).toEqual([]);
    expect(root.hasError).toBe(false);
  });

  it("sets every setting of config.ts that Azure needs, and no setting config.ts does not know", () => {
    const appSettings = [...objectVariable(parse("infra/main.bicep"), "appSettings").keys()];
    const required = (Object.entries(settings) as [string, SettingDefinition][]).filter(([, definition]) => !definition.optionalInAzure).map(([name]) => name);
    const known = new Set([...Object.keys(settings), ...Object.keys(platformSettings)]);
    expect(required.filter((name) => !appSettings.includes(name))).toEqual([]);
    expect(appSettings.filter((name) => !known.has(name))).toEqual([]);
  });

  it("puts no secret and no storage connection string in an app setting", () => {
    const appSettings = objectVariable(parse("infra/main.bicep"), "appSettings");
    expect(appSettings.has("AzureWebJobsStorage")).toBe(false);
    expect(appSettings.has("LOCAL_SECRET_KEY")).toBe(false);
    for (const [name, value] of appSettings) {
      expect(value.text, name).not.toMatch(/AccountKey|SharedAccessSignature|listKeys|secret|password/i);
    }
    const everything = bicepFiles()
      .map((file) => readFileSync(file, "utf8"))
      .join("\n");
    expect(everything).not.toMatch(/listKeys\(|listAccountSas\(|primaryKey/);
  });

  it("grants the app identity exactly the documented roles it needs", () => {
    const root = parse("infra/modules/role-assignments.bicep");
    const roles = Object.fromEntries([...objectVariable(root, "roles")].map(([name, value]) => [name, value.text.slice(1, -1)]));
    expect(roles).toEqual({
      storageBlobDataOwner: "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
      storageTableDataContributor: "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
      storageQueueDataContributor: "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
      keyVaultSecretsOfficer: "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
      monitoringMetricsPublisher: "3913510d-42f4-4e42-8a64-420c390055eb",
    });
    const assignments = descendants(root).filter(
      (node) => node.type === "resource_declaration" && node.text.includes("Microsoft.Authorization/roleAssignments"),
    );
    expect(assignments).toHaveLength(5);
    const used = assignments.map((node) => /roleDefinitions', roles\.(\w+)\)/.exec(node.text)?.[1]).sort();
    expect(used).toEqual(Object.keys(roles).sort());
  });

  it("hardens the vault and the storage account", () => {
    const vault = readFileSync("infra/modules/keyvault.bicep", "utf8");
    expect(vault).toMatch(/enableRbacAuthorization: true/);
    expect(vault).toMatch(/enableSoftDelete: true/);
    expect(vault).toMatch(/enablePurgeProtection: true/);
    const storage = readFileSync("infra/modules/storage.bicep", "utf8");
    expect(storage).toMatch(/allowSharedKeyAccess: false/);
    expect(storage).toMatch(/allowBlobPublicAccess: false/);
    const monitoring = readFileSync("infra/modules/monitoring.bicep", "utf8");
    expect(monitoring).toMatch(/DisableLocalAuth: true/);
    const app = readFileSync("infra/modules/function-app.bicep", "utf8");
    expect(app).toMatch(/tier: 'FlexConsumption'/);
    expect(app).toMatch(/type: 'SystemAssigned'/);
    expect(app).toMatch(/httpsOnly: true/);
  });

  it("sizes the Node.js worker's heap for every instance size main.bicep allows, as the benchmark runs it", () => {
    const main = readFileSync("infra/main.bicep", "utf8");
    const nodeWorker = JSON.parse(readFileSync("infra/node-worker.json", "utf8")) as {
      defaultInstanceMemoryMB: number;
      maxOldSpaceSizeMB: Record<string, number>;
    };
    const [, allowed, fallback] = /@allowed\(\[([\d, ]+)\]\)\nparam instanceMemoryMB int = (\d+)/.exec(main) ?? [];
    expect(allowed?.split(",").map((size) => size.trim())).toEqual(Object.keys(nodeWorker.maxOldSpaceSizeMB));
    // bench/sync.ts runs its workers as an instance of the default size.
    expect(Number(fallback)).toBe(nodeWorker.defaultInstanceMemoryMB);
    for (const [instance, heap] of Object.entries(nodeWorker.maxOldSpaceSizeMB)) expect(heap, instance).toBe(Number(instance) / 2);
    const argument = objectVariable(parse("infra/main.bicep"), "appSettings").get("languageWorkers__node__arguments")?.text;
    expect(argument).toBe("'--max-old-space-size=${nodeWorker.maxOldSpaceSizeMB[string(instanceMemoryMB)]}'");
  });

  it("the parameters file names only parameters main.bicep declares", () => {
    const declared = parse("infra/main.bicep")
      .children.filter((node) => node.type === "parameter_declaration")
      .map((node) => node.namedChildren[0]!.text);
    const file = JSON.parse(readFileSync("infra/main.parameters.json", "utf8")) as { parameters: Record<string, unknown> };
    expect(Object.keys(file.parameters).filter((name) => !declared.includes(name))).toEqual([]);
  });
});
