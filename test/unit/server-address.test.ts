import { describe, expect, it } from "vitest";
import { setupMessages } from "../../src/lib/setup/messages";
import { normalizeServerAddress } from "../../src/lib/setup/server-address";

describe("normalizeServerAddress", () => {
  it.each([
    ["https://myorg.crm4.dynamics.com", "https://myorg.crm4.dynamics.com", false],
    ["https://myorg.crm4.dynamics.com/", "https://myorg.crm4.dynamics.com", false],
    ["  https://MyOrg.CRM4.dynamics.com  ", "https://myorg.crm4.dynamics.com", false],
    ["myorg.crm4.dynamics.com", "https://myorg.crm4.dynamics.com", true],
    ["https://myorg.crm4.dynamics.com/main.aspx?appid=1#x", "https://myorg.crm4.dynamics.com", true],
    ["https://crm.contoso.local:8443/contoso", "https://crm.contoso.local:8443", true],
    ["https://myorg.crm.dynamics.com:443", "https://myorg.crm.dynamics.com", true],
    ["localhost:7443", "https://localhost:7443", true],
  ])("stores %j as %j (changed: %j)", (entered, stored, changed) => {
    expect(normalizeServerAddress(entered)).toEqual({ ok: true, serverAddress: stored, changed });
  });

  it("refuses http URLs with the secure-connection message", () => {
    expect(normalizeServerAddress("http://myorg.crm.dynamics.com")).toEqual({ ok: false, message: setupMessages.httpsOnly });
  });

  it("refuses other schemes naming the scheme", () => {
    expect(normalizeServerAddress("ftp://myorg.crm.dynamics.com")).toEqual({ ok: false, message: setupMessages.invalidScheme("ftp") });
  });

  it.each(["", "   ", "not a url at all", "https://", "https://exa mple.com", "javascript:alert(1)", "https://[::1"])(
    "refuses %j as not a valid URL",
    (entered) => {
      expect(normalizeServerAddress(entered)).toEqual({ ok: false, message: setupMessages.invalidUrl });
    },
  );

  it("refuses credentials inside the URL so they are never stored in the row", () => {
    expect(normalizeServerAddress("https://admin:pw@myorg.crm.dynamics.com")).toEqual({ ok: false, message: setupMessages.urlWithCredentials });
  });
});
