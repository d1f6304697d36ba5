/**
 * The README's tour — its shell commands and its programs — run against real brokers, so the
 * README cannot drift from the CLI or the SDK.
 */
import { execFile } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** Each "sent order i to partition p" line must follow Kafka's murmur2 of key customer-(i % 3). */
function checkSent(out: string): void {
  const sent = [...out.matchAll(/sent order (\d+) to partition (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  expect(sent.length).toBe(10);
  for (const [i, p] of sent) expect(p).toBe(partitionForKey(Buffer.from(`customer-${i! % 3}`), 6));
}

beforeAll(async () => {
  dir = tmpDir();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
});

afterAll(async () => {
  await broker.close();
  rmTmp(dir);
});

describe("README tour", () => {
  it("examples/orders.ts produces and consumes keyed orders", async () => {
    const out = await run(path.resolve("node_modules/.bin/bun"), ["examples/orders.ts"], { RILL_BOOTSTRAP: broker.address });
    checkSent(out);
    expect(out.match(/^partition \d offset \d+ key customer-\d \{/gm)!.length).toBe(10);
  });

  it("examples/orders.py does the same through stubs generated from proto/", async () => {
    const gen = tmpDir("rill-pygen-");
    try {
      await run("/usr/bin/protoc", [
        "-Iproto",
        `--python_out=${gen}`,
        `--grpc_python_out=${gen}`,
        "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
        ...nodeFs.readdirSync("proto/rill/v1").map((f) => `proto/rill/v1/${f}`),
      ]);
      const out = await run("/usr/bin/python3", ["examples/orders.py", broker.address], { PYTHONPATH: gen, PYTHONNOUSERSITE: "1" });
      checkSent(out);
      expect(out.match(/^partition \d offset \d+ key customer-\d \{/gm)!.length).toBe(20); // TS's 10 and Python's 10
    } finally {
      rmTmp(gen);
    }
  });
});

/** The commands of the README's first ```sh block under "## A tour", one per line, comments dropped. */
function tourCommands(): string[] {
  const readme = nodeFs.readFileSync("README.md", "utf8");
  const tour = readme.slice(readme.indexOf("## A tour"));
  const block = /```sh\n([\s\S]*?)```/.exec(tour)?.[1] ?? "";
  return block
    .split("\n")
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => l !== "");
}

describe("README tour, shell", () => {
  let tourDir: string;
  let tourBroker: Broker;

  beforeAll(async () => {
    tourDir = tmpDir("rill-tour-");
    tourBroker = await Broker.start({ dataDir: tourDir, listen: "127.0.0.1:0" });
  });

  afterAll(async () => {
    await tourBroker.close();
    rmTmp(tourDir);
  });

  it("runs every command as written; each consume prints the records it asks for, then exits", async () => {
    const commands = tourCommands();
    expect(commands.length).toBeGreaterThanOrEqual(6);
    expect(commands.some((c) => c.includes("--group"))).toBe(true);
    const env = { RILL_BOOTSTRAP: tourBroker.address, RILL_RUNTIME: "" };
    for (const command of commands) {
      // A consume that waits for records that never come is killed, failing the test with its name.
      const out = await run("sh", ["-c", command], env, 20_000);
      const n = / consume .*-n (\d+)/.exec(command)?.[1];
      if (n !== undefined) expect(out.trimEnd().split("\n"), command).toHaveLength(Number(n));
    }
    // The group step run again: everything is committed, so it prints nothing and exits at the
    // end of the partitions (-e) instead of waiting for new records (the step that waited forever).
    const groupStep = commands.find((c) => c.includes("--group"))!;
    expect(groupStep).toMatch(/ -e\b/);
    expect(await run("sh", ["-c", groupStep], env, 20_000)).toBe("");
    const described = await run("sh", ["-c", "./bin/rill group describe order-processing --json"], env, 20_000);
    // The group read (and committed) both records the tour produced: nothing is left behind.
    const group = JSON.parse(described) as { offsets: { committedOffset: number; lag: number }[] };
    expect(group.offsets.reduce((sum, o) => sum + o.committedOffset, 0)).toBe(2);
    expect(group.offsets.every((o) => o.lag === 0)).toBe(true);
  }, 120_000);
});

/** The commands of the README's first ```sh block under "## Kafka clients", comments dropped. */
function kafkaCommands(): string[] {
  const readme = nodeFs.readFileSync("README.md", "utf8");
  const section = readme.slice(readme.indexOf("## Kafka clients"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? "";
  return block
    .split("\n")
    .map((l) => l.replace(/\s+# .*$/, "").trim())
    .filter((l) => l !== "");
}

describe("README Kafka clients, shell", () => {
  let kDir: string;
  let kBroker: Broker;

  beforeAll(async () => {
    kDir = tmpDir("rill-kafka-readme-");
    kBroker = await Broker.start({ dataDir: kDir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0" } });
  });

  afterAll(async () => {
    await kBroker.close();
    rmTmp(kDir);
  });

  it("runs kcat and rill as written (at the test broker's addresses): what kcat produced is read by kcat and over gRPC", async () => {
    const commands = kafkaCommands();
    expect(commands).toHaveLength(4);
    const env = { RILL_BOOTSTRAP: kBroker.address, RILL_RUNTIME: "" };
    const outs: string[] = [];
    for (const command of commands) {
      outs.push(await run("sh", ["-c", command.replaceAll("127.0.0.1:9092", kBroker.kafkaAddress as string)], env, 30_000));
    }
    expect(outs[0]).toContain("1 brokers:");
    expect(outs[2]?.trim().split("\n")).toEqual(["k1=hello p0 o0", "k2=world p0 o1"]);
    expect(outs[3]?.trim().split("\n")).toEqual(["k1\thello", "k2\tworld"]);
  }, 120_000);
});
