import { app } from "@azure/functions";
import { functionDefinitions } from "./definitions";

// The Functions runtime loads this file (package.json "main"); it registers the one list of definitions.
app.setup({ enableHttpStream: false });

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
