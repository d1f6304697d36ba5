/**
 * The broker as users start it — `rill broker start` — under Bun, Node and Deno: each serves a
 * produce/fetch round trip, stops cleanly on SIGTERM, and (under Bun, the default runtime) a
 * kill -9 loses no acknowledged record.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import {
  CreateTopicsRequestSchema,
  type CreateTopicsResponse,
  DescribeTopicsRequestSchema,
  type DescribeTopicsResponse,
} from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { Acks, ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const RUNTIMES: Record<string, () => string[]> = {
  bun: () => [path.join(ROOT, "node_modules/.bin/bun"), "src/cli/main.ts"],
  node: () => {
    const js = path.join(ROOT, "dist/src/cli/main.js");
    if (!nodeFs.existsSync(js)) throw new Error(`${js} is missing: run \`npm run build\` first (scripts/test.sh does)`);
    return [process.execPath, js];
  },
  deno: () => [path.join(ROOT, "node_modules/.bin/deno"), "run", "-A", "src/cli/main.ts"],
};

interface Running {
  proc: ChildProcess;
  address: string;
  lines: string[];
  exited: Promise<number | null>;
}

const started: Running[] = [];

/** Starts `rill broker start` and waits for its "broker started" log line. */
function startBroker(runtime: string, dataDir: string): Promise<Running> {
  const [cmd, ...args] = RUNTIMES[runtime]!();
  const proc = spawn(cmd!, [...args, "broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${runtime}: no "broker started" within 30 s:\n${lines.join("\n")}`)), 30_000);
    let buf = "";
    const onData = (d: Buffer): void => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.includes('"broker started"')) {
          clearTimeout(timer);
          const r = { proc, address: (JSON.parse(line) as { address: string }).address, lines, exited };
          started.push(r);
          resolve(r);
        }
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d: Buffer) => lines.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${runtime}: exited with ${code} before serving:\n${lines.join("\n")}`));
    });
  });
}

afterEach(() => {
  for (const r of started.splice(0)) r.proc.kill("SIGKILL");
});

async function roundTrip(
  address: string,
  topic: string,
  n: number,
  configs: Record<string, string> = {},
): Promise<{ produced: ProduceResponse; fetched: FetchResponse }> {
  const c = clients(address);
  try {
    const made: CreateTopicsResponse = await call(
      c.admin,
      "createTopics",
      create(CreateTopicsRequestSchema, { topics: [{ name: topic, partitions: 1, configs }] }),
    );
    expect(made.topics[0]?.error?.message, `createTopics ${topic}`).toBeUndefined();
    // As a client does, wait until the new partition has a leader before producing to it.
    for (let i = 0; i < 100; i++) {
      const d: DescribeTopicsResponse = await call(c.admin, "describeTopics", create(DescribeTopicsRequestSchema, { topics: [topic] }));
      if ((d.topics[0]?.partitions[0]?.leader ?? -1) >= 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const produced: ProduceResponse = await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, {
        topic,
        acks: Acks.ALL,
        records: Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(`v${i}`) })),
      }),
    );
    const fetched: FetchResponse = await call(
      c.fetch,
      "fetch",
      create(FetchRequestSchema, { partitions: [{ topic, partition: 0, offset: 0n }], format: RecordFormat.RECORDS }),
    );
    return { produced, fetched };
  } finally {
    c.close();
  }
}

describe.each(Object.keys(RUNTIMES))("rill broker start under %s", (runtime) => {
  it("serves a produce/fetch round trip and stops cleanly on SIGTERM", async () => {
    const dir = tmpDir();
    try {
      const b = await startBroker(runtime, dir);
      const { produced, fetched } = await roundTrip(b.address, "rt", 5);
      expect(produced.records.map((r) => r.offset)).toEqual([0n, 1n, 2n, 3n, 4n]);
      expect(fetched.partitions[0]!.records.map((r) => Buffer.from(r.value!).toString())).toEqual(["v0", "v1", "v2", "v3", "v4"]);
      // The codecs load on every runtime: zstd (WebAssembly) and snappy (napi) batches built and read by the broker.
      for (const codec of ["zstd", "snappy"]) {
        const res = await roundTrip(b.address, `rt-${codec}`, 3, { "compression.type": codec });
        expect(
          res.fetched.partitions[0]!.records.map((r) => Buffer.from(r.value!).toString()),
          codec,
        ).toEqual(["v0", "v1", "v2"]);
      }
      b.proc.kill("SIGTERM");
      expect(await b.exited).toBe(0);
      expect(b.lines.some((l) => l.includes('"broker stopped"'))).toBe(true);
      expect(nodeFs.existsSync(path.join(dir, ".clean-shutdown"))).toBe(true);
      expect(nodeFs.existsSync(path.join(dir, ".lock"))).toBe(false);
    } finally {
      rmTmp(dir);
    }
  }, 90_000);
});

describe("kill -9", () => {
  it("loses no acknowledged record: a restarted broker recovers them all", async () => {
    const dir = tmpDir();
    try {
      const first = await startBroker("bun", dir);
      await roundTrip(first.address, "crash", 100);
      first.proc.kill("SIGKILL");
      await first.exited;
      expect(nodeFs.existsSync(path.join(dir, ".lock"))).toBe(true); // left behind by the dead process
      const second = await startBroker("bun", dir);
      expect(second.lines.some((l) => l.includes('"recovered":true'))).toBe(true);
      const c = clients(second.address);
      const f: FetchResponse = await call(
        c.fetch,
        "fetch",
        create(FetchRequestSchema, { partitions: [{ topic: "crash", partition: 0, offset: 0n }], format: RecordFormat.RECORDS }),
      );
      c.close();
      expect(f.partitions[0]!.records.length).toBe(100);
      expect(f.partitions[0]!.records.map((r) => Number(r.offset))).toEqual(Array.from({ length: 100 }, (_, i) => i));
      second.proc.kill("SIGTERM");
      expect(await second.exited).toBe(0);
    } finally {
      rmTmp(dir);
    }
  }, 90_000);
});
