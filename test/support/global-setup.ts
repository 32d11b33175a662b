import type { TestProject } from "vitest/node";
import { startAzurite } from "../../src/local/azurite";

declare module "vitest" {
  export interface ProvidedContext {
    storageConnectionStrings: string[];
  }
}

/** Test workers run at once; more than this many would share an account (see test-env.ts). */
export const storageAccountCount = 32;

/**
 * One Azurite (tables, queues, blobs; in memory, free ports) for the whole run, with one storage account per
 * test worker. Apps of different test files are different deployments: sharing one account, a host of one
 * file polled the sync queue and took another file's runs (its simulator unknown to it), and that file then
 * found nothing synchronized. Tests in one file isolate by company.
 */
export default async function setup(project: TestProject) {
  const accounts = Array.from({ length: storageAccountCount }, (_, index) => `testworker${index + 1}`);
  const azurite = await startAzurite({ accounts });
  project.provide(
    "storageConnectionStrings",
    accounts.map((account) => azurite.connectionStringFor(account)),
  );
  return () => azurite.stop();
}
