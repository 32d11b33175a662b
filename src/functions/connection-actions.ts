import type { HttpRequest, HttpResponseInit, InvocationContext } from "@azure/functions";
import { settingsInput } from "../lib/connection/advanced-settings";
import { disableInput, enableInput } from "../lib/connection/connection-lifecycle";
import { identifyCaller } from "../lib/http/caller-principal";
import type { FunctionDefinition } from "../lib/http/function-definition";
import { json, preconditions, readJson, respond } from "../lib/http/respond";
import type { Services } from "../lib/services";
import { connectionViewSchema } from "../lib/http/response-schemas";

const base = "companies/{company}/connection";

export function connectionActionFunctions(services: () => Services): FunctionDefinition[] {
  async function testConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () =>
      json(200, await services().lifecycle.test(request.params.company ?? "", await identifyCaller(request, services().callerTokens))),
    );
  }

  async function enableConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const view = await services().lifecycle.enable(
        request.params.company ?? "",
        await readJson(request),
        await identifyCaller(request, services().callerTokens),
      );
      return json(200, view, { etag: view.etag });
    });
  }

  async function disableConnection(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const view = await services().lifecycle.disable(request.params.company ?? "", await readJson(request));
      return json(200, view, { etag: view.etag });
    });
  }

  async function changeSettings(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const view = await services().settings.change(request.params.company ?? "", await readJson(request), preconditions(request));
      return json(200, view, { etag: view.etag });
    });
  }

  async function resetErpWebUrl(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      const view = await services().settings.resetErpWebUrl(request.params.company ?? "", preconditions(request));
      return json(200, view, { etag: view.etag });
    });
  }

  async function connectionStatus(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
    return respond(context, async () => {
      return json(200, await services().connectionStatus(request.params.company ?? ""));
    });
  }

  return [
    {
      name: "connection-test",
      trigger: "http",
      route: `${base}/test`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Test the saved connection settings",
      handler: testConnection,
      contract: { responses: { 200: "{ ok, message, details?, error?, warnings, prompts }", 404: "No setup" } },
    },
    {
      name: "connection-enable",
      trigger: "http",
      route: `${base}/enable`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Enable the connection (the test must pass)",
      handler: enableConnection,
      contract: {
        body: enableInput,
        responses: {
          200: { description: "The view with prompts", schema: connectionViewSchema },
          404: "No setup",
          422: "The test failed; the connection stays disabled",
        },
      },
    },
    {
      name: "connection-disable",
      trigger: "http",
      route: `${base}/disable`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Disable the connection; sync jobs go On Hold",
      handler: disableConnection,
      contract: { body: disableInput, responses: { 200: { description: "The view", schema: connectionViewSchema }, 404: "No setup" } },
    },
    {
      name: "connection-settings",
      trigger: "http",
      route: `${base}/settings`,
      methods: ["PATCH"],
      authLevel: "function",
      summary: "Change the advanced settings",
      handler: changeSettings,
      contract: {
        body: settingsInput,
        responses: {
          200: { description: "The view with notices", schema: connectionViewSchema },
          400: "Invalid input",
          404: "No setup",
          409: "Not enabled, no solution, or Submitted sales orders",
          412: "Stale If-Match",
        },
      },
    },
    {
      name: "connection-reset-erp-web-url",
      trigger: "http",
      route: `${base}/settings/reset-erp-web-url`,
      methods: ["POST"],
      authLevel: "function",
      summary: "Restore the default ERP web client URL",
      handler: resetErpWebUrl,
      contract: { responses: { 200: { description: "The view with a message", schema: connectionViewSchema }, 404: "No setup" } },
    },
    {
      name: "connection-status",
      trigger: "http",
      route: `${base}/status`,
      methods: ["GET"],
      authLevel: "function",
      summary: "Connection status: last test, version, jobs, last sync",
      handler: connectionStatus,
      contract: { responses: { 200: "Enabled, last test, version, solution, jobs, last sync, secret store", 404: "No setup" } },
    },
  ];
}
