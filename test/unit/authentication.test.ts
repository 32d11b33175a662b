import { describe, expect, it } from "vitest";
import { defaultAuthenticationType, parseAuthenticationType } from "../../src/lib/model/authentication-type";
import { setupMessages } from "../../src/lib/setup/messages";
import { domainOf, userNameProblem } from "../../src/lib/setup/user-name";

describe("authentication type", () => {
  it.each([
    ["https://myorg.crm4.dynamics.com", "Office365"],
    ["https://myorg.api.crm.dynamics.com", "Office365"],
    ["https://agency.crm9.dynamics.com", "Office365"],
    ["https://agency.crm.microsoftdynamics.us", "Office365"],
    ["https://org.crm.dynamics.cn", "Office365"],
    ["https://crm.contoso.local", "AD"],
    ["https://dynamics.com.evil.example", "AD"],
    ["https://localhost:7443", "AD"],
  ] as const)("defaults %s to %s", (url, type) => {
    expect(defaultAuthenticationType(url)).toBe(type);
  });

  it("reads the type case-insensitively and refuses unknown ones", () => {
    expect(parseAuthenticationType("office365")).toBe("Office365");
    expect(parseAuthenticationType(" clientsecret ")).toBe("ClientSecret");
    expect(parseAuthenticationType("Kerberos")).toBeUndefined();
  });
});

describe("user name rules", () => {
  it("needs DOMAIN\\user for AD and IFD", () => {
    expect(userNameProblem("AD", "contoso\\svc-crm")).toBeUndefined();
    expect(userNameProblem("IFD", "svc-crm@contoso.com")).toBe(setupMessages.userNameNeedsDomain);
    expect(userNameProblem("AD", "\\svc")).toBe(setupMessages.userNameNeedsDomain);
  });

  it("needs an email address for Office 365 and OAuth", () => {
    expect(userNameProblem("Office365", "integration@contoso.onmicrosoft.com")).toBeUndefined();
    expect(userNameProblem("OAuth", "contoso\\svc")).toBe(setupMessages.userNameMustBeEmail);
    expect(userNameProblem("Office365", "not-an-email")).toBe(setupMessages.userNameMustBeEmail);
  });

  it("derives the domain from DOMAIN\\user", () => {
    expect(domainOf("CONTOSO\\svc")).toBe("CONTOSO");
    expect(domainOf("svc@contoso.com")).toBeUndefined();
    expect(domainOf(undefined)).toBeUndefined();
  });
});
