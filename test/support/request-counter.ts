import type { TableServiceClientOptions } from "@azure/data-tables";

type AdditionalPolicy = NonNullable<TableServiceClientOptions["additionalPolicies"]>[number];

/** An Azure SDK pipeline policy that records every storage request, to count round trips. */
export function requestCounter() {
  const requests: { method: string; url: string }[] = [];
  const policy: AdditionalPolicy = {
    position: "perCall",
    policy: {
      name: "requestCounter",
      sendRequest: (request, next) => {
        requests.push({ method: request.method, url: request.url });
        return next(request);
      },
    },
  };
  return {
    requests,
    policy,
    reset: () => requests.splice(0, requests.length),
    /** Requests that touch the named table (its rows or its creation). */
    to: (table: string) => requests.filter((request) => new URL(request.url).pathname.includes(`/${table}`)),
  };
}
