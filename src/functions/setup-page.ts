import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { respond } from "../lib/http/respond";
import { notFound } from "../lib/http/problem";

/**
 * The connection setup page: a few static files served by the function app itself. The page holds no
 * secret; it calls the public API with the function key the admin enters (or App Service authentication).
 * Served at /api/setup because the Functions host reserves routes that start with "admin".
 */
const files: Record<string, { type: string }> = {
  "index.html": { type: "text/html; charset=utf-8" },
  "setup.js": { type: "text/javascript; charset=utf-8" },
  "page-core.js": { type: "text/javascript; charset=utf-8" },
  "sync-views.js": { type: "text/javascript; charset=utf-8" },
  "sales-orders.js": { type: "text/javascript; charset=utf-8" },
  "setup.css": { type: "text/css; charset=utf-8" },
};

// Source: src/setup-page; bundle: dist/setup-page (copied by scripts/build.ts).
const folder = [join(__dirname, "setup-page"), join(__dirname, "..", "setup-page")].find((candidate) => existsSync(join(candidate, "index.html")));
const cache = new Map<string, { body: Buffer; etag: string }>();

function asset(name: string): { body: Buffer; etag: string } {
  let entry = cache.get(name);
  if (!entry) {
    if (!folder) throw new Error("The setup page's files are missing (src/setup-page or dist/setup-page).");
    const body = readFileSync(join(folder, name));
    entry = { body, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 16)}"` };
    cache.set(name, entry);
  }
  return entry;
}

export async function setupPage(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return respond(context, async () => {
    const name = request.params.file || "index.html";
    // Own properties only: "__proto__" or "constructor" are no asset names.
    const file = Object.hasOwn(files, name) ? files[name] : undefined;
    if (!file) throw notFound(`No page asset "${name}".`);
    const { body, etag } = asset(name);
    const headers = {
      "content-type": file.type,
      etag,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "content-security-policy":
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors " +
        "'none'; base-uri 'none'",
    };
    if (request.headers.get("if-none-match") === etag) return { status: 304, headers };
    return { status: 200, headers, body };
  });
}

export const setupPageFunctions: FunctionDefinition[] = [
  {
    name: "setup-page",
    trigger: "http",
    route: "setup/{file?}",
    methods: ["GET"],
    authLevel: "anonymous",
    summary: "The connection setup page (HTML, script, styles)",
    handler: setupPage,
    contract: { responses: { 200: "The page or one of its files", 404: "No such file" } },
  },
];
