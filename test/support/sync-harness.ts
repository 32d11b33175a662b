import { afterAll, beforeAll } from "vitest";
import type { ErpTable } from "../../src/lib/model/erp-tables";
import { type DemoApp, setUpDemoCompany, startDemoApp } from "./demo-app";
import { demoUsers, webApiAs } from "./raw-dataverse";

/**
 * The demo app and simulator for a sync test file, with the steps the tests are written in: a company with
 * the default sync enabled, ERP records put through the API, CRM edits as a salesperson or administrator
 * (through the Web API), runs, and reads of couplings and rows.
 */
export function useSyncHarness(options: Parameters<typeof startDemoApp>[0] = {}) {
  const state = {} as { demo: DemoApp; jane: Awaited<ReturnType<typeof webApiAs>>; admin: Awaited<ReturnType<typeof webApiAs>> };
  beforeAll(async () => {
    state.demo = await startDemoApp(options);
    state.jane = await webApiAs(state.demo.simulator, demoUsers.jane);
    state.admin = await webApiAs(state.demo.simulator, demoUsers.admin);
  });
  afterAll(() => state.demo.close());

  return {
    get demo() {
      return state.demo;
    },
    jane: (...args: Parameters<typeof state.jane>) => state.jane(...args),
    admin: (...args: Parameters<typeof state.admin>) => state.admin(...args),
    async enabledCompany(): Promise<string> {
      const company = await setUpDemoCompany(state.demo);
      const enabled = await state.demo.app.call("POST", `/api/companies/${company}/connection/enable`, { body: { useDefaultSyncSetup: true } });
      if (enabled.status !== 200) throw new Error(enabled.text);
      return company;
    },
    async put(company: string, table: string, records: unknown[]): Promise<void> {
      const response = await state.demo.app.call("PUT", `/api/companies/${company}/erp/${table}`, { body: records });
      if (response.status !== 200) throw new Error(response.text);
    },
    erp: async (company: string, table: string, id: string) => (await state.demo.app.services.erpRecordStore.get(company, table as ErpTable, id))?.fields,
    run: (company: string, mapping: string) => state.demo.app.services.runner.runMapping(company, mapping),
    couplingOf: async (company: string, mapping: string, erpId: string) =>
      (await state.demo.app.services.couplings.load(company, mapping)).find((coupling) => coupling.erpId === erpId),
    crmRow: (set: string, id: string) => state.demo.simulator.store.get(set, id),
    /** Holds a mapping as a run on another instance would, until the returned function lets it go. */
    async holdMapping(company: string, mapping: string): Promise<() => Promise<void>> {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let holding!: () => void;
      const taken = new Promise<void>((resolve) => (holding = resolve));
      const hold = state.demo.app.services.runner.whileHolding(company, mapping, 0, async () => {
        holding();
        await held;
      });
      await taken;
      return async () => {
        release();
        await hold;
      };
    },
  };
}
