import { version } from "../../package.json";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { connectionFunctions } from "./connection";
import { connectionActionFunctions } from "./connection-actions";
import { crmDataFunctions } from "./crm-data";
import { healthFunctions } from "./health";
import { openApiFunctions } from "./openapi";
import { setupPageFunctions } from "./setup-page";
import { erpRecordFunctions } from "./erp-records";
import { syncFunctions } from "./sync";
import { syncSetupFunctions } from "./sync-setup";
import { salesOrderFunctions } from "./sales-orders";

/** Every function of the app: registered by index.ts, served by the local host, read by tests and docs. */
export const functionDefinitions: FunctionDefinition[] = [
  ...healthFunctions,
  ...connectionFunctions,
  ...connectionActionFunctions,
  ...crmDataFunctions,
  ...syncSetupFunctions,
  ...syncFunctions,
  ...erpRecordFunctions,
  ...salesOrderFunctions,
  ...setupPageFunctions,
  ...openApiFunctions(() => functionDefinitions, version),
];
