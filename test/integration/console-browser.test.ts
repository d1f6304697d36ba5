/**
 * The console in a real browser: Debian's Chromium (/usr/bin/chromium, installed by
 * scripts/install-test-deps.sh) driven by puppeteer-core — no browser is downloaded. A topic is
 * created in the console's form, records are produced with the SDK and found in the console's
 * message browser, a group's committed offsets leave it lagging and the lag shows on the group's
 * chart; the pages are also shown at phone width. Screenshots go to test-output/console/ (not
 * committed). Any console error, uncaught exception or failed request of the page fails the test.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { type ConsoleBroker, startConsoleBroker } from "./console-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.resolve(import.meta.dirname, "../../test-output/console");

let dir: string;
let b: ConsoleBroker;
let browser: Browser;
let page: Page;
const problems: string[] = [];

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** Goes to `hash` and waits until the app has rendered it. */
async function open(hash: string): Promise<void> {
  await page.goto(`${b.url}/${hash}`);
  await page.waitForFunction((h) => document.getElementById("main")?.dataset.loaded === h, { timeout: 10_000 }, hash || "#/");
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps.sh (Debian's chromium)`);
  mkdirSync(SHOTS, { recursive: true });
  dir = tmpDir("rill-console-browser-");
  b = await startConsoleBroker(dir, {}, 250);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ""}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
});

afterAll(async () => {
  await browser?.close();
  await b?.close();
  if (dir) rmTmp(dir);
});

it("create a topic in the console, see SDK-produced records in its browser and a group's lag on the chart", async () => {
  await open("");
  expect(await page.$eval('[data-testid="stat-controller"] .stat-value', (e) => e.textContent)).toBe("node 1");
  await shot("01-overview");

  // Create a topic with the console's form.
  await open("#/topics");
  await page.type('[data-testid="new-topic-name"]', "web-orders");
  await page.$eval('[data-testid="new-topic-partitions"]', (e) => ((e as HTMLInputElement).value = "2"));
  await page.click('[data-testid="create-topic"]');
  await page.waitForFunction(
    () => [...document.querySelectorAll('[data-testid="topics-table"] a')].some((a) => a.textContent === "web-orders"),
    {
      timeout: 10_000,
    },
  );
  await shot("02-topic-created");
  const admin = new Admin({ bootstrap: b.broker.address });
  expect((await admin.listTopics()).find((t) => t.name === "web-orders")).toMatchObject({ partitions: 2 });
  await admin.close();

  // Produce with the SDK; the console's message browser shows the records.
  const p = new Producer({ bootstrap: b.broker.address, lingerMs: 0 });
  for (let i = 0; i < 20; i++)
    await p.send({ topic: "web-orders", partition: i % 2, key: `order-${i}`, value: JSON.stringify({ order: i, total: i * 10 }) });
  await p.close();
  await open("#/topics/web-orders");
  await page.waitForFunction(() => document.querySelector('[data-testid="messages-table"]')?.textContent?.includes("order-19"), {
    timeout: 10_000,
  });
  const keys = await page.$$eval('[data-testid="messages-table"] tbody tr td:nth-child(4)', (tds) => tds.map((td) => td.textContent));
  expect(keys).toHaveLength(20);
  expect(new Set(keys)).toEqual(new Set(Array.from({ length: 20 }, (_, i) => `order-${i}`)));
  await shot("03-messages-text");
  await page.select('[data-testid="browse-format"]', "hex");
  await page.click('[data-testid="browse"]');
  const hexOf19 = Buffer.from("order-19").toString("hex");
  await page.waitForFunction(
    (h) => document.querySelector('[data-testid="messages-table"]')?.textContent?.includes(h),
    { timeout: 10_000 },
    hexOf19,
  );
  await shot("04-messages-hex");

  // A group that committed 3 of partition 0's 10 records and 8 of partition 1's lags 7 + 2.
  const ga = new GroupAdmin({ bootstrap: b.broker.address });
  await ga.commitOffsets("web-readers", [
    { topic: "web-orders", partition: 0, offset: 3 },
    { topic: "web-orders", partition: 1, offset: 8 },
  ]);
  await ga.close();
  await new Promise((r) => setTimeout(r, 800)); // a few samples of the history (every 250 ms)
  await open("#/groups/web-readers");
  await page.waitForSelector('[data-testid="lag-chart"] path[data-series="total"]', { timeout: 15_000 });
  const lag = await page.$$eval('[data-testid="lag-chart"] path', (ps) =>
    Object.fromEntries(ps.map((p) => [p.getAttribute("data-series"), p.getAttribute("data-last")])),
  );
  expect(lag).toEqual({ total: "9", "web-orders-0": "7", "web-orders-1": "2" });
  expect(await page.$eval('[data-testid="stat-group-lag"] .stat-value', (e) => e.textContent)).toBe("9");
  await shot("05-group-lag");

  // The overview lists the group with its total lag; the traffic page charts the topic.
  await open("");
  expect(await page.$eval('[data-testid="groups-table"]', (e) => e.textContent)).toContain("web-readers");
  await open("#/traffic");
  await page.waitForSelector('[data-testid="chart-records-in"] path[data-series="web-orders"]', { timeout: 10_000 });
  await shot("06-traffic");

  // Phone width: nothing wider than the screen (tables scroll inside their box).
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  for (const [hash, name] of [
    ["", "07-phone-overview"],
    ["#/topics/web-orders", "08-phone-topic"],
    ["#/groups/web-readers", "09-phone-group"],
  ] as const) {
    await open(hash);
    expect(await page.evaluate(() => document.documentElement.scrollWidth), name).toBeLessThanOrEqual(390);
    await shot(name);
  }
  expect(problems).toEqual([]);
}, 60_000);
