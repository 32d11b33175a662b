import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import ipaddr from "ipaddr.js";

/**
 * The Sales URL is user input that this service calls with credentials, so outbound calls go only to
 * Dynamics 365 online hosts (including the sovereign clouds) or hosts an operator allowed
 * (DATAVERSE_ALLOWED_HOSTS); an online name that resolves to a private, loopback or link-local address is
 * refused as well. Checked before any connection is made.
 */
const onlineHost = /^[a-z0-9][a-z0-9-]*(\.api)?\.crm\d*\.(dynamics\.com|dynamics\.cn|microsoftdynamics\.us|appsplatform\.us)$/;

export class OutboundGuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboundGuardError";
  }
}

/**
 * Only public unicast addresses are called: every special-purpose range (private, loopback, link-local,
 * carrier-grade NAT, benchmarking 198.18/15, multicast, reserved, site-local fec0::/10, unique-local) and every
 * IPv6 form that embeds an IPv4 address (NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo, IPv4-compatible ::a.b.c.d)
 * is refused. ipaddr.js keeps the IANA special-purpose registries; an IPv4-mapped ::ffff:a.b.c.d (how
 * dual-stack resolvers return IPv4) is judged as the IPv4 address it maps.
 */
export function isPrivateAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true;
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === "ipv6" && /^::ffff:/i.test(address) && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address().range() !== "unicast";
  }
  return parsed.range() !== "unicast";
}

export type Lookup = typeof dnsLookup;

export class OutboundGuard {
  private readonly allowed: Set<string>;

  constructor(
    allowedHosts: string[],
    private readonly resolve: Lookup = dnsLookup,
  ) {
    this.allowed = new Set(allowedHosts.map((host) => host.toLowerCase()));
  }

  /** Explicitly allowed: the host, or host:port, is in DATAVERSE_ALLOWED_HOSTS. */
  isExplicitlyAllowed(url: URL): boolean {
    return this.allowed.has(url.hostname.toLowerCase()) || this.allowed.has(url.host.toLowerCase());
  }

  /** Throws OutboundGuardError unless the URL may be called. */
  check(target: string | URL): URL {
    const url = typeof target === "string" ? new URL(target) : target;
    if (url.protocol !== "https:") throw new OutboundGuardError(httpsOnly(url.protocol));
    if (this.isExplicitlyAllowed(url)) return url;
    if (!onlineHost.test(url.hostname.toLowerCase())) {
      throw new OutboundGuardError(
        `${url.host} is not a Dynamics 365 online host (*.crmN.dynamics.com and the sovereign clouds) and is not in DATAVERSE_ALLOWED_HOSTS, so it is ` +
          `not called.`,
      );
    }
    if (url.port && url.port !== "443") throw new OutboundGuardError(`Dynamics 365 online is reached on port 443; ${url.host} is refused.`);
    return url;
  }

  /** A dns.lookup for https agents that refuses private addresses of hosts that were not explicitly allowed. */
  lookupFor(url: URL): Lookup {
    const explicitlyAllowed = this.isExplicitlyAllowed(url);
    const resolve = this.resolve;
    return ((hostname: string, options: object, callback: (...args: unknown[]) => void) => {
      resolve(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
        if (error) return callback(error);
        const refused = explicitlyAllowed ? undefined : addresses.find((entry) => isPrivateAddress(entry.address));
        if (refused) {
          return callback(new OutboundGuardError(`${hostname} resolves to ${refused.address}, a private or local address, so it is not called.`));
        }
        if ((options as { all?: boolean }).all) return callback(null, addresses);
        const first = addresses[0];
        return first
          ? callback(null, first.address, first.family)
          : callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }));
      });
    }) as unknown as Lookup;
  }
}

/** Only https:// is ever called: the one wording, from the guard and from a transport without one. */
export function httpsOnly(protocol: string): string {
  return `Only https:// addresses are called; ${protocol}// is refused.`;
}
