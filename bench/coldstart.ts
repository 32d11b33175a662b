/**
 * npm run bench:coldstart — how long a fresh Node.js process takes to load the function app's entry:
 * the esbuild bundle (what deploys) against the same code compiled by tsc, unbundled. Median of several
 * fresh processes each. Targets: the bundle loads in under 300 ms and at least 2x faster.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";

const runs = Number(process.env.BENCH_RUNS ?? 9);

function build(): void {
  execFileSync(process.execPath, ["--import", "tsx", "scripts/build.ts"], { stdio: "inherit" });
  rmSync("dist/unbundled", { recursive: true, force: true });
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json", "--outDir", "dist/unbundled"], { stdio: "inherit" });
}

function loadMs(entry: string): number {
  const probe = `const t=process.hrtime.bigint();require(${JSON.stringify(entry)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const result = spawnSync(process.execPath, ["-e", probe], { encoding: "utf8" });
  if (result.status !== 0) throw new Error(`loading ${entry} failed: ${result.stderr}`);
  return Number(result.stdout);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

build();
const entries = { bundled: `${process.cwd()}/dist/main.js`, unbundled: `${process.cwd()}/dist/unbundled/src/functions/index.js` };
loadMs(entries.bundled);
loadMs(entries.unbundled);
const samples = { bundled: [] as number[], unbundled: [] as number[] };
for (let run = 0; run < runs; run++) {
  samples.bundled.push(loadMs(entries.bundled));
  samples.unbundled.push(loadMs(entries.unbundled));
}
const bundled = median(samples.bundled);
const unbundled = median(samples.unbundled);
console.log(`\nCold start: time to load the entry in a fresh process (median of ${runs})`);
console.table([
  { entry: "dist/main.js (esbuild bundle)", "load ms": bundled.toFixed(1) },
  { entry: "dist/unbundled/src/functions/index.js (tsc)", "load ms": unbundled.toFixed(1) },
]);
console.log(`The bundle loads ${(unbundled / bundled).toFixed(1)}x faster.\n`);
const checks = [
  ["the bundle loads in under 300 ms", bundled < 300],
  ["the bundle loads at least 2x faster than unbundled", unbundled / bundled >= 2],
] as const;
for (const [target, met] of checks) console.log(`${met ? "PASS" : "FAIL"}  ${target}`);
process.exitCode = checks.every(([, met]) => met) ? 0 : 1;
