import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

// The shape of the code, checked: which folder may import which, and how long a module may grow.
const root = resolve("src");
const files: string[] = [];
const walk = (folder: string) => {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.(ts|js)$/.test(name)) files.push(path);
  }
};
walk(root);

/**
 * A module's folder: src/lib/<folder>, or the root modules of src/lib by name (errors, config, services, ...).
 * A sub-folder belongs to its folder: sync/run/ holds the steps of the sync run, which use the mapping
 * definitions and reconcile.ts of sync/ as the runner does.
 */
function folderOf(path: string): string {
  const parts = relative(root, path).split("/");
  if (parts[0] !== "lib") return parts[0]!;
  return parts.length > 2 ? `lib/${parts[1]}` : `lib/${parts[1]!.replace(/\.(ts|js)$/, "")}.ts`;
}

function importsOf(path: string): string[] {
  return [...readFileSync(path, "utf8").matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((match) => resolve(dirname(path), match[1]!));
}

const edges = new Map<string, Set<string>>();
for (const file of files) {
  for (const target of importsOf(file)) {
    if (!target.startsWith(root)) continue;
    const from = folderOf(file);
    const to = folderOf(target);
    if (from === to) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from)!.add(to);
  }
}

/** The folders in the largest set that all reach each other (a strongly connected component). */
function largestLoop(): string[] {
  const reach = (from: string): Set<string> => {
    const seen = new Set<string>();
    const stack = [...(edges.get(from) ?? [])];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(edges.get(next) ?? []));
    }
    return seen;
  };
  let largest: string[] = [];
  for (const folder of edges.keys()) {
    const component = [...reach(folder)].filter((other) => other === folder || reach(other).has(folder));
    if (component.length > largest.length) largest = component.sort();
  }
  return largest;
}

/** The folders a folder imports from. */
const importsFrom = (folder: string) => [...(edges.get(folder) ?? [])].sort();

describe("architecture", () => {
  it("keeps HTTP at the edge: no module under src/lib outside http/ imports http/", () => {
    // (The composition root, lib/services.ts, builds every adapter, the HTTP ones included.)
    const offenders = files.filter(
      (file) =>
        folderOf(file) !== "lib/http" &&
        folderOf(file) !== "lib/services.ts" &&
        relative(root, file).startsWith("lib/") &&
        importsOf(file).some((target) => relative(root, target).startsWith("lib/http/")),
    );
    expect(offenders.map((file) => relative(root, file))).toEqual([]);
  });

  it("has no import loop between folders: every arrow of the README's drawing points one way", () => {
    expect(largestLoop(), "folders that reach each other").toEqual([]);
  });

  it("keeps the model at the bottom: shared types, rules and messages import nothing but each other and errors", () => {
    expect(importsFrom("lib/model").filter((folder) => folder !== "lib/errors.ts")).toEqual([]);
  });

  it("keeps the adapters below the use cases: storage, Dataverse and secrets know no use case", () => {
    const useCases = ["lib/connection", "lib/erp", "lib/sales-orders", "lib/setup", "lib/statistics", "lib/sync"];
    for (const adapter of ["lib/storage", "lib/dataverse", "lib/secrets"]) {
      expect(
        importsFrom(adapter).filter((folder) => useCases.includes(folder)),
        adapter,
      ).toEqual([]);
    }
    // The local secret store keeps its rows through storage's table access, so storage never imports secrets.
    expect(importsFrom("lib/storage")).not.toContain("lib/secrets");
  });

  it("says in its header why a source file runs past 250 lines (the setup page's HTML and CSS too)", () => {
    const pages: string[] = [];
    for (const name of readdirSync(join(root, "setup-page"))) if (/\.(html|css)$/.test(name)) pages.push(join(root, "setup-page", name));
    const long = [...files, ...pages].filter((file) => readFileSync(file, "utf8").split("\n").length > 250);
    const unexplained = long.filter((file) => !/Over 250 lines:/.test(readFileSync(file, "utf8").split("\n").slice(0, 40).join("\n")));
    expect(unexplained.map((file) => relative(root, file))).toEqual([]);
  });
});
