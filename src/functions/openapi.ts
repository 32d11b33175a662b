import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { buildOpenApiDocument } from "../lib/http/openapi";
import { json, respond } from "../lib/http/respond";

let document: unknown;

/** The API description, built once per process from the same definitions the runtime registers. */
export function openApiFunctions(all: () => FunctionDefinition[], version: string): FunctionDefinition[] {
  const handler = async (_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    respond(context, async () => json(200, (document ??= buildOpenApiDocument(all(), version))));
  return [
    {
      name: "openapi",
      trigger: "http",
      route: "openapi.json",
      methods: ["GET"],
      authLevel: "anonymous",
      summary: "This API as an OpenAPI 3.1 document",
      handler,
      contract: { responses: { 200: "The OpenAPI document" } },
    },
  ];
}
