import { setupMessages } from "./messages";

export type ServerAddressResult = { ok: true; serverAddress: string; changed: boolean } | { ok: false; message: string };

const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The Sales URL as the ERP stores it: scheme + host (+ port), nothing else.
 * A value without a scheme is read as https. Only https is accepted.
 */
export function normalizeServerAddress(entered: string): ServerAddressResult {
  const trimmed = entered.trim();
  if (trimmed.length === 0) return { ok: false, message: setupMessages.invalidUrl };
  const url = parseUrl(hasScheme.test(trimmed) ? trimmed : `https://${trimmed}`);
  if (!url || !url.hostname) return { ok: false, message: setupMessages.invalidUrl };
  const scheme = url.protocol.replace(/:$/, "");
  if (scheme === "http") return { ok: false, message: setupMessages.httpsOnly };
  if (scheme !== "https") return { ok: false, message: setupMessages.invalidScheme(scheme) };
  if (url.username || url.password) return { ok: false, message: setupMessages.urlWithCredentials };
  const serverAddress = `https://${url.host}`;
  const changed = serverAddress.toLowerCase() !== trimmed.replace(/\/+$/, "").toLowerCase();
  return { ok: true, serverAddress, changed };
}

function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}
