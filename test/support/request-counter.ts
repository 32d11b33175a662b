import type { TableServiceClientOptions } from "@azure/data-tables";

type AdditionalPolicy = NonNullable<TableServiceClientOptions["additionalPolicies"]>[number];

/** One action of an entity-group transaction as sent: its table, verb, row key, If-Match header; and the status it got. */
export interface SentAction {
  table: string;
  method: string;
  rowKey: string;
  ifMatch?: string;
  status: number;
}

/** An Azure SDK pipeline policy that records every storage request, to count round trips, and each transaction's actions. */
export function requestCounter() {
  const requests: { method: string; url: string }[] = [];
  const transactions: SentAction[][] = [];
  const policy: AdditionalPolicy = {
    position: "perCall",
    policy: {
      name: "requestCounter",
      sendRequest: async (request, next) => {
        requests.push({ method: request.method, url: request.url });
        const response = await next(request);
        if (request.url.endsWith("/$batch")) transactions.push(actionsOf(String(request.body), response.bodyAsText ?? ""));
        return response;
      },
    },
  };
  return {
    requests,
    transactions,
    policy,
    reset: () => {
      requests.splice(0, requests.length);
      transactions.splice(0, transactions.length);
    },
    /** Requests that touch the named table (its rows or its creation). */
    to: (table: string) => requests.filter((request) => new URL(request.url).pathname.includes(`/${table}`)),
  };
}

/**
 * The actions of a transaction's multipart body, each with the status its answer gave it (a refused transaction
 * answers one status, for the action that failed: the others get that status too, as none was applied).
 */
function actionsOf(body: string, answer: string): SentAction[] {
  const statuses = [...answer.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((match) => Number(match[1]));
  const parts = [...body.matchAll(/^(POST|PUT|MERGE|PATCH|DELETE) (\S+) HTTP\/1\.1\r\n((?:[^\r\n]+\r\n)*)(?:\r\n)+([^\r\n]*)/gm)];
  return parts.map(([, method, url, headers, json], index) => {
    const table = /\/([^/(]+)(?:\(|$)/.exec(new URL(url!).pathname)![1]!;
    const inUrl = /RowKey='((?:[^']|'')*)'/.exec(decodeURIComponent(url!))?.[1]?.replace(/''/g, "'");
    const rowKey = inUrl ?? String((JSON.parse(json || "{}") as { RowKey?: string }).RowKey);
    const ifMatch = /^If-Match: (.*)\r$/im.exec(headers!)?.[1];
    return {
      table,
      method: method!,
      rowKey,
      ...(ifMatch !== undefined && { ifMatch }),
      status: statuses.length === parts.length ? statuses[index]! : statuses[0]!,
    };
  });
}
