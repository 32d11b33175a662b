import { stoppedBy } from "../cancellation";
import { Agent, request as httpsRequest } from "node:https";
import { OutboundGuard, OutboundGuardError, httpsOnly } from "./outbound-guard";

export interface TransportRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs?: number;
  /** Stops the request (a run's cancellation): it then fails with the signal's reason, and is not retried. */
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Why a request got no HTTP answer; each kind becomes its own user-facing reason. */
export type TransportFailure = "dns" | "tls" | "timeout" | "connection" | "outbound-guard";

export class TransportError extends Error {
  constructor(
    readonly kind: TransportFailure,
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "TransportError";
  }
}

export interface HttpsTransportInit {
  /** Extra certificate authority to trust (the local simulator's); public CAs are always trusted. */
  ca?: string;
  guard?: OutboundGuard;
  timeoutMs?: number;
  maxSockets?: number;
}

/**
 * HTTPS with keep-alive, the outbound guard applied to every request (before connecting and again at DNS
 * resolution), no redirects followed, and failures classified.
 */
export class HttpsTransport {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly init: HttpsTransportInit = {}) {}

  async send(request: TransportRequest): Promise<TransportResponse> {
    let url: URL;
    try {
      url = this.init.guard ? this.init.guard.check(request.url) : new URL(request.url);
    } catch (error) {
      if (error instanceof OutboundGuardError) throw new TransportError("outbound-guard", error.message);
      throw error;
    }
    if (url.protocol !== "https:") throw new TransportError("outbound-guard", httpsOnly(url.protocol));
    const timeoutMs = request.timeoutMs ?? this.init.timeoutMs ?? 30_000;
    const { signal } = request;
    if (signal?.aborted) throw stoppedBy(signal);
    return new Promise<TransportResponse>((resolve, reject) => {
      const options = { method: request.method, headers: request.headers, agent: this.agentFor(url), ...(signal && { signal }) };
      const outgoing = httpsRequest(url, options, (incoming) => {
        const chunks: Buffer[] = [];
        incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
        incoming.on("error", (error) => reject(signal?.aborted ? stoppedBy(signal) : classify(error, url)));
        incoming.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(incoming.headers))
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
          resolve({ status: incoming.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
        });
      });
      outgoing.setTimeout(timeoutMs, () =>
        outgoing.destroy(new TransportError("timeout", `${url.host} did not answer within ${Math.round(timeoutMs / 1000)} s.`)),
      );
      outgoing.on("error", (error) => reject(signal?.aborted ? stoppedBy(signal) : classify(error, url)));
      outgoing.end(request.body);
    });
  }

  close(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }

  private agentFor(url: URL): Agent {
    let agent = this.agents.get(url.host);
    if (!agent) {
      agent = new Agent({
        keepAlive: true,
        maxSockets: this.init.maxSockets ?? 64,
        ...(this.init.ca && { ca: this.init.ca }),
        ...(this.init.guard && { lookup: this.init.guard.lookupFor(url) }),
      });
      this.agents.set(url.host, agent);
    }
    return agent;
  }
}

function classify(error: unknown, url: URL): TransportError {
  if (error instanceof TransportError) return error;
  if (error instanceof OutboundGuardError) return new TransportError("outbound-guard", error.message);
  const code = (error as NodeJS.ErrnoException).code ?? "";
  const message = error instanceof Error ? error.message : String(error);
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return new TransportError("dns", `The name ${url.hostname} could not be resolved (${code}).`, code);
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|EPROTO/i.test(code) || /certificate|ssl|tls/i.test(message)) {
    return new TransportError("tls", `The TLS connection to ${url.host} failed: ${message}`, code);
  }
  if (code === "ETIMEDOUT") return new TransportError("timeout", `${url.host} did not answer in time (${code}).`, code);
  return new TransportError("connection", `The connection to ${url.host} failed: ${message}`, code);
}
