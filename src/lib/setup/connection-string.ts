import { type AuthenticationType, parseAuthenticationType } from "../model/authentication-type";

/**
 * XRM tooling connection strings (CrmServiceClient): `Key=Value;` pairs, keys case-insensitive and
 * spaces inside keys ignored, values quoted with ' or " when they contain `;`, a quote inside doubled.
 * https://learn.microsoft.com/power-apps/developer/data-platform/xrm-tooling/use-connection-strings-xrm-tooling-connect
 */
export type ConnectionStringKey =
  | "url"
  | "userName"
  | "password"
  | "domain"
  | "authType"
  | "clientId"
  | "redirectUri"
  | "clientSecret"
  | "thumbprint"
  | "homeRealmUri"
  | "loginPrompt"
  | "tenantId"
  | "proxyVersion";

const aliases: Record<string, ConnectionStringKey> = {
  serviceuri: "url",
  url: "url",
  server: "url",
  username: "userName",
  userid: "userName",
  password: "password",
  domain: "domain",
  authtype: "authType",
  authenticationtype: "authType",
  clientid: "clientId",
  appid: "clientId",
  applicationid: "clientId",
  redirecturi: "redirectUri",
  replyurl: "redirectUri",
  clientsecret: "clientSecret",
  secret: "clientSecret",
  thumbprint: "thumbprint",
  certthumbprint: "thumbprint",
  certificatethumbprint: "thumbprint",
  homerealmuri: "homeRealmUri",
  loginprompt: "loginPrompt",
  tenantid: "tenantId",
  proxyversion: "proxyVersion",
};

/** Valid XRM tooling keys that say nothing this service uses; accepted and dropped. */
const ignoredKeys = new Set(["tokencachestorepath", "requirenewinstance", "skipdiscovery", "storename", "certificatestorename", "timeout"]);

export const passwordPlaceholder = "{PASSWORD}";
export const clientSecretPlaceholder = "{CLIENTSECRET}";

export type ParsedConnectionString = Partial<Record<ConnectionStringKey, string>> & {
  authTypeValue?: AuthenticationType;
};

export class ConnectionStringError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConnectionStringError";
  }
}

export function parseConnectionString(text: string): ParsedConnectionString {
  const result: ParsedConnectionString = {};
  const seen = new Map<ConnectionStringKey, string>();
  for (const { key, value, pair } of splitPairs(text)) {
    const folded = key.replace(/\s+/g, "").toLowerCase();
    if (ignoredKeys.has(folded)) continue;
    // Own keys only ("__proto__" or "constructor" are no keys). An unknown key is not quoted back: with an
    // unquoted ";" in a secret, what looks like a key is part of the secret.
    const canonical = Object.hasOwn(aliases, folded) ? aliases[folded] : undefined;
    if (!canonical)
      throw new ConnectionStringError(`The key of pair ${pair} is not a connection string key this service knows (quote values that contain ";").`);
    const earlier = seen.get(canonical);
    if (earlier !== undefined) throw new ConnectionStringError(`Pair ${pair} repeats the key ${canonicalName(canonical)}.`);
    seen.set(canonical, key);
    result[canonical] = value;
  }
  if (result.authType !== undefined) {
    const type = parseAuthenticationType(result.authType);
    if (!type) throw new ConnectionStringError("AuthType is not one of Office365, OAuth, ClientSecret, Certificate, AD, IFD.");
    result.authTypeValue = type;
  }
  return result;
}

function canonicalName(key: ConnectionStringKey): string {
  return key.charAt(0).toUpperCase() + key.slice(1);
}

function* splitPairs(text: string): Generator<{ key: string; value: string; pair: number }> {
  let position = 0;
  let pair = 0;
  while (position < text.length) {
    pair++;
    const separator = text.indexOf("=", position);
    const nextSemicolon = text.indexOf(";", position);
    if (separator < 0 || (nextSemicolon >= 0 && nextSemicolon < separator)) {
      const stray = text.slice(position, nextSemicolon < 0 ? text.length : nextSemicolon).trim();
      if (stray.length > 0) throw new ConnectionStringError(`Pair ${pair} has no "=" and value.`);
      position = nextSemicolon < 0 ? text.length : nextSemicolon + 1;
      continue;
    }
    const key = text.slice(position, separator).trim();
    if (key.length === 0) throw new ConnectionStringError(`The key of pair ${pair} is missing before "=".`);
    let cursor = separator + 1;
    while (cursor < text.length && /\s/.test(text[cursor]!)) cursor++;
    const quote = text[cursor];
    let value: string;
    if (quote === "'" || quote === '"') {
      ({ value, cursor } = readQuoted(text, cursor + 1, quote, pair));
      while (cursor < text.length && /\s/.test(text[cursor]!)) cursor++;
      if (cursor < text.length && text[cursor] !== ";") {
        throw new ConnectionStringError(`The value of pair ${pair} has text after its closing quote.`);
      }
    } else {
      const end = text.indexOf(";", cursor);
      value = text.slice(cursor, end < 0 ? text.length : end).trim();
      cursor = end < 0 ? text.length : end;
    }
    yield { key, value, pair };
    position = cursor + 1;
  }
}

function readQuoted(text: string, start: number, quote: string, pair: number): { value: string; cursor: number } {
  let value = "";
  let cursor = start;
  while (cursor < text.length) {
    const char = text[cursor]!;
    if (char === quote) {
      if (text[cursor + 1] === quote) {
        value += quote;
        cursor += 2;
        continue;
      }
      return { value, cursor: cursor + 1 };
    }
    value += char;
    cursor++;
  }
  throw new ConnectionStringError(`The value of pair ${pair} has no closing quote.`);
}

/** The fields a connection string is built from; secrets are never among them. */
export interface ConnectionStringFields {
  serverAddress: string;
  authenticationType: AuthenticationType;
  userName?: string;
  domain?: string;
  clientId?: string;
  redirectUri?: string;
  homeRealmUri?: string;
  thumbprint?: string;
  tenantId?: string;
  proxyVersion: number;
}

/** Builds the ERP's connection string; secrets appear only as {PASSWORD} / {CLIENTSECRET} placeholders. */
export function buildConnectionString(fields: ConnectionStringFields): string {
  const pairs: [string, string | undefined][] = [["Url", fields.serverAddress]];
  switch (fields.authenticationType) {
    case "Office365":
    case "AD":
    case "IFD":
    case "OAuth":
      pairs.push(["UserName", fields.userName], ["Password", passwordPlaceholder]);
      break;
    case "ClientSecret":
      pairs.push(["ClientId", fields.clientId], ["ClientSecret", clientSecretPlaceholder]);
      break;
    case "Certificate":
      pairs.push(["ClientId", fields.clientId], ["Thumbprint", fields.thumbprint]);
      break;
  }
  pairs.push(["ProxyVersion", String(fields.proxyVersion)], ["AuthType", fields.authenticationType]);
  switch (fields.authenticationType) {
    case "AD":
      pairs.push(["Domain", fields.domain]);
      break;
    case "IFD":
      pairs.push(["Domain", fields.domain], ["HomeRealmUri", fields.homeRealmUri]);
      break;
    case "OAuth":
      pairs.push(["AppId", fields.clientId], ["RedirectUri", fields.redirectUri], ["LoginPrompt", "Auto"]);
      break;
    default:
      break;
  }
  pairs.push(["TenantId", fields.tenantId]);
  return pairs
    .filter((pair): pair is [string, string] => pair[1] !== undefined && pair[1] !== "")
    .map(([key, value]) => `${key}=${quoteIfNeeded(value)};`)
    .join(" ");
}

function quoteIfNeeded(value: string): string {
  if (!/[;'"]|^\s|\s$/.test(value)) return value;
  return `'${value.replace(/'/g, "''")}'`;
}
