import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CouplingRepository } from "../../src/lib/storage/coupling-repository";
import { SyncRunner } from "../../src/lib/sync/sync-runner";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "../support/demo-app";
import { demoUsers, webApiAs } from "../support/raw-dataverse";

/**
 * Model-based test of the synchronization (fast-check): random sequences of ERP edits and deletions, CRM
 * edits and deletions (through the simulated Web API, as a salesperson), runs, runs that crash at a random
 * point, and runs by two workers at once. After every step: no duplicate, no value nobody wrote, no contact
 * in CRM without its company. After the sequence settles: every record agrees on both sides with the last
 * change made to each field, or it is reported (conflict, failed, deferred, skipped).
 *
 * Fixed seed in CI; a failure prints the seed and path for replay: SYNC_MODEL_SEED=<seed> npx vitest run test/integration/sync-model.test.ts
 */
const seed = Number(process.env.SYNC_MODEL_SEED ?? 20261126);
const runs = Number(process.env.SYNC_MODEL_RUNS ?? 10);

const names = ["Contoso", "Fabrikam", "Northwind", "Tailspin"];
const cities = ["Oslo", "Bergen", "Tromsø"];
const phones = ["+47 1", "+47 2", "+47 3"];
type Field = "name" | "city" | "phoneNo";
const crmColumnOf: Record<Field, string> = { name: "name", city: "address1_city", phoneNo: "telephone1" };

type Step =
  | { kind: "erpEdit"; customer: number; field: Field; value: string }
  | { kind: "erpDelete"; customer: number }
  | { kind: "crmEdit"; customer: number; field: Field; value: string }
  | { kind: "crmDelete"; customer: number }
  | { kind: "contact"; contact: number; customer: number }
  | { kind: "run"; mapping: "CUSTOMER" | "CONTACT" }
  | { kind: "crash"; mapping: "CUSTOMER" | "CONTACT"; afterSaves: number }
  | { kind: "twoWorkers" }
  /** The same field edited on both sides between two runs: a conflict that must be reported, never decided silently. */
  | { kind: "bothEdit"; customer: number; field: Field; erpValue: string; crmValue: string; crmFirst: boolean };

const customerIndex = fc.integer({ min: 0, max: 3 });
const field = fc.constantFrom<Field>("name", "city", "phoneNo");
const valueFor = (chosen: Field) => fc.constantFrom(...(chosen === "name" ? names : chosen === "city" ? cities : phones));
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(customerIndex, field)
      .chain(([customer, chosen]) => valueFor(chosen).map((value): Step => ({ kind: "erpEdit", customer, field: chosen, value }))),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(customerIndex, field)
      .chain(([customer, chosen]) => valueFor(chosen).map((value): Step => ({ kind: "crmEdit", customer, field: chosen, value }))),
  },
  { weight: 1, arbitrary: customerIndex.map((customer): Step => ({ kind: "erpDelete", customer })) },
  { weight: 1, arbitrary: customerIndex.map((customer): Step => ({ kind: "crmDelete", customer })) },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.integer({ min: 0, max: 2 }), customerIndex).map(([contact, customer]): Step => ({ kind: "contact", contact, customer })),
  },
  { weight: 4, arbitrary: fc.constantFrom<Step>({ kind: "run", mapping: "CUSTOMER" }, { kind: "run", mapping: "CONTACT" }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom<"CUSTOMER" | "CONTACT">("CUSTOMER", "CONTACT"), fc.integer({ min: 1, max: 3 }))
      .map(([mapping, afterSaves]): Step => ({ kind: "crash", mapping, afterSaves })),
  },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: "twoWorkers" }) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(customerIndex, field, fc.boolean())
      .chain(([customer, chosen, crmFirst]) =>
        fc
          .tuple(valueFor(chosen), valueFor(chosen))
          .map(([erpValue, crmValue]): Step => ({ kind: "bothEdit", customer, field: chosen, erpValue, crmValue, crmFirst })),
      ),
  },
);

/** What the test wrote, per record and field, with the order of the writes (the reference model). */
interface ModelRecord {
  exists: boolean;
  everDeleted: boolean;
  /**
   * Fields set back to their last synchronized value on one side: value-based change detection sees no
   * change there (documented: a value changed and changed back counts as unchanged), so only agreement of
   * both sides is checked for them, not which write is newest.
   */
  reverted: Set<Field>;
  last: Partial<Record<Field, { value: string; at: number }>>;
  written: Record<Field, Set<string>>;
}

describe("synchronization model (fast-check)", () => {
  it("never loses, invents or duplicates data, and never leaves a lookup silently null", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 14 }), async (steps) => {
        const demo = await startDemoApp();
        try {
          await check(demo, steps);
        } finally {
          await demo.close();
        }
      }),
      { seed, numRuns: runs, endOnFailure: true },
    );
  }, 240_000);
});

async function check(demo: DemoApp, steps: Step[]): Promise<void> {
  const company = await setUpDemoCompany(demo);
  const enabled = await demo.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: true } });
  expect(enabled.status).toBe(200);
  const services = demo.app.services;
  const jane = await webApiAs(demo.simulator, demoUsers.jane);
  const tag = company;
  let clock = 0;
  const model: ModelRecord[] = Array.from({ length: 4 }, () => ({
    exists: false,
    everDeleted: false,
    reverted: new Set<Field>(),
    last: {},
    written: { name: new Set(names), city: new Set(cities), phoneNo: new Set(phones) },
  }));
  const contacts = new Map<number, number>();
  const erpId = (index: number) => `C${index}`;
  const coupling = async (mapping: string, id: string) => (await services.couplings.load(company, mapping)).find((item) => item.erpId === id);

  const apply = async (current: Step): Promise<void> => {
    switch (current.kind) {
      case "erpEdit": {
        const record = model[current.customer]!;
        const existing = record.exists ? (await services.erpRecordStore.get(company, "customers", erpId(current.customer)))?.fields : undefined;
        const fields = { ...(existing ?? { id: erpId(current.customer), name: names[0], homePage: tag }), [current.field]: current.value };
        if (!existing) record.last.name = { value: String(fields.name), at: ++clock };
        const response = await demo.app.call("PUT", `/api/companies/${company}/erp/customers`, { body: [fields] });
        expect(response.status).toBe(200);
        record.exists = true;
        const synced = (await coupling("CUSTOMER", erpId(current.customer)))?.synced;
        if (existing && synced && synced[current.field] === current.value && existing[current.field] !== current.value) record.reverted.add(current.field);
        // Writing the value a field already has changes nothing (field-level): not a newer change.
        if (!existing || existing[current.field] !== current.value) record.last[current.field] = { value: current.value, at: ++clock };
        break;
      }
      case "erpDelete": {
        const record = model[current.customer]!;
        if (!record.exists) break;
        await demo.app.call("DELETE", `/api/companies/${company}/erp/customers/${erpId(current.customer)}`);
        record.exists = false;
        record.everDeleted = true;
        break;
      }
      case "crmEdit":
      case "crmDelete": {
        const coupled = await coupling("CUSTOMER", erpId(current.customer));
        if (!coupled || coupled.pending || !demo.simulator.store.get("accounts", coupled.crmId)) break;
        if (current.kind === "crmDelete") {
          await jane("DELETE", `accounts(${coupled.crmId})`).then((response) => expect([204, 403]).toContain(response.status));
          // A salesperson may not delete accounts: the administrator does.
          if (demo.simulator.store.get("accounts", coupled.crmId))
            await (
              await webApiAs(demo.simulator, demoUsers.admin)
            )("DELETE", `accounts(${coupled.crmId})`);
          model[current.customer]!.everDeleted = true;
          break;
        }
        const before = demo.simulator.store.get("accounts", coupled.crmId)![crmColumnOf[current.field]];
        if (coupled.synced && coupled.synced[current.field] === current.value && before !== current.value) model[current.customer]!.reverted.add(current.field);
        const response = await jane("PATCH", `accounts(${coupled.crmId})`, { body: { [crmColumnOf[current.field]]: current.value } });
        expect(response.status).toBe(204);
        if (before !== current.value) model[current.customer]!.last[current.field] = { value: current.value, at: ++clock };
        break;
      }
      case "contact": {
        if (!model[current.customer]!.exists) break;
        const response = await demo.app.call("PUT", `/api/companies/${company}/erp/contacts`, {
          body: [{ id: `P${current.contact}`, firstName: "Pat", surname: `${tag}-${current.contact}`, companyNo: erpId(current.customer) }],
        });
        expect(response.status).toBe(200);
        contacts.set(current.contact, current.customer);
        break;
      }
      case "run":
        await services.runner.runMapping(company, current.mapping).catch((error: unknown) => {
          if (!(error instanceof Error && error.name === "MappingBusyError")) throw error;
        });
        break;
      case "crash": {
        const real = new CouplingRepository(services.tables);
        let saves = 0;
        const crashing = Object.create(real) as CouplingRepository;
        crashing.save = async (...args) => {
          if (++saves >= current.afterSaves) throw new Error("process died");
          return real.save(...args);
        };
        const runner = new SyncRunner({
          sync: services.sync,
          couplings: crashing,
          erpRecords: services.erpRecordStore,
          logs: services.syncLog,
          issues: services.syncIssues,
          connector: services.connector,
          setups: services.setups,
          config: { SYNC_BATCH_SIZE: 1, SYNC_MAX_PARALLEL: 1 },
        });
        await runner.runMapping(company, current.mapping).catch(() => undefined);
        // The dead run's lease lapses; clear it as its expiry would.
        const stored = await services.sync.mapping(company, current.mapping);
        if (stored?.value.runLeaseOwner)
          await services.sync.saveMapping({ ...stored.value, runLeaseOwner: undefined, runLeaseExpiresAt: undefined }, stored.etag);
        break;
      }
      case "bothEdit": {
        const crm = { kind: "crmEdit", customer: current.customer, field: current.field, value: current.crmValue } as const;
        const erp = { kind: "erpEdit", customer: current.customer, field: current.field, value: current.erpValue } as const;
        for (const edit of current.crmFirst ? [crm, erp] : [erp, crm]) await apply(edit);
        break;
      }
      case "twoWorkers": {
        const second = new SyncRunner({
          sync: services.sync,
          couplings: services.couplings,
          erpRecords: services.erpRecordStore,
          logs: services.syncLog,
          issues: services.syncIssues,
          connector: services.connector,
          setups: services.setups,
          config: services.config,
        });
        const outcomes = await Promise.allSettled([services.runner.runMapping(company, "CUSTOMER"), second.runMapping(company, "CUSTOMER")]);
        for (const outcome of outcomes) if (outcome.status === "rejected") expect((outcome.reason as Error).name).toBe("MappingBusyError");
        break;
      }
    }
  };

  const ourAccounts = () => demo.simulator.store.rows("accounts").filter((row) => row.websiteurl === tag);
  const ourContacts = () => demo.simulator.store.rows("contacts").filter((row) => String(row.lastname ?? "").startsWith(`${tag}-`));

  /** After every step: no duplicate, nothing invented, no contact without its company. */
  const always = async () => {
    const couplings = (await services.couplings.load(company, "CUSTOMER")).filter((item) => /^C\d$/.test(item.erpId));
    const crmIds = couplings.map((item) => item.crmId);
    expect(new Set(crmIds).size, "two ERP customers share one account").toBe(crmIds.length);
    for (const account of ourAccounts()) {
      expect(crmIds, `account ${String(account.name)} has no coupling: a duplicate`).toContain(String(account.accountid));
      const index = couplings.find((item) => item.crmId === account.accountid)!.erpId.slice(1);
      for (const chosen of ["name", "city", "phoneNo"] as Field[]) {
        const value = account[crmColumnOf[chosen]];
        if (value !== null && value !== undefined)
          expect(model[Number(index)]!.written[chosen].has(String(value)), `invented ${chosen} ${String(value)}`).toBe(true);
      }
    }
    for (const contact of ourContacts()) expect(contact._parentcustomerid_value, `contact ${String(contact.lastname)} without its company`).toBeTruthy();
  };

  for (const current of steps) {
    await apply(current);
    await always();
  }

  // Settle: run until quiet, then every record agrees with the newest write of each field, or is reported.
  for (let round = 0; round < 3; round++) {
    await services.runner.runMapping(company, "CUSTOMER");
    await services.runner.runMapping(company, "CONTACT");
  }
  await always();
  const issues = await services.syncIssues.list(company);
  const reported = (mapping: string, id: string) => issues.some((issue) => issue.mapping === mapping && (issue.erpId === id || issue.sourceId === id));
  for (const [index, record] of model.entries()) {
    const id = erpId(index);
    if (!record.exists || record.everDeleted || reported("CUSTOMER", id)) continue;
    const coupled = await coupling("CUSTOMER", id);
    expect(coupled, `customer ${id} neither synchronized nor reported`).toBeDefined();
    const account = demo.simulator.store.get("accounts", coupled!.crmId)!;
    const fields = (await services.erpRecordStore.get(company, "customers", id))!.fields;
    for (const chosen of ["name", "city", "phoneNo"] as Field[]) {
      const newest = record.last[chosen];
      if (!newest) continue;
      if (record.reverted.has(chosen)) {
        expect(account[crmColumnOf[chosen]] ?? undefined, `${id}.${chosen} differs between the sides`).toBe(fields[chosen]);
        continue;
      }
      expect(fields[chosen], `ERP ${id}.${chosen}`).toBe(newest.value);
      expect(account[crmColumnOf[chosen]], `CRM ${id}.${chosen}`).toBe(newest.value);
    }
  }
  for (const [contact, customer] of contacts) {
    const id = `P${contact}`;
    if (!model[customer]!.exists || model[customer]!.everDeleted || reported("CONTACT", id)) continue;
    const coupledContact = await coupling("CONTACT", id);
    expect(coupledContact, `contact ${id} neither synchronized nor reported`).toBeDefined();
    const account = await coupling("CUSTOMER", `C${customer}`);
    expect(demo.simulator.store.get("contacts", coupledContact!.crmId)?._parentcustomerid_value).toBe(account?.crmId);
  }
}
