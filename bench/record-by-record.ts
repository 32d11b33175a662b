/**
 * What users would pick instead of this service: one Web API request per record, through the maintained
 * `dynamics-web-api` client (as a record-by-record integration or a flow writes). Run by bench/sync.ts in
 * its own process (NODE_EXTRA_CA_CERTS trusts the simulator; the library's HTTPS agents take no CA option),
 * against the same simulator settings. Prints one JSON line: records, seconds, requests, failed.
 */
import { DynamicsWebApi } from "dynamics-web-api";

async function main(): Promise<void> {
  const url = process.env.SIM_URL!;
  const count = Number(process.env.RECORDS ?? 500);
  const parallel = Number(process.env.PARALLEL ?? 1);
  const form = new URLSearchParams({
    grant_type: "password",
    client_id: "51f81489-12ee-4a9e-aaae-a2591f45987d",
    username: process.env.SIM_USER ?? "integration@demo.example",
    password: process.env.SIM_PASSWORD ?? "",
    scope: `${url}/.default`,
  });
  const token = ((await (await fetch(`${url}/organizations/oauth2/v2.0/token`, { method: "POST", body: form })).json()) as { access_token: string })
    .access_token;
  const api = new DynamicsWebApi({ serverUrl: url, dataApi: { version: "9.2" }, onTokenRefresh: async () => token });
  let next = 0;
  let failed = 0;
  let requests = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const index = next++;
        for (let attempt = 0; ; attempt++) {
          requests++;
          try {
            await api.create({ collection: "accounts", data: { name: `Record-by-record ${index}`, address1_city: "Oslo", customertypecode: 3 } });
            break;
          } catch (error) {
            // The library does not wait on 429s by itself: a careful integration waits Retry-After and tries again.
            const status = (error as { status?: number }).status;
            const retryAfter = Number((error as { headers?: Record<string, string> }).headers?.["retry-after"] ?? 1);
            if (status === 429 && attempt < 10) await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
            else {
              failed++;
              break;
            }
          }
        }
      }
    }),
  );
  console.log(JSON.stringify({ records: count, seconds: (performance.now() - started) / 1000, requests, failed }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
