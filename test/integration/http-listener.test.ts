/**
 * The HTTP listener itself (src/http/server.ts) on 127.0.0.1: mounted routes tried in order, the
 * requester handed to them — authenticated with the same Authenticator as the other listeners
 * when auth is on — while /metrics, /healthz and /readyz stay open; protected mode; errors.
 */
import { randomBytes } from "node:crypto";
import * as nodeFs from "node:fs";
import * as https from "node:https";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../src/base/clock.ts";
import { rillError } from "../../src/base/errors.ts";
import { type HttpRoute, requireRequester, sendJson } from "../../src/http/router.ts";
import { HttpListener } from "../../src/http/server.ts";
import { Authenticator } from "../../src/security/authenticator.ts";
import { PemWatcher } from "../../src/protocol/pem-watcher.ts";
import { scramCredential, verifyPassword } from "../../src/security/scram.ts";
import { TestPki } from "../fixtures/test-pki.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const metrics = { contentType: "text/plain; version=0.0.4; charset=utf-8", metrics: async () => "# TYPE rill_up gauge\nrill_up 1\n" };
let listener: HttpListener | null = null;

afterEach(async () => {
  await listener?.close();
  listener = null;
});

/** A route answering who called, under /who. */
const who: HttpRoute = (req, res, ctx) => {
  if (ctx.url.pathname !== "/who") return false;
  const r = requireRequester(res, ctx);
  if (!r) return true;
  sendJson(res, 200, { principal: r.principal, host: r.host, method: req.method });
  return true;
};

function basic(name: string, password: string): string {
  return `Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`;
}

async function start(o: Partial<Parameters<typeof HttpListener.start>[0]> = {}): Promise<string> {
  listener = await HttpListener.start({
    listen: "127.0.0.1:0",
    metrics,
    health: () => ({ live: true, notReady: null }),
    routes: [who],
    ...o,
  });
  return `http://127.0.0.1:${listener.port}`;
}

describe("HttpListener", () => {
  it("without authentication hands routes User:ANONYMOUS with the client's address; unknown paths 404", async () => {
    const url = await start();
    const res = await fetch(`${url}/who`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ principal: "User:ANONYMOUS", host: "127.0.0.1", method: "GET" });
    const missing = await fetch(`${url}/nothing-here`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { name: string } }).error.name).toBe("NOT_FOUND");
  });

  it("with password authentication: routes get the user, or a 401 with the catalog error; /metrics and health stay open", async () => {
    const credential = scramCredential("s3cret", "SCRAM-SHA-256", 4096, randomBytes(32));
    const authenticator = new Authenticator({
      methods: ["password"],
      allowPlaintextPasswords: true,
      clock: systemClock,
      random: { next: () => 0.5, int: (n) => Math.floor(n / 2) },
      credentials: (user) => (user === "alice" ? [credential] : []),
      verify: verifyPassword,
    });
    const url = await start({ authenticator });
    const ok = await fetch(`${url}/who`, { headers: { authorization: basic("alice", "s3cret") } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { principal: string }).principal).toBe("User:alice");
    const none = await fetch(`${url}/who`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBeNull();
    expect(((await none.json()) as { error: { name: string; message: string } }).error).toMatchObject({
      name: "SASL_AUTHENTICATION_FAILED",
      message: expect.stringMatching(/no credentials/),
    });
    const wrong = await fetch(`${url}/who`, { headers: { authorization: basic("alice", "nope") } });
    expect(wrong.status).toBe(401);
    const bearer = await fetch(`${url}/who`, { headers: { authorization: "Bearer abc" } });
    expect(bearer.status).toBe(401);
    expect(((await bearer.json()) as { error: { name: string } }).error.name).toBe("UNSUPPORTED_AUTH_SCHEME");
    for (const path of ["/metrics", "/healthz", "/readyz"]) expect((await fetch(`${url}${path}`)).status, path).toBe(200);
    expect(await (await fetch(`${url}/metrics`)).text()).toBe("# TYPE rill_up gauge\nrill_up 1\n");
  });

  it("refuses a password over plain HTTP unless plaintext passwords are allowed", async () => {
    const credential = scramCredential("s3cret", "SCRAM-SHA-256", 4096, randomBytes(32));
    const authenticator = new Authenticator({
      methods: ["password"],
      allowPlaintextPasswords: false,
      clock: systemClock,
      random: { next: () => 0.5, int: (n) => Math.floor(n / 2) },
      credentials: () => [credential],
      verify: verifyPassword,
    });
    const url = await start({ authenticator });
    const res = await fetch(`${url}/who`, { headers: { authorization: basic("alice", "s3cret") } });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { name: string } }).error.name).toBe("PLAINTEXT_PASSWORD_REFUSED");
  });

  it("tries routes in order: the first that answers true wins; a RillError thrown is answered with its status", async () => {
    const calls: string[] = [];
    const first: HttpRoute = (_req, _res, ctx) => {
      calls.push(`first ${ctx.url.pathname}`);
      return false;
    };
    const failing: HttpRoute = (_req, _res, ctx) => {
      if (ctx.url.pathname !== "/fail") return false;
      throw rillError("INVALID_REQUEST", "body: not JSON");
    };
    const broken: HttpRoute = async (_req, _res, ctx) => {
      if (ctx.url.pathname !== "/bug") return false;
      throw new Error("a bug");
    };
    const url = await start({ routes: [first, failing, broken, who] });
    expect((await fetch(`${url}/who`)).status).toBe(200);
    const failed = await fetch(`${url}/fail`);
    expect(failed.status).toBe(400);
    expect(await failed.json()).toEqual({ error: { code: 42, name: "INVALID_REQUEST", message: "body: not JSON", retriable: false } });
    const bug = await fetch(`${url}/bug`);
    expect(bug.status).toBe(500);
    expect(JSON.stringify(await bug.json())).not.toContain("a bug");
    expect(calls).toEqual(["first /who", "first /fail", "first /bug"]);
  });

  it("in protected mode (routesAllowed false) serves only /metrics, /healthz and /readyz", async () => {
    const url = await start({ routesAllowed: false });
    expect((await fetch(`${url}/who`)).status).toBe(404);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });

  it("answers /readyz 503 with the reason while the node is not ready, and /healthz 503 once it shuts down", async () => {
    let state = { live: true, notReady: "registering with the controller" as string | null };
    const url = await start({ health: () => state });
    const notReady = await fetch(`${url}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: "not ready", reason: "registering with the controller" });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    state = { live: false, notReady: "shutting down" };
    expect((await fetch(`${url}/healthz`)).status).toBe(503);
  });

  it("serves HTTPS with tls.* files: a password is accepted over it, and an mTLS client is known by its certificate", async () => {
    const dir = tmpDir("rill-http-tls-");
    try {
      const pki = new TestPki(dir);
      const ca = pki.ca("http-ca");
      const server = pki.leaf(ca, { cn: "localhost", san: "DNS:localhost", serial: 1 });
      const client = pki.leaf(ca, { cn: "carol", serial: 2 });
      const credential = scramCredential("s3cret", "SCRAM-SHA-256", 4096, randomBytes(32));
      const authenticator = new Authenticator({
        methods: ["password", "mtls"],
        allowPlaintextPasswords: false,
        clock: systemClock,
        random: { next: () => 0.5, int: (n) => Math.floor(n / 2) },
        credentials: (user) => (user === "alice" ? [credential] : []),
        verify: verifyPassword,
      });
      const pem = new PemWatcher({ cert: { file: server.cert }, key: { file: server.key }, ca: { file: ca.cert } });
      await start({ authenticator, tls: { pem, clientAuth: "request" } });
      const get = (headers: Record<string, string>, cert?: { cert: string; key: string }): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const req = https.request(
            {
              host: "127.0.0.1",
              port: listener!.port,
              path: "/who",
              servername: "localhost",
              ca: nodeFs.readFileSync(ca.cert),
              headers,
              ...(cert ? { cert: nodeFs.readFileSync(cert.cert), key: nodeFs.readFileSync(cert.key) } : {}),
            },
            (res) => {
              let body = "";
              res.on("data", (d: Buffer) => (body += d.toString()));
              res.on("end", () => resolve({ status: res.statusCode!, body }));
            },
          );
          req.on("error", reject);
          req.end();
        });
      const withPassword = await get({ authorization: basic("alice", "s3cret") });
      expect(withPassword.status).toBe(200);
      expect(JSON.parse(withPassword.body)).toMatchObject({ principal: "User:alice" });
      const withCert = await get({}, client);
      expect(withCert.status).toBe(200);
      expect(JSON.parse(withCert.body)).toMatchObject({ principal: "User:carol" });
      expect((await get({})).status).toBe(401);
    } finally {
      rmTmp(dir);
    }
  });

  it("names http.listen when the address cannot be bound", async () => {
    const url = await start();
    const port = new URL(url).port;
    await expect(
      HttpListener.start({ listen: `127.0.0.1:${port}`, metrics, health: () => ({ live: true, notReady: null }) }),
    ).rejects.toThrow(/http\.listen: cannot listen on 127\.0\.0\.1:\d+/);
  });
});
