// Counts a measured connector's storage round trips without keeping them.
import type { TableServiceClientOptions } from "@azure/data-tables";

/** A policy added to the Azure Tables clients' pipeline. */
export type StoragePolicy = NonNullable<TableServiceClientOptions["additionalPolicies"]>[number];

/**
 * An Azure SDK pipeline policy that counts storage requests and keeps nothing else: the benchmark reads the memory
 * of the process it runs in, so its instrument must not hold a record per request (test/support/request-counter.ts
 * keeps each request and each transaction's actions, for tests to inspect).
 */
export function operationCounter() {
  let count = 0;
  const policy: StoragePolicy = {
    position: "perCall",
    policy: {
      name: "operationCounter",
      sendRequest: (request, next) => {
        count += 1;
        return next(request);
      },
    },
  };
  return {
    policy,
    get count(): number {
      return count;
    },
    reset: (): void => {
      count = 0;
    },
  };
}
