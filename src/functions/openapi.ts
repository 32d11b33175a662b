import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { buildOpenApiDocument } from "../lib/http/openapi";
import { json, respond } from "../lib/http/respond";

let document: ReturnType<typeof buildOpenApiDocument> | undefined;

/**
 * The API description, built once per process from the same definitions the runtime registers; its
 * `servers` entry is the origin the document was read from (the app's own host name, or localhost).
 */
export function openApiFunctions(all: () => FunctionDefinition[], version: string): FunctionDefinition[] {
  const handler = async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> =>
    respond(context, async () => {
      document ??= buildOpenApiDocument(all(), version);
      return json(200, { ...document, servers: [{ url: new URL(request.url).origin, description: "This function app" }] });
    });
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
