import { describe, expect, it } from "vitest";
import { isPrivateAddress } from "../../src/lib/dataverse/outbound-guard";

describe("addresses the outbound guard refuses (IANA special-purpose registries)", () => {
  it.each([
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "198.18.0.1", // benchmarking 198.18.0.0/15
    "198.19.255.255",
    "224.0.0.1", // multicast
    "255.255.255.255",
    "240.0.0.1",
    "::",
    "::1",
    "fe80::1",
    "fd00::1",
    "fec0::1", // deprecated site-local fec0::/10
    "ff02::1", // multicast
    "64:ff9b::a00:1", // NAT64 of 10.0.0.1
    "64:ff9b::808:808", // NAT64 of 8.8.8.8: refused as a form that embeds IPv4
    "2002:a00:1::", // 6to4
    "2001::1", // Teredo
    "::10.0.0.1", // IPv4-compatible
    "::8.8.8.8",
    "::ffff:10.0.0.1", // IPv4-mapped private
    "not an address",
  ])("refuses %s", (address) => {
    expect(isPrivateAddress(address)).toBe(true);
  });

  it.each(["8.8.8.8", "20.50.2.1", "2606:4700::1111", "2a01:111:f100::1", "::ffff:8.8.8.8"])("allows %s", (address) => {
    expect(isPrivateAddress(address)).toBe(false);
  });
});
