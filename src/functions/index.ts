import { app } from "@azure/functions";
import { loadConfig } from "../lib/config";
import { shutDownServices } from "../lib/services";
import { functionDefinitions } from "./definitions";

// The Functions runtime loads this file (package.json "main"); it registers the one list of definitions.
app.setup({ enableHttpStream: false });

// Settings are checked when the app starts, not on the first request: a bad one is logged with its rule
// (and /api/health answers 503 naming it) instead of surfacing as 500s and poison messages later.
app.hook.appStart(() => {
  try {
    loadConfig();
  } catch (error) {
    // The start hook has no logger; the host collects the worker's stderr into the app's logs.
    console.error(`Invalid settings: ${error instanceof Error ? error.message : String(error)}`);
  }
});

// The worker is shutting down (scale-in, deployment): running synchronizations stop at once rather than be cut
// mid-write; their leases expire and the next run continues from the watermark.
app.hook.appTerminate(() => shutDownServices("The Functions host is shutting down."));

for (const definition of functionDefinitions) {
  if (definition.trigger === "http") {
    app.http(definition.name, {
      route: definition.route,
      methods: definition.methods,
      authLevel: definition.authLevel,
      handler: definition.handler,
    });
  } else if (definition.trigger === "timer") {
    app.timer(definition.name, {
      schedule: `%${definition.scheduleSetting}%`,
      handler: definition.handler,
    });
  } else {
    app.storageQueue(definition.name, {
      queueName: definition.queueName,
      connection: "AzureWebJobsStorage",
      handler: definition.handler,
    });
  }
}

// Exported so that the built bundle can be served by the local host and checked by tests.
export { functionDefinitions };
