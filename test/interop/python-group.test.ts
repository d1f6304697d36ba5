/**
 * Interop, consumer groups: a Python client whose stubs are generated from proto/ at test time
 * (Debian's system `protoc` + `/usr/bin/grpc_python_plugin`, Debian's python3-grpcio) consumes in
 * a group through `GroupService.Consume`: it commits on the stream, disconnects, reconnects and
 * resumes exactly after its last commit (python_group_client.py checks every answer itself and
 * prints a report). Here the report is checked again against what TypeScript produced and against
 * the group's offsets read through grpc-js.
 *
 * Missing protoc, plugin or Python packages FAIL the suite (never skip): run
 * scripts/install-test-deps.sh.
 */
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchOffsetsRequestSchema, type FetchOffsetsResponse, GroupService } from "../../src/gen/rill/v1/group_service_pb.ts";
import { Acks, ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { call, clients, rmTmp, tmpDir } from "../integration/rpc-helpers.ts";
import { PYTHON, ROOT, pythonEnv, run, prepareStubs } from "./python-env.ts";

const CLIENT = path.join(ROOT, "test/interop/python_group_client.py");
const TOPIC = "py-orders";
const GROUP = "python-group";
const PARTITIONS = 3;
const TOTAL = 30;

interface RecordLine {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

interface Report {
  ok: boolean;
  python: string;
  grpcio: string;
  protobuf: string;
  partitions: number;
  members: [string, string];
  phase_a: Array<RecordLine & { committed: boolean }>;
  committed_after_a: Record<string, number>;
  phase_b: RecordLine[];
  first_offsets_b: Record<string, number>;
  final: Record<string, number>;
  elapsed_ms: number;
}

let dataDir: string;
let genDir: string;
let broker: Broker | undefined;
let c: ReturnType<typeof clients> | undefined;
let groups: grpc.Client | undefined;
let report: Report;
/** Produced records by "partition:offset". */
const produced = new Map<string, { key: string; value: string }>();
let setupError: Error | undefined;

function ready(): Report {
  if (setupError) throw new Error(`interop setup failed (see the first test): ${setupError.message.split("\n")[0]}`);
  return report;
}

async function setup(): Promise<void> {
  genDir = tmpDir("rill-pygen-");
  await prepareStubs(genDir);
  dataDir = tmpDir("rill-interop-group-");
  broker = await Broker.start({ dataDir, listen: "127.0.0.1:0", shutdownGraceMs: 1000 });
  c = clients(broker.address);
  groups = new (clientConstructor(GroupService))(broker.address, grpc.credentials.createInsecure());
  await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: TOPIC, partitions: PARTITIONS }] }));
  // Keyed JSON orders through the `records` path, in a few requests (several batches per partition).
  for (let round = 0; round < 3; round++) {
    const records = Array.from({ length: TOTAL / 3 }, (_, i) => {
      const n = round * (TOTAL / 3) + i;
      return { key: `customer-${n % 7}`, value: JSON.stringify({ order: n, amount: 100 + n }) };
    });
    const r: ProduceResponse = await call(
      c.produce,
      "produce",
      create(ProduceRequestSchema, {
        topic: TOPIC,
        acks: Acks.ALL,
        records: records.map((x) => ({ key: Buffer.from(x.key), value: Buffer.from(x.value) })),
      }),
    );
    r.records.forEach((at, i) => produced.set(`${at.partition}:${Number(at.offset)}`, records[i]!));
  }
  const py = await run(PYTHON, [CLIENT, broker.address, genDir, TOPIC, GROUP, String(TOTAL)], {
    cwd: ROOT,
    timeoutMs: 90_000,
    env: pythonEnv(),
  });
  const why = `${PYTHON} ${path.relative(ROOT, CLIENT)}: exit ${py.code}${py.timedOut ? " (timed out)" : ""}\nstderr:\n${py.stderr}\nstdout:\n${py.stdout.slice(0, 4000)}`;
  if (py.code !== 0) throw new Error(`the Python group client failed: ${why}`);
  try {
    report = JSON.parse(py.stdout.trim().split("\n").pop() ?? "") as Report;
  } catch {
    throw new Error(`the Python group client printed no JSON report: ${why}`);
  }
  console.log(
    `python group interop: Python ${report.python}, grpcio ${report.grpcio}, protobuf ${report.protobuf}; ${report.elapsed_ms} ms of calls`,
  );
}

beforeAll(async () => {
  try {
    await setup();
  } catch (e) {
    setupError = e instanceof Error ? e : new Error(String(e));
  }
}, 150_000);

afterAll(async () => {
  groups?.close();
  c?.close();
  await broker?.close();
  if (dataDir) rmTmp(dataDir);
  if (genDir) rmTmp(genDir);
});

describe("interop: a generated Python client consumes in a group through Consume", () => {
  it("generated the stubs and ran the client, which reported success", () => {
    if (setupError) throw setupError;
    expect(report.ok).toBe(true);
    expect(report.partitions).toBe(PARTITIONS);
    expect(report.members[0]).not.toBe("");
    expect(report.members[1]).not.toBe("");
  });

  it("read what TypeScript produced, in order per partition, with keys and values", () => {
    for (const r of [...ready().phase_a, ...report.phase_b]) {
      expect(produced.get(`${r.partition}:${r.offset}`), `${r.partition}:${r.offset}`).toEqual({ key: r.key, value: r.value });
    }
    for (const phase of [report.phase_a, report.phase_b]) {
      for (let p = 0; p < PARTITIONS; p++) {
        const offs = phase.filter((r) => r.partition === p).map((r) => r.offset);
        expect(offs, `partition ${p}`).toEqual([...offs].sort((a, b) => a - b));
        offs.forEach((o, i) => i > 0 && expect(o, `partition ${p}: consecutive`).toBe(offs[i - 1]! + 1));
      }
    }
  });

  it("after reconnecting it resumed exactly after its last commit: uncommitted records again, committed ones never", () => {
    const a = ready().phase_a;
    const committed = a.filter((r) => r.committed);
    const uncommitted = a.filter((r) => !r.committed);
    expect(committed).toHaveLength(10);
    expect(uncommitted).toHaveLength(4);
    const b = new Set(report.phase_b.map((r) => `${r.partition}:${r.offset}`));
    for (const r of committed) expect(b.has(`${r.partition}:${r.offset}`), `committed ${r.partition}:${r.offset}`).toBe(false);
    for (const r of uncommitted) expect(b.has(`${r.partition}:${r.offset}`), `uncommitted ${r.partition}:${r.offset}`).toBe(true);
    for (const [p, off] of Object.entries(report.first_offsets_b)) expect(off, `partition ${p}`).toBe(report.committed_after_a[p] ?? 0);
    // Together: every record, once, plus exactly the uncommitted ones twice.
    const all = [...a, ...report.phase_b].map((r) => `${r.partition}:${r.offset}`);
    expect(new Set(all)).toEqual(new Set(produced.keys()));
    expect(all.length - new Set(all).size).toBe(uncommitted.length);
  });

  it("the group's committed offsets, read from TypeScript, are every partition's end", async () => {
    ready();
    const f: FetchOffsetsResponse = await call(groups!, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: GROUP }));
    const ends = new Map<number, number>();
    for (const k of produced.keys()) {
      const [p, o] = k.split(":").map(Number) as [number, number];
      ends.set(p, Math.max(ends.get(p) ?? 0, o + 1));
    }
    expect(new Map(f.offsets.map((o) => [o.partition, Number(o.offset)]))).toEqual(ends);
    expect(Object.fromEntries([...ends].map(([p, e]) => [String(p), e]))).toEqual(report.final);
  });
});
