/**
 * The console with authentication and ACLs on: the page and its files are served to anyone;
 * `/api/v1/session` says whether the caller is signed in; every other API call needs HTTP Basic
 * credentials of a SCRAM user (401 without, or with a wrong password) and then passes the same
 * ACL checks as gRPC (403, nothing changed). In Chromium: the login page appears, refuses a wrong
 * password with the reason, and a right one opens the overview — with no console error.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../src/client/admin.ts";
import { call, type ConsoleBroker, startConsoleBroker } from "./console-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = path.resolve(import.meta.dirname, "../../test-output/console");
const ROOT = "root-password-1";
const ALICE = "alice-password-1";
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` });
const root = basic("root", ROOT);
const alice = basic("alice", ALICE);

let dir: string;
let b: ConsoleBroker;

async function topicsAsRoot(): Promise<string[]> {
  return (await call(b.url, "GET", "/api/v1/topics", undefined, root)).body.topics.map((t: { name: string }) => t.name);
}

beforeAll(async () => {
  dir = tmpDir("rill-console-auth-");
  const users = path.join(dir, "users.txt");
  writeFileSync(users, `root:${ROOT}\nalice:${ALICE}\n`);
  b = await startConsoleBroker(path.join(dir, "data"), {
    authMethods: ["password"],
    authAllowPlaintextPasswords: true,
    authorizerEnable: true,
    superUsers: "User:root",
    authBootstrapUsersFile: users,
  });
  for (const name of ["open", "secret"])
    expect((await call(b.url, "POST", "/api/v1/topics", { name, partitions: 1 }, root)).status).toBe(201);
  const admin = new Admin({ bootstrap: b.broker.address, credentials: { user: "root", password: ROOT } });
  await admin.createAcls(
    (["DESCRIBE", "READ"] as const).map((operation) => ({
      principal: "User:alice",
      host: "*",
      resourceType: "TOPIC",
      resourceName: "open",
      patternType: "LITERAL",
      operation,
      permission: "ALLOW",
    })),
  );
  await admin.close();
});

afterAll(async () => {
  await b?.close();
  if (dir) rmTmp(dir);
});

describe("console API with authentication and ACLs", () => {
  it("serves the page to anyone; the API needs credentials (401 without, or with a wrong password)", async () => {
    expect((await fetch(`${b.url}/`)).status).toBe(200);
    expect((await fetch(`${b.url}/console/app.js`)).status).toBe(200);
    const session = await call(b.url, "GET", "/api/v1/session");
    expect(session).toMatchObject({ status: 200, body: { authenticated: false, principal: null, authRequired: true } });
    const none = await call(b.url, "GET", "/api/v1/topics");
    expect(none.status).toBe(401);
    expect(none.body.error.name).toBe("SASL_AUTHENTICATION_FAILED");
    expect(none.headers.get("www-authenticate")).toBeNull(); // the console's login page, not the browser's prompt
    const wrong = await call(b.url, "GET", "/api/v1/topics", undefined, basic("alice", "not-it-at-all"));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.name).toBe("SASL_AUTHENTICATION_FAILED");
    const create = await call(b.url, "POST", "/api/v1/topics", { name: "sneaky" });
    expect(create.status).toBe(401);
    expect(await topicsAsRoot()).toEqual(["open", "secret"]);
    const signedIn = await call(b.url, "GET", "/api/v1/session", undefined, alice);
    expect(signedIn.body).toEqual({ authenticated: true, principal: "User:alice", authRequired: true });
  });

  it("applies gRPC's ACLs: alice sees and reads only her topic, changes nothing, sees no Raft internals", async () => {
    const list = await call(b.url, "GET", "/api/v1/topics", undefined, alice);
    expect(list.body.topics.map((t: { name: string }) => t.name)).toEqual(["open"]);
    expect((await call(b.url, "GET", "/api/v1/topics/open", undefined, alice)).status).toBe(200);
    expect((await call(b.url, "GET", "/api/v1/topics/open/messages", undefined, alice)).status).toBe(200);
    for (const [method, p, body] of [
      ["GET", "/api/v1/topics/secret", undefined],
      ["GET", "/api/v1/topics/secret/messages", undefined],
      ["GET", "/api/v1/topics/secret/configs", undefined],
      ["DELETE", "/api/v1/topics/open", undefined],
      ["PATCH", "/api/v1/topics/open/configs", { set: { "retention.ms": "1000" } }],
      ["POST", "/api/v1/topics", { name: "mine" }],
    ] as const) {
      const r = await call(b.url, method, p, body, alice);
      expect(r.status, `${method} ${p}`).toBe(403);
      expect(r.body.error.name, `${method} ${p}`).toMatch(/_AUTHORIZATION_FAILED$/);
      expect(r.body.error.message).toContain("User:alice");
    }
    expect(await topicsAsRoot()).toEqual(["open", "secret"]);
    const cfg = await call(b.url, "GET", "/api/v1/topics/open/configs", undefined, root);
    expect(cfg.body.configs.find((c: { name: string }) => c.name === "retention.ms").source).toBe("default");
    expect((await call(b.url, "GET", "/api/v1/cluster", undefined, alice)).body.raft.term).toBe(0);
    expect((await call(b.url, "GET", "/api/v1/cluster", undefined, root)).body.raft.term).toBeGreaterThanOrEqual(1);
  });
});

describe("console login page in Chromium", () => {
  let browser: Browser;
  afterAll(async () => {
    await browser?.close();
  });

  it("refuses a wrong password with the reason and signs in with the right one", async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/install-test-deps.sh (Debian's chromium)`);
    mkdirSync(SHOTS, { recursive: true });
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`page error: ${String(e)}`));
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    });
    await page.goto(`${b.url}/`);
    await page.waitForSelector('[data-testid="login-form"]', { timeout: 10_000 });
    await page.screenshot({ path: path.join(SHOTS, "10-login.png") });
    await page.type('[data-testid="login-user"]', "root");
    await page.type('[data-testid="login-password"]', "wrong-password");
    await page.click('[data-testid="login-submit"]');
    await page.waitForFunction(() => document.querySelector(".login .error")?.textContent?.startsWith("Sign-in refused"), {
      timeout: 10_000,
    });
    await page.$eval('[data-testid="login-password"]', (e) => ((e as HTMLInputElement).value = ""));
    await page.type('[data-testid="login-password"]', ROOT);
    await page.click('[data-testid="login-submit"]');
    await page.waitForSelector('[data-testid="stat-controller"]', { timeout: 10_000 });
    expect(await page.$eval('[data-testid="principal"]', (e) => e.textContent)).toBe("User:root · sign out");
    expect(await page.$eval('[data-testid="topics-table"]', (e) => e.textContent)).toContain("secret");
    await page.screenshot({ path: path.join(SHOTS, "11-signed-in.png") });
    expect(problems).toEqual([]);
  }, 30_000);
});
