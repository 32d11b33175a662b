import { describe, expect, it } from "vitest";
import { type ConnectionStringFields, ConnectionStringError, buildConnectionString, parseConnectionString } from "../../src/lib/setup/connection-string";

describe("parseConnectionString", () => {
  it("reads keys case-insensitively, with spaces inside keys and aliases", () => {
    expect(parseConnectionString("Service Uri=https://org.crm.dynamics.com; user id=a@b.com; PASSWORD=x; authtype=office365")).toEqual({
      url: "https://org.crm.dynamics.com",
      userName: "a@b.com",
      password: "x",
      authType: "office365",
      authTypeValue: "Office365",
    });
  });

  it.each([
    ["ServiceUri", "url"],
    ["Server", "url"],
    ["User Name", "userName"],
    ["UserId", "userName"],
    ["AppId", "clientId"],
    ["ApplicationId", "clientId"],
    ["ReplyUrl", "redirectUri"],
    ["Secret", "clientSecret"],
    ["CertThumbprint", "thumbprint"],
    ["CertificateThumbprint", "thumbprint"],
    ["Home Realm Uri", "homeRealmUri"],
  ])("knows %s as %s", (key, canonical) => {
    expect(parseConnectionString(`${key}=v`)).toEqual({ [canonical]: "v" });
  });

  it("reads quoted values with ; inside and doubled quotes", () => {
    expect(parseConnectionString(`Password='a;b''c'; Url="https://x.example"`)).toEqual({ password: "a;b'c", url: "https://x.example" });
    expect(parseConnectionString(`Password="say ""hi"";"`)).toEqual({ password: 'say "hi";' });
  });

  it("keeps = inside a value and trims unquoted values", () => {
    expect(parseConnectionString("ClientSecret= abc==def ;")).toEqual({ clientSecret: "abc==def" });
  });

  it("drops known XRM keys it does not use", () => {
    expect(parseConnectionString("Url=https://x.example;RequireNewInstance=true;SkipDiscovery=true;TokenCacheStorePath=c:\\t")).toEqual({
      url: "https://x.example",
    });
  });

  it.each([
    ["Url=https://x;Pasword=x", /The key of pair 2 is not a connection string key/],
    ["Url=https://x;Server=https://y", /Pair 2 repeats the key Url/],
    ["Url=https://x;__proto__=y", /The key of pair 2 is not a connection string key/],
    ["Url=https://x;constructor=y", /The key of pair 2 is not a connection string key/],
    ["Password='abc", /no closing quote/],
    ["Password='abc'x;Url=y", /text after its closing quote/],
    ["justtext", /Pair 1 has no "=" and value/],
    ["=value", /The key of pair 1 is missing/],
    ["AuthType=Kerberos", /not one of Office365/],
  ])("refuses %j", (text, message) => {
    expect(() => parseConnectionString(text)).toThrow(ConnectionStringError);
    expect(() => parseConnectionString(text)).toThrow(message);
  });

  it("accepts empty pairs and a trailing semicolon", () => {
    expect(parseConnectionString(";;Url=https://x.example;;")).toEqual({ url: "https://x.example" });
  });

  it("does not hang or throw unexpectedly on hostile input", () => {
    const long = `Password=${"'".repeat(5001)}`;
    expect(() => parseConnectionString(long)).toThrow(ConnectionStringError);
    expect(() => parseConnectionString("Url=" + "a;".repeat(10_000))).toThrow(ConnectionStringError);
  });
});

describe("buildConnectionString", () => {
  const base = { serverAddress: "https://org.crm4.dynamics.com", proxyVersion: 9 } as const;
  const cases: [string, ConnectionStringFields, string][] = [
    [
      "Office365",
      { ...base, authenticationType: "Office365", userName: "int@contoso.com" },
      "Url=https://org.crm4.dynamics.com; UserName=int@contoso.com; Password={PASSWORD}; ProxyVersion=9; AuthType=Office365;",
    ],
    [
      "AD",
      { ...base, authenticationType: "AD", userName: "CONTOSO\\svc", domain: "CONTOSO" },
      "Url=https://org.crm4.dynamics.com; UserName=CONTOSO\\svc; Password={PASSWORD}; ProxyVersion=9; AuthType=AD; Domain=CONTOSO;",
    ],
    [
      "IFD",
      { ...base, authenticationType: "IFD", userName: "CONTOSO\\svc", domain: "CONTOSO", homeRealmUri: "https://sts.contoso.com/adfs" },
      "Url=https://org.crm4.dynamics.com; UserName=CONTOSO\\svc; Password={PASSWORD}; ProxyVersion=9; AuthType=IFD; Domain=CONTOSO; HomeRealmUri=https://sts.contoso.com/adfs;",
    ],
    [
      "OAuth",
      {
        ...base,
        authenticationType: "OAuth",
        userName: "a@b.com",
        clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d",
        redirectUri: "app://58145B91-0C36-4500-8554-080854F2AC97",
      },
      "Url=https://org.crm4.dynamics.com; UserName=a@b.com; Password={PASSWORD}; ProxyVersion=9; AuthType=OAuth; AppId=51f81489-12ee-4a9e-aaae-a2591f45987d; RedirectUri=app://58145B91-0C36-4500-8554-080854F2AC97; LoginPrompt=Auto;",
    ],
    [
      "ClientSecret",
      { ...base, authenticationType: "ClientSecret", clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d", tenantId: "contoso.onmicrosoft.com" },
      "Url=https://org.crm4.dynamics.com; ClientId=51f81489-12ee-4a9e-aaae-a2591f45987d; ClientSecret={CLIENTSECRET}; ProxyVersion=9; AuthType=ClientSecret; TenantId=contoso.onmicrosoft.com;",
    ],
    [
      "Certificate",
      { ...base, authenticationType: "Certificate", clientId: "51f81489-12ee-4a9e-aaae-a2591f45987d", thumbprint: "A".repeat(40) },
      `Url=https://org.crm4.dynamics.com; ClientId=51f81489-12ee-4a9e-aaae-a2591f45987d; Thumbprint=${"A".repeat(40)}; ProxyVersion=9; AuthType=Certificate;`,
    ],
  ];

  it.each(cases)("builds the %s form with placeholders only", (_type, fields, expected) => {
    expect(buildConnectionString(fields)).toBe(expected);
  });

  it.each(cases)("round-trips the %s form through parse", (_type, fields) => {
    const parsed = parseConnectionString(buildConnectionString(fields));
    expect(parsed.url).toBe(fields.serverAddress);
    expect(parsed.authTypeValue).toBe(fields.authenticationType);
    expect(parsed.userName).toBe(fields.userName);
    expect(parsed.domain).toBe(fields.domain);
    expect(parsed.clientId).toBe(fields.clientId);
    expect(parsed.redirectUri).toBe(fields.redirectUri);
    expect(parsed.homeRealmUri).toBe(fields.homeRealmUri);
    expect(parsed.tenantId).toBe(fields.tenantId);
    expect(parsed.thumbprint).toBe(fields.thumbprint);
  });

  it("quotes values that hold ; or quotes so they round-trip", () => {
    const fields: ConnectionStringFields = { ...base, authenticationType: "AD", userName: "CON;TOSO\\o'brien", domain: "CON;TOSO" };
    const text = buildConnectionString(fields);
    expect(text).toContain("UserName='CON;TOSO\\o''brien';");
    expect(parseConnectionString(text).userName).toBe("CON;TOSO\\o'brien");
    expect(parseConnectionString(text).domain).toBe("CON;TOSO");
  });
});

describe("connection string errors never quote a secret", () => {
  it.each([
    "Url=https://x;Password=hunter2;secretpart;UserName=a",
    "Url=https://x;Password=hunter2;secretpart=more",
    "Url=https://x;ClientSecret='hunter2",
    "Url=https://x;ClientSecret='hunter2'secretpart",
    "AuthType=hunter2secret;Url=https://x",
  ])("%s", (text) => {
    let message = "";
    try {
      parseConnectionString(text);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toBe("");
    expect(message).not.toMatch(/hunter2|secretpart|more/);
  });
});
