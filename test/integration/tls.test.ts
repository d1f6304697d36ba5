/**
 * TLS on the client listener (`tls.*`), with certificates made by /usr/bin/openssl in a temporary
 * folder: SDK clients and the `rill` CLI produce and consume over TLS; a plaintext client, a
 * client trusting another CA and a client facing an expired certificate are refused;
 * `tls.client.auth` require/request; certificates rotated on disk are served to new connections
 * without a restart, by an in-process broker and by `rill broker start` under Bun (the default
 * runtime); a half-done rotation is not taken; bad files fail the start with INVALID_CONFIG.
 *
 * Every client connects to 127.0.0.1 and names the server `localhost` (the certificates' DNS
 * name; Bun's TLS refuses an IP address as the server name).
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RillError } from "../../src/base/errors.ts";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import type { ClientOptions } from "../../src/client/connection.ts";
import { Consumer } from "../../src/client/consumer.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import type { BrokerConfig } from "../../src/config/schema.ts";
import { type CertFiles, TestPki, rotate } from "../fixtures/test-pki.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const SERVER_NAME = "localhost";
/** How long a rotation may take to show (the files are checked every second). */
const ROTATION_WAIT_MS = 20_000;

let dir: string;
let pki: TestPki;
let ca: CertFiles;
let otherCa: CertFiles;
let server: CertFiles;
let client: CertFiles;
let otherClient: CertFiles;
let expiredServer: CertFiles;
let expiredClient: CertFiles;
const brokers: Broker[] = [];
const children: ChildProcess[] = [];

beforeAll(() => {
  dir = tmpDir("rill-tls-");
  pki = new TestPki(path.join(dir, "pki"));
  ca = pki.ca("test-ca");
  otherCa = pki.ca("other-ca");
  server = pki.leaf(ca, { cn: SERVER_NAME, san: "DNS:localhost", serial: 1001 });
  client = pki.leaf(ca, { cn: "alice", serial: 2001 });
  otherClient = pki.leaf(otherCa, { cn: "mallory", serial: 3001 });
  expiredServer = pki.leaf(ca, { cn: SERVER_NAME, san: "DNS:localhost", serial: 4001, expired: true });
  expiredClient = pki.leaf(ca, { cn: "bob", serial: 4002, expired: true });
});

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const b of brokers) await b.close();
  rmTmp(dir);
});

/** A broker on 127.0.0.1 with `config` (the TLS keys). */
async function startBroker(config: Partial<BrokerConfig>): Promise<Broker> {
  const b = await Broker.start({ dataDir: tmpDir("rill-tls-data-"), listen: "127.0.0.1:0", config });
  brokers.push(b);
  return b;
}

/** Client options reaching `address` with `tls`, failing fast. */
function options(address: string, tlsOptions: ClientOptions["tls"]): ClientOptions {
  return {
    bootstrap: address,
    tls: tlsOptions,
    retry: { retries: 1, initialBackoffMs: 50, backoffMsMax: 50 },
    requestTimeoutMs: 5_000,
  };
}

/** What `describeCluster` through `opts` ends with: "ok", or the error's message. */
async function attempt(opts: ClientOptions): Promise<string> {
  const admin = new Admin(opts);
  try {
    await admin.describeCluster();
    return "ok";
  } catch (e) {
    return (e as Error).message;
  } finally {
    await admin.close();
  }
}

/** The serial number of the certificate a new TLS connection to `port` is served (hex, as Node prints it). */
function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, servername: SERVER_NAME, ALPNProtocols: ["h2"], rejectUnauthorized: false },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial);
      },
    );
    socket.on("error", reject);
  });
}

/** Polls `servedSerial` until it is `want` (or ROTATION_WAIT_MS pass). */
async function waitForSerial(port: number, want: string): Promise<string> {
  const deadline = Date.now() + ROTATION_WAIT_MS;
  let seen = await servedSerial(port);
  while (seen !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    seen = await servedSerial(port);
  }
  return seen;
}

const portOf = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1));
const serialHex = (n: number): string => n.toString(16).toUpperCase().padStart(4, "0");

/** Produces `values` to a new one-partition `topic` and reads them back, all through `opts`. */
async function roundTrip(opts: ClientOptions, topic: string, values: string[]): Promise<string[]> {
  const admin = new Admin(opts);
  const producer = new Producer(opts);
  const consumer = new Consumer({ ...opts, autoOffsetReset: "earliest" });
  try {
    await admin.createTopics([{ name: topic, partitions: 1 }]);
    await Promise.all(values.map((v) => producer.send({ topic, value: v })));
    consumer.assign([{ topic, partition: 0 }]);
    const got: string[] = [];
    for await (const r of consumer) {
      got.push(r.value!.toString());
      if (got.length === values.length) break;
    }
    return got;
  } finally {
    await consumer.close();
    await producer.close();
    await admin.close();
  }
}

describe("a TLS client listener", () => {
  let address: string;
  beforeAll(async () => {
    address = (await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key })).address;
  });

  it("serves SDK clients that trust its CA: produce and consume", async () => {
    const values = Array.from({ length: 20 }, (_, i) => `v${i}`);
    expect(await roundTrip(options(address, { ca: ca.cert, serverName: SERVER_NAME }), "tls-sdk", values)).toEqual(values);
  });

  it("serves the group clients over TLS too: GroupConsumer.run and GroupAdmin (issue 18: every client class takes tls)", async () => {
    const opts = options(address, { ca: ca.cert, serverName: SERVER_NAME });
    const values = ["g0", "g1", "g2"];
    await roundTrip(opts, "tls-group", values);
    const consumer = new GroupConsumer({ ...opts, groupId: "tls-g", autoOffsetReset: "earliest" });
    const groupAdmin = new GroupAdmin(opts);
    try {
      consumer.subscribe(["tls-group"]);
      const got: string[] = [];
      let done: () => void = () => undefined;
      const all = new Promise<void>((r) => {
        done = r;
      });
      const running = consumer.run({
        commit: "message",
        eachMessage: ({ message }) => {
          got.push(message.value!.toString());
          if (got.length === values.length) done();
        },
      });
      await all;
      await consumer.close();
      await running;
      expect(got).toEqual(values);
      expect((await groupAdmin.fetchOffsets("tls-g")).map((o) => o.offset)).toEqual([3]);
    } finally {
      await consumer.close();
      await groupAdmin.close();
    }
  });

  it("takes the CA as PEM contents as well as a file path", async () => {
    expect(await attempt(options(address, { ca: nodeFs.readFileSync(ca.cert), serverName: SERVER_NAME }))).toBe("ok");
    expect(await attempt(options(address, { ca: nodeFs.readFileSync(ca.cert, "utf8"), serverName: SERVER_NAME }))).toBe("ok");
  });

  it("refuses a plaintext client", async () => {
    expect(await attempt(options(address, undefined))).toMatch(/cannot reach broker/);
  });

  it("is refused by a client that trusts another CA", async () => {
    expect(await attempt(options(address, { ca: otherCa.cert, serverName: SERVER_NAME }))).toMatch(
      /cannot reach broker at .*: TLS: the broker's certificate is not signed by a trusted CA/,
    );
  });

  it("is refused by a client expecting another server name", async () => {
    expect(await attempt(options(address, { ca: ca.cert, serverName: "broker.example" }))).toMatch(
      /cannot reach broker at .*: TLS: the broker's certificate is not for this name \(tls.serverName\): Host: broker.example. is not in the cert's altnames: DNS:localhost$/,
    );
  });

  it("serves the rill CLI (under Bun): topic create, produce, consume", async () => {
    const tlsFlags = ["--bootstrap", address, "--tls-ca", ca.cert, "--tls-server-name", SERVER_NAME];
    expect(await rill([...tlsFlags, "topic", "create", "tls-cli", "--partitions", "1"])).toMatchObject({ code: 0, stderr: "" });
    expect(await rill([...tlsFlags, "produce", "tls-cli"], "one\ntwo\nthree\n")).toMatchObject({ code: 0, stderr: "" });
    const consumed = await rill([...tlsFlags, "consume", "tls-cli", "--from-beginning", "-n", "3"]);
    expect(consumed).toMatchObject({ code: 0, stdout: "one\ntwo\nthree\n" });
    const plaintext = await rill(["--bootstrap", address, "topic", "list"]);
    expect(plaintext.code).toBe(1);
    expect(plaintext.stderr).toMatch(/^rill: cannot reach broker/);
    // Bun refuses an IP address as the server name: the error says what to give instead.
    const byIp = await rill(["--bootstrap", address, "--tls-ca", ca.cert, "topic", "list"]);
    expect(byIp.code).toBe(1);
    expect(byIp.stderr).toMatch(/^rill: cannot reach broker at .*: TLS: this runtime refuses an IP address as the TLS server name/);
  });

  it("a TLS client of a plaintext listener is told the listener does not speak TLS", async () => {
    const plain = await startBroker({});
    expect(await attempt(options(plain.address, { ca: ca.cert, serverName: SERVER_NAME }))).toMatch(
      /cannot reach broker at .*: TLS: the broker does not speak TLS here/,
    );
  });
});

describe("an expired certificate", () => {
  it("served by the broker: clients refuse the connection", async () => {
    const b = await startBroker({ tlsCertFile: expiredServer.cert, tlsKeyFile: expiredServer.key });
    expect(await attempt(options(b.address, { ca: ca.cert, serverName: SERVER_NAME }))).toMatch(
      /cannot reach broker at .*: TLS: the broker's certificate has expired/,
    );
  });

  it("presented by a client (tls.client.auth=require): the broker refuses it", async () => {
    const b = await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key, tlsCaFile: ca.cert, tlsClientAuth: "require" });
    const expired = { ca: ca.cert, cert: expiredClient.cert, key: expiredClient.key, serverName: SERVER_NAME };
    expect(await attempt(options(b.address, expired))).toMatch(/cannot reach broker/);
    expect(await attempt(options(b.address, { ...expired, cert: client.cert, key: client.key }))).toBe("ok");
  });
});

describe("tls.client.auth", () => {
  it("require: refuses a client without a certificate or with one of another CA, serves one with a certificate of tls.ca.file", async () => {
    const b = await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key, tlsCaFile: ca.cert, tlsClientAuth: "require" });
    const base = { ca: ca.cert, serverName: SERVER_NAME };
    expect(await attempt(options(b.address, base))).toMatch(/cannot reach broker at .*: TLS: the broker requires a client certificate/);
    expect(await attempt(options(b.address, { ...base, cert: otherClient.cert, key: otherClient.key }))).toMatch(/cannot reach broker/);
    const values = ["a", "b", "c"];
    expect(await roundTrip(options(b.address, { ...base, cert: client.cert, key: client.key }), "mtls", values)).toEqual(values);
    const cli = await rill(
      [
        "--bootstrap",
        b.address,
        "--tls-ca",
        ca.cert,
        "--tls-cert",
        client.cert,
        "--tls-key",
        client.key,
        "--tls-server-name",
        SERVER_NAME,
      ].concat(["consume", "mtls", "--from-beginning", "-n", "3"]),
    );
    expect(cli).toMatchObject({ code: 0, stdout: "a\nb\nc\n" });
  });

  it("request: serves clients with and without a certificate", async () => {
    const b = await startBroker({ tlsCertFile: server.cert, tlsKeyFile: server.key, tlsCaFile: ca.cert, tlsClientAuth: "request" });
    const base = { ca: ca.cert, serverName: SERVER_NAME };
    expect(await attempt(options(b.address, base))).toBe("ok");
    expect(await attempt(options(b.address, { ...base, cert: client.cert, key: client.key }))).toBe("ok");
  });
});

describe("certificate rotation without restart", () => {
  it("an in-process broker serves new connections the replaced certificate; a mismatched pair is not taken", async () => {
    const live = { cert: path.join(dir, "live.pem"), key: path.join(dir, "live.key") };
    rotate(live, server);
    const warnings: string[] = [];
    const log = { info() {}, warn: (_o: object, msg?: string) => void warnings.push(msg ?? ""), error() {} };
    const b = await Broker.start({
      dataDir: tmpDir("rill-tls-data-"),
      listen: "127.0.0.1:0",
      config: { tlsCertFile: live.cert, tlsKeyFile: live.key },
      log,
    });
    brokers.push(b);
    const port = portOf(b.address);
    const opts = options(b.address, { ca: ca.cert, serverName: SERVER_NAME });
    expect(await servedSerial(port)).toBe(serialHex(1001));

    // A client connected before the rotation keeps working through it.
    const admin = new Admin(opts);
    await admin.describeCluster();

    // Half a rotation: a new certificate whose key is not the one on disk. Not taken.
    const next = pki.leaf(ca, { cn: SERVER_NAME, san: "DNS:localhost", serial: 1002 });
    nodeFs.copyFileSync(next.cert, `${live.cert}.new`);
    nodeFs.renameSync(`${live.cert}.new`, live.cert);
    const deadline = Date.now() + ROTATION_WAIT_MS;
    while (warnings.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(warnings[0]).toMatch(/not taken/);
    expect(await servedSerial(port)).toBe(serialHex(1001));
    expect(await attempt(opts)).toBe("ok");

    // The key follows: the pair matches and new connections get it.
    rotate(live, next);
    expect(await waitForSerial(port, serialHex(1002))).toBe(serialHex(1002));
    expect(await attempt(opts)).toBe("ok");
    await admin.describeCluster();
    await admin.close();
  });

  it("rill broker start under Bun serves the replaced certificate to new connections", async () => {
    const live = { cert: path.join(dir, "bun-live.pem"), key: path.join(dir, "bun-live.key") };
    rotate(live, server);
    const { address } = await startBunBroker(["--tls-cert", live.cert, "--tls-key", live.key]);
    const port = portOf(address);
    const opts = options(address, { ca: ca.cert, serverName: SERVER_NAME });
    expect(await servedSerial(port)).toBe(serialHex(1001));
    expect(await roundTrip(opts, "bun-before", ["x", "y"])).toEqual(["x", "y"]);

    rotate(live, pki.leaf(ca, { cn: SERVER_NAME, san: "DNS:localhost", serial: 1003 }));
    expect(await waitForSerial(port, serialHex(1003))).toBe(serialHex(1003));
    expect(await roundTrip(opts, "bun-after", ["z"])).toEqual(["z"]);
    expect(await attempt(options(address, undefined))).toMatch(/cannot reach broker/);
  });
});

describe("bad TLS configuration", () => {
  it("Broker.start: an unreadable file fails with INVALID_CONFIG naming the key, and the directory is released", async () => {
    const dataDir = tmpDir("rill-tls-data-");
    const missing = path.join(dir, "missing.pem");
    const start = Broker.start({ dataDir, listen: "127.0.0.1:0", config: { tlsCertFile: missing, tlsKeyFile: server.key } });
    await expect(start).rejects.toThrow(RillError);
    await expect(start).rejects.toThrow(/^tls\.cert\.file: cannot read .*missing\.pem/);
    const wrongKey = Broker.start({ dataDir, listen: "127.0.0.1:0", config: { tlsCertFile: server.cert, tlsKeyFile: client.key } });
    await expect(wrongKey).rejects.toThrow(/^tls\.key\.file: the private key .* does not match/);
    const b = await Broker.start({ dataDir, listen: "127.0.0.1:0" });
    await b.close();
    rmTmp(dataDir);
  });

  it("rill broker start: exits 1 with one line naming the key", async () => {
    const dataDir = tmpDir("rill-tls-data-");
    const noKey = await rill(["broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", server.cert]);
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toMatch(/^rill: configuration: tls\.key\.file: must be set with tls\.cert\.file\n$/);
    const noCa = await rill(
      ["broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--tls-cert", server.cert, "--tls-key", server.key],
      "",
      { RILL_TLS_CLIENT_AUTH: "require" },
    );
    expect(noCa.code).toBe(1);
    expect(noCa.stderr).toMatch(/^rill: configuration: tls\.client\.auth: require needs tls\.ca\.file/);
    const notPem = await rill([
      "broker",
      "start",
      "--data-dir",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--tls-cert",
      server.key,
      "--tls-key",
      server.key,
    ]);
    expect(notPem.code).toBe(1);
    expect(notPem.stderr).toMatch(/^rill: tls\.cert\.file: not a PEM certificate/);
    rmTmp(dataDir);
  });
});

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/rill args` (Bun) with `stdin`, killed after 30 s. */
function rill(args: readonly string[], stdin = "", env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const e: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete e["RILL_RUNTIME"];
    const proc = spawn(RILL, args, { cwd: ROOT, env: e, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(stdin);
  });
}

/** Starts `rill broker start` under Bun with `flags` and waits for its "broker started" line. */
function startBunBroker(flags: readonly string[]): Promise<{ address: string }> {
  const dataDir = tmpDir("rill-tls-bun-");
  const proc = spawn(BUN, ["src/cli/main.ts", "broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", ...flags], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(proc);
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "broker started" within 30 s:\n${lines.join("\n")}`)), 30_000);
    let buf = "";
    proc.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.includes('"broker started"')) {
          clearTimeout(timer);
          resolve({ address: (JSON.parse(line) as { address: string }).address });
        }
      }
    });
    proc.stderr.on("data", (d: Buffer) => lines.push(d.toString()));
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before serving:\n${lines.join("\n")}`));
    });
  });
}
