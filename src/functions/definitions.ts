import { version } from "../../package.json";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { type Services, services } from "../lib/services";
import { connectionFunctions } from "./connection";
import { connectionActionFunctions } from "./connection-actions";
import { crmDataFunctions } from "./crm-data";
import { healthFunctions } from "./health";
import { openApiFunctions } from "./openapi";
import { setupPageFunctions } from "./setup-page";
import { erpRecordFunctions } from "./erp-records";
import { syncJobFunctions } from "./sync-jobs";
import { syncLogFunctions } from "./sync-log";
import { syncMappingFunctions } from "./sync-mappings";
import { syncRecordFunctions } from "./sync-records";
import { syncSetupFunctions } from "./sync-setup";
import { salesOrderFunctions } from "./sales-orders";

/**
 * Every function of the app over the given services: each handler gets its use cases from here, the
 * definition that registers it, never from a process-wide lookup. Tests and the local host pass their own.
 */
export function defineFunctions(use: () => Services): FunctionDefinition[] {
  const all: FunctionDefinition[] = [
    ...healthFunctions(use),
    ...connectionFunctions(use),
    ...connectionActionFunctions(use),
    ...crmDataFunctions(use),
    ...syncSetupFunctions(use),
    ...syncMappingFunctions(use),
    ...syncJobFunctions(use),
    ...syncLogFunctions(use),
    ...syncRecordFunctions(use),
    ...erpRecordFunctions(use),
    ...salesOrderFunctions(use),
    ...setupPageFunctions,
    ...openApiFunctions(() => all, version),
  ];
  return all;
}

/** What index.ts registers with the Functions runtime: the process's services, built from settings on first use. */
export const functionDefinitions = defineFunctions(services);
