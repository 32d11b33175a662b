import { type SettingDefinition, platformSettings, settings } from "./config";

/** The value a setting takes when unset, as text (undefined when it has none). */
export function defaultText(definition: SettingDefinition): string | undefined {
  const parsed = definition.schema.safeParse(undefined);
  if (!parsed.success || parsed.data === undefined) return undefined;
  return Array.isArray(parsed.data) ? parsed.data.join(",") : String(parsed.data);
}

/** local.settings.json as `func start` reads it: every setting of config.ts, with local values. */
export function localSettingsExample(): { IsEncrypted: false; Values: Record<string, string> } {
  const values: Record<string, string> = { FUNCTIONS_WORKER_RUNTIME: "node" };
  for (const [name, definition] of Object.entries(settings) as [string, SettingDefinition][]) {
    values[name] = definition.localExample ?? defaultText(definition) ?? "";
  }
  return { IsEncrypted: false, Values: values };
}

/** The README's settings table: every setting of config.ts and the platform settings Bicep adds. */
export function settingsMarkdownTable(): string {
  const rows = (Object.entries(settings) as [string, SettingDefinition][]).map(([name, definition]) => {
    const fallback = defaultText(definition);
    const azure = definition.optionalInAzure ? "not set (local runs)" : "set by Bicep";
    return `| \`${name}\` | ${fallback === undefined ? "—" : `\`${fallback || '""'}\``} | ${azure} | ${definition.description} |`;
  });
  const platform = Object.entries(platformSettings).map(([name, description]) => `| \`${name}\` | — | set by Bicep | ${description} |`);
  return ["| setting | default | in Azure | what it does |", "|---|---|---|---|", ...rows, ...platform].join("\n");
}
