import { readFileSync, writeFileSync } from "node:fs";
import { localSettingsExample, settingsMarkdownTable } from "../src/lib/settings-docs";

// Regenerates what is derived from config.ts: local.settings.example.json and the README settings table.
writeFileSync("local.settings.example.json", `${JSON.stringify(localSettingsExample(), null, 2)}\n`);
const readme = readFileSync("README.md", "utf8");
const updated = readme.replace(
  /(<!-- settings:start -->\n)[\s\S]*?(\n<!-- settings:end -->)/,
  (_match, start: string, end: string) => `${start}${settingsMarkdownTable()}${end}`,
);
writeFileSync("README.md", updated);
console.log("updated local.settings.example.json and the README settings table");
