/** OData $batch bodies (multipart/mixed with application/http parts), as Dataverse reads and writes them. */
export interface Part {
  headers: Record<string, string>;
  body: string;
}

export interface InnerRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  contentId?: string;
}

export interface InnerResponse {
  status: number;
  headers: Record<string, string>;
  body?: string;
  contentId?: string;
}

export function boundaryOf(contentType: string | undefined): string | undefined {
  return /boundary=("?)([^";]+)\1/i.exec(contentType ?? "")?.[2];
}

export function splitParts(body: string, boundary: string): Part[] {
  const normalized = body.replace(/\r\n/g, "\n");
  const sections = normalized.split(`--${boundary}`);
  const parts: Part[] = [];
  for (const section of sections.slice(1)) {
    if (section.startsWith("--")) break;
    const text = section.replace(/^\n/, "");
    const split = text.indexOf("\n\n");
    const head = split < 0 ? text : text.slice(0, split);
    const rest = split < 0 ? "" : text.slice(split + 2);
    parts.push({ headers: parseHeaders(head), body: rest.replace(/\n$/, "") });
  }
  return parts;
}

export function parseInnerRequest(part: Part): InnerRequest {
  const text = part.body;
  const split = text.indexOf("\n\n");
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? "" : text.slice(split + 2).trim();
  const [requestLine = "", ...headerLines] = head.split("\n");
  const [method = "", url = ""] = requestLine.trim().split(/\s+/);
  return {
    method: method.toUpperCase(),
    url,
    headers: parseHeaders(headerLines.join("\n")),
    body,
    ...(part.headers["content-id"] !== undefined && { contentId: part.headers["content-id"] }),
  };
}

function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

const reasons: Record<number, string> = {
  200: "OK",
  201: "Created",
  204: "No Content",
  400: "Bad Request",
  404: "Not Found",
  412: "Precondition Failed",
  429: "Too Many Requests",
  500: "Internal Server Error",
};

export function formatResponses(items: (InnerResponse | { changeSet: InnerResponse[] })[], boundary: string): string {
  const lines: string[] = [];
  for (const item of items) {
    lines.push(`--${boundary}`);
    if ("changeSet" in item) {
      const inner = `changesetresponse_${boundary.slice(-12)}${lines.length}`;
      lines.push(`Content-Type: multipart/mixed; boundary=${inner}`, "");
      for (const response of item.changeSet) {
        lines.push(`--${inner}`, ...formatOne(response));
      }
      lines.push(`--${inner}--`);
    } else {
      lines.push(...formatOne(item));
    }
  }
  lines.push(`--${boundary}--`, "");
  return lines.join("\r\n");
}

function formatOne(response: InnerResponse): string[] {
  return [
    "Content-Type: application/http",
    "Content-Transfer-Encoding: binary",
    ...(response.contentId !== undefined ? [`Content-ID: ${response.contentId}`] : []),
    "",
    `HTTP/1.1 ${response.status} ${reasons[response.status] ?? ""}`.trim(),
    ...Object.entries(response.headers).map(([name, value]) => `${name}: ${value}`),
    "",
    response.body ?? "",
  ];
}
