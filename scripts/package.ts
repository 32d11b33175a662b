import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { zipEntryName } from "./zip-entry-name";
import { zipSync } from "fflate";

/**
 * The deployment zip for the function app: the bundles (dist/main.js and the lazily loaded dist/vendor/*),
 * host.json and a package.json whose main is the bundle. The bundles hold every dependency, so no
 * node_modules ship and no remote build is needed.
 */
const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { name: string; version: string; main: string };
const files: Record<string, Uint8Array> = {
  "host.json": readFileSync("host.json"),
  // Azure runs the app on Node.js 22 (20 is past its end of life); development machines may still use 20.
  "package.json": Buffer.from(`${JSON.stringify({ name: pkg.name, version: pkg.version, main: pkg.main, engines: { node: ">=22" } }, null, 2)}\n`),
};
for (const folder of ["dist", "dist/vendor", "dist/setup-page"]) {
  for (const name of readdirSync(folder, { withFileTypes: true })) {
    if (name.isFile() && /\.(js|map|txt|html|css)$/.test(name.name)) files[zipEntryName(folder, name.name)] = readFileSync(join(folder, name.name));
  }
}
const zip = zipSync(files, { level: 9 });
writeFileSync("function-app.zip", zip);
console.log(`function-app.zip: ${(zip.length / 1024).toFixed(0)} KiB, ${Object.keys(files).length} files`);

// The same files as a folder, which azd packages for the function app (azure.yaml: dist: deploy).
rmSync("deploy", { recursive: true, force: true });
for (const [name, content] of Object.entries(files)) {
  mkdirSync(dirname(join("deploy", name)), { recursive: true });
  writeFileSync(join("deploy", name), content);
}
