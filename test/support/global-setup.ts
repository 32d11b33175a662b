import type { TestProject } from "vitest/node";
import { startAzurite } from "../../src/local/azurite";

declare module "vitest" {
  export interface ProvidedContext {
    storageConnectionString: string;
  }
}

/** One Azurite (tables, queues, blobs; in memory, free ports) for the whole run; tests isolate by company. */
export default async function setup(project: TestProject) {
  const azurite = await startAzurite();
  project.provide("storageConnectionString", azurite.connectionString);
  return () => azurite.stop();
}
