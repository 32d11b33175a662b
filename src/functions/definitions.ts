import type { FunctionDefinition } from "../lib/http/function-definition";
import { connectionFunctions } from "./connection";
import { healthFunctions } from "./health";

/** Every function of the app: registered by index.ts, served by the local host, read by tests and docs. */
export const functionDefinitions: FunctionDefinition[] = [...healthFunctions, ...connectionFunctions];
