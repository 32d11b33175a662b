import * as z from "zod";
import { createDocument } from "zod-openapi";
import { companySlug } from "../model/company";
import type { FunctionDefinition, HttpFunctionDefinition } from "./function-definition";

const problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details" });

const pathParameter: Record<string, z.ZodType> = {
  company: z.string().regex(companySlug).meta({ description: "The ERP company: a lowercase slug" }),
};

/**
 * The OpenAPI 3.1 document of every HTTP function, built from the definitions and their zod schemas. Operation
 * ids are unique: the function's name, with the method when it serves several, and "-all" for the variant of
 * a route without its optional segment.
 */
export function buildOpenApiDocument(definitions: FunctionDefinition[], version: string): ReturnType<typeof createDocument> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const definition of definitions.filter((candidate): candidate is HttpFunctionDefinition => candidate.trigger === "http")) {
    const contract = definition.contract ?? { responses: { 200: "OK" } };
    const variants = openApiPaths(definition.route);
    for (const [variant, { path, names }] of variants.entries()) {
      for (const method of definition.methods) {
        const responses: Record<string, unknown> = {};
        for (const [status, response] of Object.entries(contract.responses)) {
          const { description, schema } = typeof response === "string" ? { description: response, schema: undefined } : response;
          responses[status] =
            Number(status) >= 400
              ? { description, content: { "application/problem+json": { schema: problem } } }
              : {
                  description,
                  ...(contract.versioned && { headers: z.object({ etag: z.string().meta({ description: "The new version, for If-Match" }) }) }),
                  ...(Number(status) !== 204 && { content: { "application/json": { schema: schema ?? z.unknown() } } }),
                };
        }
        paths[path] ??= {};
        const operationId = [definition.name, definition.methods.length > 1 && method.toLowerCase(), variant < variants.length - 1 && "all"]
          .filter(Boolean)
          .join("-");
        paths[path][method.toLowerCase()] = {
          operationId,
          summary: definition.summary,
          ...(definition.authLevel !== "anonymous" && { security: [{ functionKey: [] }] }),
          requestParams: {
            ...(names.length > 0 && { path: z.object(Object.fromEntries(names.map((name) => [name, pathParameter[name] ?? z.string()]))) }),
            ...(contract.query && { query: contract.query }),
            ...(contract.versioned && {
              header: z.object({ "if-match": z.string().optional().meta({ description: "The ETag read; a stale one answers 412. * or none: no check" }) }),
            }),
          },
          ...(contract.body && { requestBody: { required: true, content: { "application/json": { schema: contract.body } } } }),
          responses,
        };
      }
    }
  }
  return createDocument({
    openapi: "3.1.0",
    info: {
      title: "Dynamics 365 Sales connector",
      version,
      description: "Connection setup and synchronization between an ERP company and Dynamics 365 Sales.",
    },
    components: { securitySchemes: { functionKey: { type: "apiKey", in: "header", name: "x-functions-key" } } },
    paths: paths as never,
  });
}

/**
 * OpenAPI paths of an Azure Functions route: parameters as {name}; path parameters are always required in
 * OpenAPI, so a route with an optional or catch-all segment gives a path with and one without it.
 */
export function openApiPaths(route: string): { path: string; names: string[] }[] {
  const segments = route.split("/");
  const full: string[] = [];
  const variants: { path: string; names: string[] }[] = [];
  const names: string[] = [];
  for (const segment of segments) {
    const parameter = /^\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]+)?(\?)?\}$/.exec(segment);
    if (parameter && (parameter[1] || parameter[3])) variants.push({ path: `/api/${full.join("/")}`, names: [...names] });
    if (parameter) names.push(parameter[2]!);
    full.push(parameter ? `{${parameter[2]}}` : segment);
  }
  return [...variants, { path: `/api/${full.join("/")}`, names }];
}
