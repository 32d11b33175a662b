import { randomBytes } from "node:crypto";
import { type IncomingMessage, type ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { localhostCertificate } from "./tls";

interface Version {
  id: string;
  value: string;
  contentType?: string;
  enabled?: boolean;
  created: number;
}

/**
 * An HTTPS stand-in of the Key Vault secrets REST API (no emulator exists): the 401 bearer challenge,
 * PUT/GET/DELETE of secrets with versions, soft delete (PUT on a deleted name is 409 until recovered),
 * recover and the deleted-secret reads the SDK's pollers use.
 */
export async function startKeyVaultStandIn(options: { tenantId?: string; token?: string } = {}) {
  const tenantId = options.tenantId ?? "72f988bf-86f1-41af-91ab-2d7cd011db47";
  const token = options.token ?? "kv-test-token";
  const { cert, key } = await localhostCertificate();
  const secrets = new Map<string, Version[]>();
  const deleted = new Map<string, { versions: Version[]; deletedDate: number }>();
  const requests: { method: string; path: string; authorized: boolean }[] = [];
  let baseUrl = "";

  const bundle = (name: string, version: Version) => ({
    value: version.value,
    id: `${baseUrl}/secrets/${name}/${version.id}`,
    ...(version.contentType && { contentType: version.contentType }),
    attributes: { enabled: version.enabled !== false, created: version.created, updated: version.created, recoveryLevel: "Recoverable" },
  });
  const deletedBundle = (name: string) => {
    const entry = deleted.get(name)!;
    return {
      ...bundle(name, entry.versions.at(-1)!),
      recoveryId: `${baseUrl}/deletedsecrets/${name}`,
      deletedDate: entry.deletedDate,
      scheduledPurgeDate: entry.deletedDate + 90 * 86400,
    };
  };
  const error = (response: ServerResponse, status: number, code: string, message: string, inner?: string) =>
    send(response, status, { error: { code, message, ...(inner && { innererror: { code: inner } }) } });

  const server = createServer({ cert, key }, async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", baseUrl);
    const authorized = request.headers.authorization === `Bearer ${token}`;
    requests.push({ method: request.method ?? "", path: url.pathname, authorized });
    const body = await readBody(request);
    if (!url.searchParams.get("api-version")) return error(response, 400, "BadParameter", "api-version is required");
    if (!authorized) {
      response.setHeader("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/${tenantId}", resource="https://vault.azure.net"`);
      return error(response, 401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.");
    }
    const [, collection, name, action] = url.pathname.replace(/\/+$/, "").split("/");
    const now = Math.floor(Date.now() / 1000);
    if (collection === "secrets" && name) {
      const versions = secrets.get(name);
      if (request.method === "PUT") {
        if (deleted.has(name)) {
          return error(
            response,
            409,
            "Conflict",
            `Secret ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.`,
            "ObjectIsDeletedButRecoverable",
          );
        }
        const parsed = JSON.parse(body) as { value: string; contentType?: string };
        const version: Version = { id: randomBytes(16).toString("hex"), value: parsed.value, contentType: parsed.contentType, created: now };
        secrets.set(name, [...(versions ?? []), version]);
        return send(response, 200, bundle(name, version));
      }
      if (request.method === "GET") {
        const version = action ? versions?.find((candidate) => candidate.id === action) : versions?.at(-1);
        if (!version) return error(response, 404, "SecretNotFound", `A secret with (name/id) ${name}/${action ?? ""} was not found in this key vault.`);
        if (version.enabled === false) return error(response, 403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled");
        return send(response, 200, bundle(name, version));
      }
      if (request.method === "PATCH" && action) {
        // Update Secret (properties only): used to disable one version.
        const version = versions?.find((candidate) => candidate.id === action);
        if (!version) return error(response, 404, "SecretNotFound", `A secret with (name/id) ${name}/${action} was not found in this key vault.`);
        const parsed = JSON.parse(body || "{}") as { attributes?: { enabled?: boolean } };
        if (parsed.attributes?.enabled !== undefined) version.enabled = parsed.attributes.enabled;
        const { value: _value, ...withoutValue } = bundle(name, version);
        return send(response, 200, withoutValue);
      }
      if (request.method === "DELETE") {
        if (!versions) return error(response, 404, "SecretNotFound", `A secret with (name/id) ${name} was not found in this key vault.`);
        secrets.delete(name);
        deleted.set(name, { versions, deletedDate: now });
        return send(response, 200, deletedBundle(name));
      }
    }
    if (collection === "deletedsecrets" && name) {
      if (!deleted.has(name)) return error(response, 404, "SecretNotFound", `Deleted Secret not found: ${name}`);
      if (request.method === "GET" && !action) return send(response, 200, deletedBundle(name));
      if (request.method === "POST" && action === "recover") {
        const { versions } = deleted.get(name)!;
        deleted.delete(name);
        secrets.set(name, versions);
        return send(response, 200, bundle(name, versions.at(-1)!));
      }
    }
    return error(response, 400, "BadParameter", `Unsupported: ${request.method} ${url.pathname}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `https://localhost:${(server.address() as AddressInfo).port}`;
  return {
    url: baseUrl,
    ca: cert,
    token,
    tenantId,
    requests,
    versionsOf: (name: string) => secrets.get(name)?.map((version) => version.id) ?? [],
    isSoftDeleted: (name: string) => deleted.has(name),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
