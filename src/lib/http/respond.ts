import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { Refusal } from "../errors";
import { Problem, badRequest, problemOf, problemResponse } from "./problem";

/**
 * Runs a handler body: a Problem becomes its problem+json response; anything else is logged by name
 * and message only (never request bodies, which may hold secrets) and answered 500.
 */
export async function respond(context: InvocationContext, body: () => Promise<HttpResponseInit>): Promise<HttpResponseInit> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof Problem) return problemResponse(error);
    if (error instanceof Refusal) return problemResponse(problemOf(error));
    const described = error instanceof Error ? `${error.name}: ${error.message}` : "unknown error";
    context.error(`Unhandled error: ${described}`);
    return problemResponse(new Problem(500, "Internal error.", "The request could not be completed. The error was logged."));
  }
}

/** The JSON body, or a 400 naming the body when it is not JSON. An empty body reads as `{}`. */
export async function readJson(request: HttpRequest): Promise<unknown> {
  const text = await request.text();
  if (text.trim().length === 0) return {};
  // A JSON body says so: a form or text/plain post (what any web page can send) is not taken as JSON.
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json" && !type.endsWith("+json")) {
    throw new Problem(415, "Unsupported media type.", "Send the body as application/json.", [{ path: "content-type", message: "must be application/json" }]);
  }
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest([{ path: "body", message: "must be valid JSON" }]);
  }
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { "content-type": "application/json; charset=utf-8", ...headers } };
}

/** If-Match / If-None-Match as the use cases take them. */
export function preconditions(request: HttpRequest): { ifMatch?: string; ifNoneMatch?: string } {
  const ifMatch = request.headers.get("if-match") ?? undefined;
  const ifNoneMatch = request.headers.get("if-none-match") ?? undefined;
  return { ...(ifMatch !== undefined && { ifMatch }), ...(ifNoneMatch !== undefined && { ifNoneMatch }) };
}
