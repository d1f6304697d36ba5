/**
 * The SDK as an npm user gets it: `npm pack` of packages/client (its prepack builds dist with
 * scripts/build-client.ts), installed from the tarball into a new project with no TypeScript and
 * no broker dependencies; there a plain JavaScript program — an Admin, a Producer (LZ4, whose
 * optional package the project installs) and a GroupConsumer that reads every record and commits
 * — runs under Node, Bun and Deno against a broker in this process, and tsc typechecks a
 * TypeScript file against the shipped `.d.ts`.
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin, Producer } from "../../src/client/index.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const PACKAGE = path.join(ROOT, "packages/client");
const RECORDS = 30;
const PARTITIONS = 3;

/** The root package's broker-only dependencies: none may reach an SDK user. */
const BROKER_ONLY = [
  "pino",
  "pino-pretty",
  "zod",
  "commander",
  "prom-client",
  "hdr-histogram-js",
  "esbuild",
  "grpc-health-check",
  "@grpc/reflection",
];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `cmd` in `cwd` (no npm_* variables of an enclosing `npm test`), bounded by `timeoutMs`. */
function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.toLowerCase().startsWith("npm_")) env[k] = v;
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function expectOk(r: Run, what: string): void {
  expect(r.code, `${what}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
}

/** The program the test project runs (plain JavaScript, as a user writes it): prints one JSON line. */
const PROGRAM = `
import process from "node:process";
import { Admin, GroupAdmin, GroupConsumer, Producer, RillError } from "@rill/client";

const [bootstrap, runtime] = process.argv.slice(2);
const topic = "orders-" + runtime;
const groupId = "processing-" + runtime;
const admin = new Admin({ bootstrap });
await admin.createTopics([{ name: topic, partitions: ${PARTITIONS} }]);
for (let i = 0; ; i++) {
  const [t] = await admin.describeTopics([topic]);
  if (t.partitions.every((p) => p.leader >= 0)) break;
  if (i === 200) throw new Error("no leaders for " + topic);
  await new Promise((r) => setTimeout(r, 25));
}

let snappy = null;
try {
  new Producer({ bootstrap, compression: "snappy" });
} catch (e) {
  snappy = { rill: e instanceof RillError, kind: e.kind?.name, message: e.message };
}

const producer = new Producer({ bootstrap, compression: "lz4" });
const sent = await Promise.all(
  Array.from({ length: ${RECORDS} }, (_, i) =>
    producer.send({ topic, key: "order-" + i, value: JSON.stringify({ id: i, amount: i * 3 }), headers: [{ key: "runtime", value: runtime }] }),
  ),
);
await producer.close();

const consumer = new GroupConsumer({ bootstrap, groupId, autoOffsetReset: "earliest", autoCommit: false });
consumer.subscribe([topic]);
const received = [];
const watchdog = setTimeout(() => void consumer.close(), 30_000);
for await (const r of consumer) {
  received.push({ partition: r.partition, offset: r.offset, key: r.key.toString(), id: JSON.parse(r.value.toString()).id, header: r.headers[0]?.value?.toString() });
  if (received.length === ${RECORDS}) break;
}
clearTimeout(watchdog);
await consumer.commit();
await consumer.close();

const groups = new GroupAdmin({ bootstrap });
const committed = await groups.fetchOffsets(groupId);
await groups.close();
await admin.close();
console.log(JSON.stringify({ runtime, sent, received, committed, snappy }));
`;

/** Reads partition 0 of a topic the test wrote with snappy, which the project did not install. */
const READ_SNAPPY = `
import process from "node:process";
import { Consumer } from "@rill/client";

const [bootstrap, topic] = process.argv.slice(2);
const skipped = [];
const consumer = new Consumer({ bootstrap, skipCorrupt: true, onCorrupt: (r) => skipped.push(r.offset) });
consumer.assign([{ topic, partition: 0, offset: "earliest" }]);
let error = null;
const read = [];
try {
  for await (const r of consumer) read.push(r.offset);
} catch (e) {
  error = { kind: e.kind?.name, message: e.message };
}
await consumer.close();
console.log(JSON.stringify({ error, read, skipped }));
`;

/** Typechecked against the shipped .d.ts; each @ts-expect-error fails the check if the types were \`any\`. */
const TYPED = `
import { Admin, GroupConsumer, Producer, RillError, type ConsumerRecord, type GroupConsumerOptions, type ProducerOptions, type RecordMetadata } from "@rill/client";

const options: ProducerOptions = { bootstrap: "127.0.0.1:50051", compression: "lz4", lingerMs: 5, acks: "all" };
const producer = new Producer(options);
const meta: RecordMetadata = await producer.send({ topic: "orders", key: "k", value: Buffer.from("v"), headers: [{ key: "h", value: "x" }] });
const next: number = meta.offset + 1;
const admin = new Admin({ bootstrap: "127.0.0.1:50051" });
const topics: { name: string; partitions: number }[] = await admin.listTopics();
const groupOptions: GroupConsumerOptions = { groupId: "g", autoOffsetReset: "earliest" };
const consumer = new GroupConsumer(groupOptions);
consumer.subscribe(["orders"]);
for await (const r of consumer) {
  const record: ConsumerRecord = r;
  const value: string | undefined = record.value?.toString();
  console.log(next, topics.length, value, record.partition, record.offset);
}
const e: unknown = null;
if (e instanceof RillError) console.log(e.kind.name, e.kind.retriable);

// @ts-expect-error compression is one of the codec names
new Producer({ compression: "brotli" });
// @ts-expect-error a record needs a topic
void producer.send({ value: "v" });
// @ts-expect-error offsets are numbers
const wrong: string = meta.offset;
console.log(wrong);
`;

let dir: string;
let app: string;
let broker: Broker;
let packed: { filename: string; files: { path: string }[] };
let installed: string[];
/** tsc over typed.ts, started once the package is installed (it runs while the runtimes do). */
let typecheck: Promise<Run>;

beforeAll(async () => {
  const started = Date.now();
  dir = tmpDir("rill-client-package-");
  app = path.join(dir, "app");
  nodeFs.mkdirSync(app);
  broker = await Broker.start({ dataDir: path.join(dir, "data"), listen: "127.0.0.1:0" });

  const pack = await run("npm", ["pack", "--json", "--pack-destination", dir], PACKAGE, 120_000);
  expectOk(pack, "npm pack");
  packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0]!;

  nodeFs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  const lz4 = (JSON.parse(nodeFs.readFileSync(path.join(ROOT, "node_modules/lz4-napi/package.json"), "utf8")) as { version: string })
    .version;
  const install = await run(
    "npm",
    ["install", path.join(dir, packed.filename), `lz4-napi@${lz4}`, "--prefer-offline", "--no-audit", "--no-fund"],
    app,
    120_000,
  );
  expectOk(install, "npm install of the tarball");
  installed = nodeFs
    .readdirSync(path.join(app, "node_modules"))
    .flatMap((d) => (d.startsWith("@") ? nodeFs.readdirSync(path.join(app, "node_modules", d)).map((s) => `${d}/${s}`) : [d]))
    .filter((d) => !d.startsWith("."));
  nodeFs.writeFileSync(path.join(app, "roundtrip.mjs"), PROGRAM);
  nodeFs.writeFileSync(path.join(app, "read-snappy.mjs"), READ_SNAPPY);
  nodeFs.writeFileSync(path.join(app, "typed.ts"), TYPED);
  nodeFs.writeFileSync(
    path.join(app, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        typeRoots: [path.join(ROOT, "node_modules/@types")],
        types: ["node"],
      },
      files: ["typed.ts"],
    }),
  );
  typecheck = run(process.execPath, [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app, 120_000);
  typecheck.catch(() => undefined); // awaited by its test
  console.log(`client-package: packed and installed in ${Date.now() - started} ms`);
}, 240_000);

afterAll(async () => {
  await broker?.close();
  if (dir !== undefined) rmTmp(dir);
});

describe("@rill/client from its npm tarball", () => {
  it("ships compiled JavaScript with .d.ts and the README, no TypeScript sources, nothing of the broker", () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", "dist/client/index.js", "dist/client/index.d.ts"]));
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    const tops = new Set(files.filter((f) => f.startsWith("dist/")).map((f) => f.split("/")[1]));
    expect([...tops].sort()).toEqual(["base", "client", "gen", "protocol"]);
    const manifest = JSON.parse(nodeFs.readFileSync(path.join(app, "node_modules/@rill/client/package.json"), "utf8")) as {
      version: string;
      dependencies: Record<string, string>;
    };
    const root = JSON.parse(nodeFs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(manifest.version).toBe(root.version);
    expect(Object.keys(manifest.dependencies).sort()).toEqual(["@bufbuild/protobuf", "@grpc/grpc-js"]);
  });

  it("installs only client dependencies: no broker packages, no TypeScript, no snappy or zstd unless asked for", () => {
    expect(installed).toEqual(
      expect.arrayContaining(["@rill/client", "@grpc/grpc-js", "@bufbuild/protobuf", "@node-rs/crc32", "lz4-napi"]),
    );
    for (const p of [...BROKER_ONLY, "typescript", "snappy", "@bokuweb/zstd-wasm"]) expect(installed, p).not.toContain(p);
  });

  describe.each([
    ["node", () => [process.execPath, "roundtrip.mjs"]],
    ["bun", () => [path.join(ROOT, "node_modules/.bin/bun"), "roundtrip.mjs"]],
    ["deno", () => [path.join(ROOT, "node_modules/.bin/deno"), "run", "-A", "roundtrip.mjs"]],
  ])("under %s", (runtime, command) => {
    it("a producer sends 30 keyed records with LZ4 and a group consumer reads each once, in order per partition, and commits", async () => {
      const [cmd, ...args] = command();
      const r = await run(cmd!, [...args, broker.address, runtime], app, 60_000);
      expectOk(r, `${runtime} roundtrip.mjs`);
      const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
        sent: { partition: number; offset: number }[];
        received: { partition: number; offset: number; key: string; id: number; header: string }[];
        committed: { topic: string; partition: number; offset: number }[];
        snappy: { rill: boolean; kind: string; message: string } | null;
      };
      expect(out.sent).toHaveLength(RECORDS);
      expect(out.received.map((x) => x.id).sort((a, b) => a - b)).toEqual(Array.from({ length: RECORDS }, (_, i) => i));
      expect(out.received.every((x) => x.key === `order-${x.id}` && x.header === runtime)).toBe(true);
      for (let p = 0; p < PARTITIONS; p++) {
        const offsets = out.received.filter((x) => x.partition === p).map((x) => x.offset);
        expect(offsets, `partition ${p}`).toEqual(offsets.map((_, i) => i));
        const end = out.sent.filter((x) => x.partition === p).length;
        expect(out.committed.find((c) => c.partition === p)?.offset, `committed offset of partition ${p}`).toBe(end);
      }
      // snappy is an optional peer the project did not install: refused at construction, naming the package.
      expect(out.snappy).toEqual({
        rill: true,
        kind: "UNSUPPORTED_COMPRESSION_TYPE",
        message: "compression: snappy: the npm package snappy is not installed (npm install snappy)",
      });
    }, 90_000);
  });

  it("a batch of a codec whose package is missing throws UNSUPPORTED_COMPRESSION_TYPE naming it, and is not skipped as corrupt", async () => {
    const admin = new Admin({ bootstrap: broker.address });
    const producer = new Producer({ bootstrap: broker.address, compression: "snappy" });
    try {
      await admin.createTopics([{ name: "written-with-snappy", partitions: 1 }]);
      await producer.send({ topic: "written-with-snappy", value: "compressed by the broker's side" });
    } finally {
      await producer.close();
      await admin.close();
    }
    const r = await run(process.execPath, ["read-snappy.mjs", broker.address, "written-with-snappy"], app, 60_000);
    expectOk(r, "read-snappy.mjs");
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).toEqual({
      error: {
        kind: "UNSUPPORTED_COMPRESSION_TYPE",
        message:
          "written-with-snappy-0: the batch at offset 0 cannot be read: snappy: the npm package snappy is not installed (npm install snappy)",
      },
      read: [],
      skipped: [],
    });
  }, 90_000);

  it("typechecks a TypeScript program against the shipped .d.ts (tsc from the repository, strict, libraries checked)", async () => {
    expectOk(await typecheck, "tsc");
  }, 90_000);
});
