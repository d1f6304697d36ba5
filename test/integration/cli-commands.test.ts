/**
 * The `rill` command (bin/rill, under the package's Bun) against a real broker on 127.0.0.1 with
 * a temporary data directory: topic admin, produce from stdin, consume in text and JSON, and the
 * one-line errors for an unknown topic, a broker that is not running and bad usage.
 */
import { spawn } from "node:child_process";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let dir: string;
let broker: Broker;
let bootstrap: string;

/** Runs `bin/rill args` with `stdin`, killed after `timeoutMs`. */
function rill(args: readonly string[], opts: { stdin?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: bootstrap, ...opts.env };
    delete env["RILL_RUNTIME"];
    const proc = spawn(RILL, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    proc.stdin.end(opts.stdin ?? "");
  });
}

/** Asserts a failed command printed exactly one `rill: ...` line and no stack trace. */
function expectOneErrorLine(r: Result, pattern: RegExp): void {
  expect(r.code).toBe(1);
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^rill: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  dir = tmpDir("rill-cli-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  bootstrap = broker.address;
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("rill topic", () => {
  it("creates, lists, describes, alters and deletes a topic", async () => {
    const created = await rill(["topic", "create", "orders", "--partitions", "6", "--config", "retention.ms=600000"]);
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toBe("Created topic orders (6 partitions, replication factor 1).\n");

    expect((await rill(["topic", "list"])).stdout.split("\n")).toContain("orders");

    const described = await rill(["topic", "describe", "orders"]);
    expect(described.code).toBe(0);
    const lines = described.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe("Topic: orders\tPartitions: 6\tReplicationFactor: 1\tConfigs: retention.ms=600000");
    expect(lines.indexOf("")).toBe(7); // 6 partitions, then every effective config (cli-tools.test.ts)
    expect(lines[1]).toBe("\tPartition: 0\tLeader: 1\tReplicas: 1\tIsr: 1\tElr: \tLastKnownElr: \tLogStartOffset: 0\tHighWatermark: 0");

    expect((await rill(["topic", "alter", "orders", "--config", "cleanup.policy=compact", "--delete-config", "retention.ms"])).stdout).toBe(
      "Altered topic orders.\n",
    );
    const json = JSON.parse((await rill(["topic", "describe", "orders", "--json"])).stdout) as {
      configs: Record<string, string>;
      partitions: unknown[];
    };
    expect(json.configs).toEqual({ "cleanup.policy": "compact" });
    expect(json.partitions).toHaveLength(6);

    expect((await rill(["topic", "create", "orders", "--if-not-exists"])).code).toBe(0);
    expectOneErrorLine(await rill(["topic", "create", "orders"]), /already exists/);

    expect((await rill(["topic", "delete", "orders"])).stdout).toBe("Deleted topic orders.\n");
    expect((await rill(["topic", "list"])).stdout.split("\n")).not.toContain("orders");
  });

  it("shows the cluster", async () => {
    const r = await rill(["cluster", "status"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^Cluster: \S+\nController: 1 \(127\.0\.0\.1:\d+\)\n\nNODE +ADDRESS .*\n1 +127\.0\.0\.1:\d+ +broker,controller +running +no +leader +\d+ +\d+\n$/,
    );
    const json = JSON.parse((await rill(["cluster", "status", "--json", "--bootstrap", bootstrap])).stdout) as {
      brokers: { address: string }[];
    };
    expect(json.brokers[0]!.address).toBe(bootstrap);
  });
});

describe("rill produce and consume", () => {
  beforeAll(async () => {
    expect((await rill(["topic", "create", "events", "--partitions", "3"])).code).toBe(0);
  });

  const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);

  it("produces keyed lines from stdin and consumes them back as JSON", async () => {
    const input = keys.map((k, i) => `${k}:{"n":${i}}`).join("\n") + "\n";
    const produced = await rill(["produce", "events", "--key-separator", ":", "--compression", "lz4", "--header", "src=cli"], {
      stdin: input,
    });
    expect(produced).toMatchObject({ code: 0, stderr: "" });

    const consumed = await rill(["consume", "events", "--from-beginning", "-n", "30", "--format", "json"]);
    expect(consumed.code).toBe(0);
    const records = consumed.stdout
      .trimEnd()
      .split("\n")
      .map(
        (l) =>
          JSON.parse(l) as {
            topic: string;
            partition: number;
            offset: number;
            timestamp: number;
            key: string;
            value: string;
            headers: unknown[];
          },
      );
    expect(records).toHaveLength(30);
    for (const r of records) {
      expect(r.topic).toBe("events");
      expect(r.partition).toBe(partitionForKey(Buffer.from(r.key), 3));
      expect(r.value).toBe(`{"n":${keys.indexOf(r.key)}}`);
      expect(r.headers).toEqual([{ key: "src", value: "cli" }]);
      expect(typeof r.timestamp).toBe("number");
    }
    for (let p = 0; p < 3; p++) {
      const inP = records.filter((r) => r.partition === p);
      expect(inP.map((r) => r.offset)).toEqual(inP.map((_, i) => i));
      expect(inP.map((r) => keys.indexOf(r.key))).toEqual([...inP.map((r) => keys.indexOf(r.key))].sort((a, b) => a - b));
    }
  });

  it("consumes one partition from an offset as text, with keys", async () => {
    const inP0 = keys.filter((k) => partitionForKey(Buffer.from(k), 3) === 0);
    const r = await rill([
      "consume",
      "events",
      "--partition",
      "0",
      "--offset",
      "1",
      "-n",
      String(inP0.length - 1),
      "--print-key",
      "--key-separator",
      "=",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      inP0
        .slice(1)
        .map((k) => `${k}={"n":${keys.indexOf(k)}}\n`)
        .join(""),
    );
  });

  it("consumes from a timestamp, and stops after --timeout-ms without records", async () => {
    const t = Date.now() + 60_000; // after every record so far
    const r = await rill(["consume", "events", "--timestamp", String(t), "--timeout-ms", "500"]);
    expect(r).toMatchObject({ code: 0, stdout: "" });
  });

  it("sends every line to --partition, and stops at SIGINT while following the log", async () => {
    expect((await rill(["topic", "create", "follow", "--partitions", "2"])).code).toBe(0);
    const proc = spawn(RILL, ["consume", "follow", "--partition", "1"], {
      cwd: ROOT,
      env: { ...process.env, RILL_BOOTSTRAP: bootstrap },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.on("close", resolve));
    await new Promise((r) => setTimeout(r, 1500)); // consuming from the end by now
    expect((await rill(["produce", "follow", "--partition", "1"], { stdin: "a\nb\n" })).code).toBe(0);
    const deadline = Date.now() + 10_000;
    while (out !== "a\nb\n" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(out).toBe("a\nb\n");
    proc.kill("SIGINT");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    expect(await exited).toBe(0);
    clearTimeout(timer);
  });
});

describe("rill errors", () => {
  it("deletes records below an offset (topic delete-records), with zstd and snappy batches produced from stdin", async () => {
    expect((await rill(["topic", "create", "trimmed", "--partitions", "2"])).code).toBe(0);
    for (const codec of ["zstd", "snappy"]) {
      const input = Array.from({ length: 10 }, (_, i) => `${codec}-${i}`).join("\n") + "\n";
      expect(await rill(["produce", "trimmed", "--partition", "0", "--compression", codec], { stdin: input })).toMatchObject({ code: 0 });
    }
    const one = await rill(["topic", "delete-records", "trimmed", "--partition", "0", "--offset", "15"]);
    expect(one).toMatchObject({ code: 0, stdout: "trimmed-0: log start offset 15\n" });
    const consumed = await rill(["consume", "trimmed", "--partition", "0", "--offset", "15", "-n", "5"]);
    expect(consumed.stdout.trimEnd().split("\n")).toEqual(["snappy-5", "snappy-6", "snappy-7", "snappy-8", "snappy-9"]);
    const all = await rill(["topic", "delete-records", "trimmed", "--offset", "-1"]);
    expect(all).toMatchObject({ code: 0, stdout: "trimmed-0: log start offset 20\ntrimmed-1: log start offset 0\n" });
    expectOneErrorLine(
      await rill(["topic", "delete-records", "trimmed", "--partition", "0", "--offset", "21"]),
      /OFFSET_OUT_OF_RANGE|outside/,
    );
    expectOneErrorLine(await rill(["topic", "delete-records", "trimmed", "--partition", "5", "--offset", "1"]), /--partition: 5/);
  });

  it("prints one line for an unknown topic", async () => {
    expectOneErrorLine(await rill(["topic", "describe", "ghost"]), /topic "ghost" does not exist/);
    expectOneErrorLine(await rill(["consume", "ghost", "-n", "1"]), /topic "ghost" does not exist/);
    expectOneErrorLine(await rill(["produce", "ghost"], { stdin: "x\n" }), /topic "ghost" does not exist/);
    expectOneErrorLine(await rill(["topic", "delete", "ghost"]), /ghost/);
  });

  it("prints one line naming the address when no broker is running", async () => {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => s.close(() => resolve()));
    const r = await rill(["topic", "list", "--bootstrap", `127.0.0.1:${port}`]);
    expectOneErrorLine(r, new RegExp(`^rill: cannot reach broker at 127\\.0\\.0\\.1:${port}: connection refused$`));
    const viaEnv = await rill(["consume", "x"], { env: { RILL_BOOTSTRAP: `127.0.0.1:${port}` } });
    expectOneErrorLine(viaEnv, new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it("rejects bad input with one line", async () => {
    expect((await rill(["topic", "create", "x1", "--partitions", "0"])).code).toBe(2);
    const usage = await rill(["consume", "events", "--format", "xml"]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^rill: .*--format.*xml/);
    // A key=value flag without "=": one usage line naming the flag and the form (was: silent exit 2).
    for (const [args, flag] of [
      [["topic", "create", "x2", "--config", "retention.ms"], "--config"],
      [["produce", "events", "--header", "foo"], "--header"],
    ] as const) {
      const r = await rill(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(
        new RegExp(`^rill: option '${flag} <key=value>' argument '.+' is invalid\\. expected ${flag} key=value\\n$`),
      );
    }
    expectOneErrorLine(
      await rill(["produce", "events", "--key-separator", ":"], { stdin: "no separator here\n" }),
      /stdin line 1: no key separator/,
    );
    expectOneErrorLine(await rill(["consume", "events", "--partition", "7"]), /--partition: 7 is not in \[0, 3\)/);
    expectOneErrorLine(await rill(["consume", "events", "--from-beginning", "--offset", "3"]), /at most one of/);
    expectOneErrorLine(await rill(["topic", "create", "bad", "--config", "retention.ms=soon"]), /retention\.ms/);
    expectOneErrorLine(await rill(["topic", "list", "--bootstrap", "nohost"]), /bootstrap: "nohost" is not host:port/);
  });

  // client quotas (issue 13)
  it("sets, lists and removes client quotas; refuses a bad quota with one line", async () => {
    const set = await rill(["quota", "set", "--for-user", "alice", "--producer-byte-rate", "1048576"]);
    expect(set.stderr).toBe("");
    expect(set.stdout).toBe("Set: user=alice producer_byte_rate=1048576.\n");
    expect((await rill(["quota", "set", "--default-user", "--for-client-id", "app", "--consumer-byte-rate", "2048"])).code).toBe(0);
    expect((await rill(["quota", "list"])).stdout).toBe(
      "user=alice producer_byte_rate=1048576\nuser=<default>/client-id=app consumer_byte_rate=2048\n",
    );
    const json = JSON.parse((await rill(["quota", "list", "--for-user", "alice", "--json"])).stdout);
    expect(json).toEqual([{ entity: { user: "alice" }, values: { producer_byte_rate: 1048576 } }]);
    expect((await rill(["quota", "set", "--for-user", "alice", "--remove", "producer_byte_rate"])).stdout).toBe(
      "Set: user=alice producer_byte_rate removed.\n",
    );
    expect((await rill(["quota", "list", "--for-user", "alice"])).stdout).toBe("");
    // bad input: one line each, nothing stored
    expect((await rill(["quota", "set", "--for-user", "bob", "--producer-byte-rate", "-5"])).code).toBe(2);
    expect((await rill(["quota", "set", "--for-user", "bob", "--remove", "request_percentage"])).code).toBe(2);
    expectOneErrorLine(await rill(["quota", "set", "--producer-byte-rate", "10"]), /name an entity/);
    expectOneErrorLine(await rill(["quota", "set", "--for-user", "bob"]), /nothing to change/);
    expectOneErrorLine(await rill(["quota", "set", "--for-user", "", "--producer-byte-rate", "10"]), /entity\.user: empty/);
    expect((await rill(["quota", "list", "--for-user", "bob"])).stdout).toBe("");
  });
});
