import type { OrderKey, Row } from "./odata-query";

/**
 * Dataverse's paging cookie (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results):
 * `$skiptoken=<cookie pagenumber="2" pagingcookie="..." istracking="False" />`, where the inner cookie names
 * the first and last row of the page by their sort values and primary key. The next page starts after the
 * last row's position, not at an offset, so rows inserted or deleted between pages shift nothing.
 */
export interface PagePosition {
  pageNumber: number;
  /** The last row of the previous page: its sort values and primary key. */
  last: Row;
}

const nullMarker = "\u0000null";

export function encodeSkipToken(pageNumber: number, keys: OrderKey[], primaryKey: string, first: Row, last: Row): string {
  const element = (name: string) => {
    const value = (row: Row) => (row[name] === null || row[name] === undefined ? nullMarker : valueText(row[name]));
    const braced = (text: string) => (name === primaryKey ? `{${text.toUpperCase()}}` : text);
    return `<${name} last="${xmlEscape(braced(value(last)))}" first="${xmlEscape(braced(value(first)))}" />`;
  };
  const inner = `<cookie page="${pageNumber - 1}">${[...keys.map((key) => key.field), primaryKey].map(element).join("")}</cookie>`;
  // Encoded once, lowercase hex, as Dataverse writes it; the nextLink URL-encodes the whole token once more.
  const encoded = encodeURIComponent(inner).replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
  return `<cookie pagenumber="${pageNumber}" pagingcookie="${encoded}" istracking="False" />`;
}

/** The position a skiptoken names, or undefined when it is not a cookie this organization issued. */
export function decodeSkipToken(
  token: string,
  keys: OrderKey[],
  primaryKey: string,
  typeOf: (field: string) => "number" | "boolean" | "text",
): PagePosition | undefined {
  const outer = /^<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="(?:True|False)" \/>$/.exec(token.trim());
  if (!outer) return undefined;
  let inner: string;
  try {
    inner = decodeURIComponent(outer[2]!);
  } catch {
    return undefined;
  }
  const last: Row = {};
  for (const field of [...keys.map((key) => key.field), primaryKey]) {
    const match = new RegExp(`<${field} last="([^"]*)"`).exec(inner);
    if (!match) return undefined;
    const text = xmlUnescape(match[1]!);
    if (text === nullMarker) last[field] = null;
    else if (field === primaryKey) last[field] = text.replace(/^\{|\}$/g, "").toLowerCase();
    else {
      const type = typeOf(field);
      last[field] = type === "number" ? Number(text) : type === "boolean" ? text === "true" : text;
    }
  }
  return { pageNumber: Number(outer[1]), last };
}

function valueText(value: unknown): string {
  return value instanceof Date ? value.toISOString() : String(value);
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function xmlUnescape(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}
