import { DataverseClient, type DataverseClientInit } from "../../src/lib/dataverse/dataverse-client";
import { HttpsTransport } from "../../src/lib/dataverse/https-transport";
import { OutboundGuard } from "../../src/lib/dataverse/outbound-guard";
import { type SignInCredentials, TokenProvider } from "../../src/lib/dataverse/token-provider";
import { demoPassword } from "../simulator/fixture";
import type { DataverseSimulator } from "../simulator/simulator";

/** A transport that trusts the simulator's certificate and allows its host, as the demo host does. */
export function simulatorTransport(simulator: DataverseSimulator): HttpsTransport {
  return new HttpsTransport({ ca: simulator.ca, guard: new OutboundGuard([simulator.host]) });
}

export function simulatorTokens(simulator: DataverseSimulator, transport = simulatorTransport(simulator)): TokenProvider {
  return new TokenProvider({
    authorityHost: simulator.authorityHost,
    transport,
    discoverTenant: (serverAddress) => DataverseClient.discoverTenant(transport, serverAddress),
  });
}

export const integrationUser = (simulator: DataverseSimulator): SignInCredentials => ({
  authenticationType: "Office365",
  serverAddress: simulator.url,
  userName: "integration@demo.example",
  password: demoPassword,
});

/** A client signed in as the demo integration user (real MSAL against the simulator's token endpoint). */
export function simulatorClient(
  simulator: DataverseSimulator,
  options: Partial<DataverseClientInit> & { credentials?: SignInCredentials; company?: string } = {},
): DataverseClient {
  const transport = options.transport ?? simulatorTransport(simulator);
  // Sign-in always goes over HTTPS to the simulator's Entra ID, even when Dataverse calls go through a fake.
  const tokens = simulatorTokens(simulator, transport instanceof HttpsTransport ? transport : simulatorTransport(simulator));
  const credentials = options.credentials ?? integrationUser(simulator);
  return new DataverseClient({
    serverAddress: simulator.url,
    transport,
    getToken: () => tokens.token(options.company ?? "test", credentials),
    retry: { baseDelayMs: 20, ...options.retry },
    ...options,
  });
}
