import { randomUUID } from "node:crypto";
import { InvocationContext, type LogLevel } from "@azure/functions";

/** The context a local invocation gets: its name, an id, and its log lines prefixed as the Functions host does. */
export function invocationContext(functionName: string, log: (line: string) => void): InvocationContext {
  return new InvocationContext({
    functionName,
    invocationId: randomUUID(),
    logHandler: (level: LogLevel, ...args: unknown[]) => log(`[${functionName}] ${level}: ${args.map(String).join(" ")}`),
  });
}
