import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, preconditions, readJson, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { connectionSetupInput } from "../lib/setup/setup-input";
import { connectionViewSchema } from "../lib/http/response-schemas";

const route = "companies/{company}/connection";

export function connectionFunctions(services: () => Services): FunctionDefinition[] {
  async function getConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const view = await services().setup.read(request.params.company ?? "");
      return json(200, view, { etag: view.etag });
    });
  }

  async function putConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const company = request.params.company ?? "";
      const { view, created } = await services().setup.save(company, await readJson(request), preconditions(request));
      const headers: Record<string, string> = { etag: view.etag };
      if (created) headers.location = `/api/companies/${company}/connection`;
      return json(created ? 201 : 200, view, headers);
    });
  }

  async function deleteConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      await services().setup.remove(request.params.company ?? "", preconditions(request));
      return { status: 204 };
    });
  }

  async function listCompanies(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => json(200, { value: await services().setups.list() }));
  }

  return [
    {
      name: "companies-list",
      trigger: "http",
      route: "companies",
      methods: ["GET"],
      authLevel: "function",
      summary: "Companies with a connection setup",
      handler: listCompanies,
      contract: { responses: { 200: "{ value: [{ company, serverAddress, isEnabled }] }" } },
    },
    {
      name: "connection-get",
      trigger: "http",
      route,
      methods: ["GET"],
      authLevel: "function",
      summary: "Read the connection setup (no secret values)",
      handler: getConnection,
      contract: { versioned: true, responses: { 200: { description: "The connection view, with an ETag", schema: connectionViewSchema }, 404: "No setup" } },
    },
    {
      name: "connection-put",
      trigger: "http",
      route,
      methods: ["PUT"],
      authLevel: "function",
      summary: "Create or replace the connection setup",
      handler: putConnection,
      contract: {
        versioned: true,
        body: connectionSetupInput,
        responses: {
          200: { description: "Replaced", schema: connectionViewSchema },
          201: { description: "Created", schema: connectionViewSchema },
          400: "Invalid input: the field and the rule",
          409: "The connection is enabled",
          412: "Stale If-Match",
        },
      },
    },
    {
      name: "connection-delete",
      trigger: "http",
      route,
      methods: ["DELETE"],
      authLevel: "function",
      summary: "Remove the setup, its secrets, mappings and jobs",
      handler: deleteConnection,
      contract: { responses: { 204: "Removed", 404: "No setup", 409: "The connection is enabled", 412: "Stale If-Match" } },
    },
  ];
}
