import { describe, expect, it } from "vitest";
import { setupMessages } from "../../src/lib/setup/messages";
import { type ConnectionSetupInput, connectionSetupInput, resolveSetupInput } from "../../src/lib/setup/setup-input";
import { clientCertificatePem } from "../support/certificates";

const resolve = (body: unknown) => {
  const input = connectionSetupInput.parse(body) as ConnectionSetupInput;
  return resolveSetupInput(input);
};

describe("resolveSetupInput", () => {
  it("defaults the authentication type from the host and proxy version to 9", () => {
    const result = resolve({ serverAddress: "https://org.crm.dynamics.com", userName: "a@contoso.com", password: "pw" });
    expect(result).toMatchObject({
      ok: true,
      fields: { serverAddress: "https://org.crm.dynamics.com", authenticationType: "Office365", userName: "a@contoso.com", proxyVersion: 9 },
      secrets: { password: "pw" },
      notices: [],
    });
  });

  it("suggests the normalized URL as a notice when the entered one differs", () => {
    const result = resolve({ serverAddress: "org.crm.dynamics.com/main.aspx" });
    expect(result).toMatchObject({
      ok: true,
      notices: [{ code: "server-address-normalized", message: setupMessages.urlReplaced("org.crm.dynamics.com/main.aspx", "https://org.crm.dynamics.com") }],
    });
  });

  it("applies the user name rule of the type", () => {
    expect(resolve({ serverAddress: "https://crm.contoso.local", userName: "svc@contoso.com" })).toEqual({
      ok: false,
      errors: [{ path: "userName", message: setupMessages.userNameNeedsDomain }],
    });
  });

  it("takes fields and the secret from a connection string and moves the secret out", () => {
    const result = resolve({
      connectionString:
        "AuthType=ClientSecret; Url=https://org.crm4.dynamics.com/; ClientId=51F81489-12EE-4A9E-AAAE-A2591F45987D; ClientSecret='s;3cr''et'; TenantId=contoso.onmicrosoft.com",
    });
    expect(result).toEqual({
      ok: true,
      notices: [],
      secrets: { clientSecret: "s;3cr'et" },
      fields: {
        serverAddress: "https://org.crm4.dynamics.com",
        authenticationType: "ClientSecret",
        clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d",
        tenantId: "contoso.onmicrosoft.com",
        proxyVersion: 9,
      },
    });
  });

  it("keeps a placeholder as 'no secret supplied' and accepts the secret beside the string", () => {
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com; UserName=a@b.com; Password={PASSWORD}" })).toMatchObject({ ok: true, secrets: {} });
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com; Password={password}", password: "pw" })).toMatchObject({
      ok: true,
      secrets: { password: "pw" },
    });
  });

  it("refuses a value given both in the string and as a field", () => {
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com", serverAddress: "https://o.crm.dynamics.com" })).toEqual({
      ok: false,
      errors: [{ path: "serverAddress", message: "is also given in connectionString; give it one way only" }],
    });
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com; Password=x", password: "y" })).toMatchObject({
      ok: false,
      errors: [{ path: "password" }],
    });
  });

  it("names connectionString for a malformed string or a bad value in it", () => {
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com; Pasword=x" })).toMatchObject({ ok: false, errors: [{ path: "connectionString" }] });
    expect(resolve({ connectionString: "Url=https://o.crm.dynamics.com; ClientId=nope" })).toEqual({
      ok: false,
      errors: [{ path: "connectionString", message: "clientId: must be a GUID" }],
    });
    expect(resolve({ connectionString: "Url=http://o.crm.dynamics.com" })).toEqual({
      ok: false,
      errors: [{ path: "serverAddress", message: setupMessages.httpsOnly }],
    });
  });

  it("requires the server address", () => {
    expect(resolve({ userName: "a@b.com" })).toMatchObject({ ok: false, errors: [{ path: "serverAddress" }] });
  });

  it("derives the thumbprint from a certificate PEM and refuses one that is not a certificate with its key", async () => {
    const { pem, thumbprint } = await clientCertificatePem();
    const result = resolve({
      serverAddress: "https://o.crm.dynamics.com",
      authenticationType: "Certificate",
      clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d",
      certificatePem: pem,
    });
    expect(result).toMatchObject({ ok: true, fields: { certificateThumbprint: thumbprint }, secrets: { certificatePem: pem } });
    const withoutKey = pem.replace(/-----BEGIN PRIVATE KEY-----[\s\S]+/, "");
    expect(resolve({ serverAddress: "https://o.crm.dynamics.com", certificatePem: withoutKey })).toMatchObject({
      ok: false,
      errors: [{ path: "certificatePem" }],
    });
  });

  it("refuses unknown fields and wrong types through the schema", () => {
    const parsed = connectionSetupInput.safeParse({
      serverAddress: "https://o.crm.dynamics.com",
      pasword: "x",
      proxyVersion: "nine",
      authenticationType: "Kerberos",
    });
    expect(parsed.success).toBe(false);
    const paths = parsed.error!.issues.map((issue) => issue.path.join(".") || issue.message);
    expect(paths).toEqual(expect.arrayContaining(["proxyVersion", "authenticationType"]));
    expect(parsed.error!.issues.some((issue) => issue.code === "unrecognized_keys")).toBe(true);
  });
});
