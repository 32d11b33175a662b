import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from "@azure/msal-node";
import type { HttpsTransport } from "./https-transport";

/**
 * MSAL's HTTP calls (authority metadata, token requests) through our transport, so that they use the
 * same TLS trust and failure classification as the Dataverse calls.
 */
export class MsalNetwork implements INetworkModule {
  constructor(private readonly transport: HttpsTransport) {}

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.send<T>("GET", url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>("POST", url, options);
  }

  private async send<T>(method: string, url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    const response = await this.transport.send({
      method,
      url,
      ...(options?.headers && { headers: options.headers }),
      ...(options?.body !== undefined && { body: options.body }),
      ...(timeout !== undefined && { timeoutMs: timeout }),
    });
    const text = response.body.toString("utf8");
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: "invalid_response", error_description: `The authority answered ${response.status} with a body that is not JSON.` };
    }
    return { status: response.status, headers: response.headers, body: body as T };
  }
}
