import { randomUUID } from "node:crypto";

/** One operation of a $batch, relative to the Web API root (e.g. `accounts(<id>)`). */
export interface BatchOperation {
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface BatchResult {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * Formats operations as an OData $batch (multipart/mixed). Writes go into one change set (all or
 * nothing) when `atomic`; reads always stand alone, as Dataverse requires.
 */
export function buildBatch(apiRoot: string, operations: BatchOperation[], atomic: boolean): { contentType: string; body: string } {
  const batch = `batch_${randomUUID()}`;
  const lines: string[] = [];
  const writes = operations.filter((operation) => operation.method !== "GET");
  const reads = operations.filter((operation) => operation.method === "GET");
  if (atomic && writes.length > 0) {
    const changeSet = `changeset_${randomUUID()}`;
    lines.push(`--${batch}`, `Content-Type: multipart/mixed; boundary=${changeSet}`, "");
    writes.forEach((operation, index) => lines.push(`--${changeSet}`, ...part(apiRoot, operation, String(index + 1))));
    lines.push(`--${changeSet}--`);
  } else {
    for (const operation of writes) lines.push(`--${batch}`, ...part(apiRoot, operation));
  }
  for (const operation of reads) lines.push(`--${batch}`, ...part(apiRoot, operation));
  lines.push(`--${batch}--`, "");
  return { contentType: `multipart/mixed; boundary=${batch}`, body: lines.join("\r\n") };
}

function part(apiRoot: string, operation: BatchOperation, contentId?: string): string[] {
  const headers = { ...(operation.body !== undefined && { "Content-Type": "application/json; type=entry" }), ...operation.headers };
  return [
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    ...(contentId ? [`Content-ID: ${contentId}`] : []),
    "",
    `${operation.method} ${apiRoot}/${operation.path} HTTP/1.1`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "",
    operation.body === undefined ? "" : JSON.stringify(operation.body),
  ];
}

/** The responses of a $batch in order, change set responses flattened in place. */
export function parseBatchResponse(contentType: string, body: string): BatchResult[] {
  const boundary = /boundary=("?)([^";]+)\1/i.exec(contentType)?.[2];
  if (!boundary) throw new Error("The $batch response has no multipart boundary.");
  const results: BatchResult[] = [];
  for (const section of sections(body, boundary)) {
    const { headers, rest } = splitHead(section);
    const inner = /boundary=("?)([^";]+)\1/i.exec(headers["content-type"] ?? "")?.[2];
    if (inner) {
      for (const changePart of sections(rest, inner)) results.push(parseHttp(splitHead(changePart).rest));
    } else {
      results.push(parseHttp(rest));
    }
  }
  return results;
}

function sections(body: string, boundary: string): string[] {
  const parts = body.replace(/\r\n/g, "\n").split(`--${boundary}`);
  const found: string[] = [];
  for (const part of parts.slice(1)) {
    if (part.startsWith("--")) break;
    found.push(part.replace(/^\n/, ""));
  }
  return found;
}

function splitHead(text: string): { headers: Record<string, string>; rest: string } {
  const split = text.indexOf("\n\n");
  const head = split < 0 ? text : text.slice(0, split);
  const headers: Record<string, string> = {};
  for (const line of head.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { headers, rest: split < 0 ? "" : text.slice(split + 2) };
}

function parseHttp(text: string): BatchResult {
  const [statusLine = "", ...rest] = text.split("\n");
  const status = Number(/HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const { headers, rest: body } = splitHead(rest.join("\n"));
  const trimmed = body.trim();
  let parsed: unknown;
  try {
    parsed = trimmed ? JSON.parse(trimmed) : undefined;
  } catch {
    parsed = trimmed;
  }
  return { status, headers, body: parsed };
}
