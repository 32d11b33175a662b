/// <reference lib="dom" />
import { existsSync } from "node:fs";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { demoPassword } from "../simulator/fixture";
import { type DemoApp, startDemoApp } from "../support/demo-app";
import { uniqueCompany } from "../support/names";

const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) console.log(`Skipping the browser tests: no Chromium at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH).`);

// The flags the machine notes give for headless Chromium as root on a closed network.
const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe.skipIf(!haveChromium)("the connection setup page in Chromium", () => {
  let demo: DemoApp;
  let browser: Browser;
  beforeAll(async () => {
    demo = await startDemoApp({ env: { ERP_WEB_URL_DEFAULT: "https://erp.example.com" } });
    browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
  });
  afterAll(async () => {
    await browser?.close();
    await demo?.close();
  });

  async function openPage(company: string): Promise<{ page: Page; dialogs: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const dialogs: string[] = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void dialog.accept();
    });
    await page.goto(`${demo.app.url}/api/setup`);
    await page.getByLabel("Company").fill(company);
    await page.getByRole("button", { name: "Open" }).click();
    await page.locator("#workspace:not([hidden])").waitFor();
    return { page, dialogs };
  }

  async function fillDemoSetup(page: Page, password = demoPassword): Promise<void> {
    await page.getByLabel("Dynamics 365 Sales URL").fill(demo.simulator.url);
    await page.getByLabel("Authentication type").selectOption("Office365");
    await page.getByLabel("User name").fill("integration@demo.example");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await expect.poll(() => page.locator("#status").textContent()).toContain("saved");
  }

  it("takes a new company from nothing to an enabled connection with default synchronization", async () => {
    const company = uniqueCompany("page");
    const { page, dialogs } = await openPage(company);
    await fillDemoSetup(page);
    await expect.poll(() => page.locator("#password-state").textContent()).toBe("Stored. Leave empty to keep it.");
    expect(await page.locator("#connectionString").textContent()).toContain("Password={PASSWORD}");

    await page.getByRole("button", { name: "Test Connection" }).click();
    await page.locator("#result.ok").waitFor();
    expect(await page.locator("#result").textContent()).toContain("The connection test was successful. The settings are valid.");

    await page.getByRole("button", { name: "Enable" }).click();
    await expect.poll(() => page.locator("#jobs-count").textContent()).toBe("(11 of 12 ready or in process)");
    expect(dialogs.some((message) => message.startsWith("The synchronization is not set up."))).toBe(true);
    expect(await page.locator("#active-jobs").textContent()).toBe("11 of 12");
    expect(await page.locator("#version").textContent()).toBe("9.2.24083.00212");
    expect(await page.getByLabel("Dynamics 365 Sales URL").isDisabled()).toBe(true);
    expect(await page.locator("#jobs tbody tr").count()).toBe(12);

    // The same state through the API: enabled, with the default sync setup.
    const view = await demo.app.call("GET", `/api/companies/${company}/connection`);
    expect(view.json).toMatchObject({ isEnabled: true, activeScheduledSyncJobs: { text: "11 of 12" } });

    await page.getByLabel("Sales order integration enabled").check();
    await expect.poll(() => page.locator("#status").textContent()).toContain("Sales Order Integration with Dynamics 365 for Sales is enabled.");
    await page.screenshot({ path: "test-results/setup-page.png", fullPage: true });
    await page.close();
  });

  it("shows a bad URL next to its field and stores nothing", async () => {
    const company = uniqueCompany("page");
    const { page } = await openPage(company);
    await page.getByLabel("Dynamics 365 Sales URL").fill("http://insecure.crm.dynamics.com");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    const error = page.locator("#error-serverAddress");
    await expect.poll(() => error.textContent()).toContain("secure connections (HTTPS)");
    expect(await page.getByLabel("Dynamics 365 Sales URL").getAttribute("aria-invalid")).toBe("true");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("serverAddress");
    expect((await demo.app.call("GET", `/api/companies/${company}/connection`)).status).toBe(404);
    await page.close();
  });

  it("shows why a test failed", async () => {
    const company = uniqueCompany("page");
    const { page } = await openPage(company);
    await fillDemoSetup(page, "Wrong-Passw0rd!");
    await page.getByRole("button", { name: "Test Connection" }).click();
    await page.locator("#result.failed").waitFor();
    expect(await page.locator("#result").textContent()).toContain(
      "The connection setup cannot be validated. Verify the settings and try again. Detailed error description: Sign-in failed: AADSTS50126",
    );
    await page.close();
  });

  it("can be used with the keyboard alone: every control has a label and takes focus", async () => {
    const { page } = await openPage(uniqueCompany("page"));
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")]
        .filter((element) => !(element as HTMLElement).closest("[hidden]") && element.id !== "")
        .filter((element) => !document.querySelector(`label[for="${element.id}"]`))
        .map((element) => element.id),
    );
    expect(unlabelled).toEqual([]);
    await page.keyboard.press("Tab");
    expect(await page.evaluate(() => document.activeElement?.tagName)).not.toBe("BODY");
    await page.close();
  });
});
