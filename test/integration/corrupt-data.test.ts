/**
 * Bad stored data stays in its partition (issue 14), end to end over gRPC. A gzip batch with
 * garbage deflate data and a consistent CRC is written into partition 0's segment file while the
 * broker is stopped (recovery keeps it: header and CRC are fine), then, with the broker running
 * again: a RECORDS Fetch of both partitions answers partition 1's records and partition 0's
 * CORRUPT_MESSAGE with the bad batch's offset; a Subscribe of both keeps delivering partition 1;
 * the SDK Consumer and a GroupConsumer (Consume stream) with `skipCorrupt` go on past the batch;
 * `rill consume --skip-corrupt` says so on stderr and goes on (without it: one error line); the
 * broker logs each corrupt read at error and counts it in rill_corrupt_reads_total.
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Consumer, type ConsumerRecord } from "../../src/client/consumer.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { Producer } from "../../src/client/producer.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse, SubscribeRequestSchema } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { badGzipBatch } from "../unit/service/corrupt-batches.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";

const dir = tmpDir("rill-corrupt-");
const errors: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
const log = {
  info() {},
  warn() {},
  error: (obj: object, msg?: string) => void errors.push({ obj: obj as Record<string, unknown>, msg }),
};
let broker: Broker;

/** Offsets 0 (good), 1-3 (the bad batch), 4 (good) in partition 0; 0 and, later, more in partition 1. */
beforeAll(async () => {
  const first = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  const c = clients(first.address);
  await call(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: "c", partitions: 2 }] }));
  c.close();
  const producer = new Producer({ bootstrap: first.address });
  await producer.send({ topic: "c", partition: 0, value: "p0-good" });
  await producer.send({ topic: "c", partition: 1, value: "p1-a" });
  await producer.close();
  await first.close();
  const bad = badGzipBatch(["x", "y", "z"]);
  bad.writeBigInt64BE(1n, 0); // base offset 1, outside the CRC
  nodeFs.appendFileSync(path.join(dir, "c-0", "00000000000000000000.log"), bad);
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", log, config: { metricsPort: 0 } });
  const p = new Producer({ bootstrap: broker.address });
  await p.send({ topic: "c", partition: 0, value: "p0-after" });
  await p.close();
}, 60_000);

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

const values = (res: FetchResponse, i: number): string[] => res.partitions[i]!.records.map((r) => Buffer.from(r.value!).toString());

describe("corrupt stored data", () => {
  it("Fetch: the healthy partition's records, and the corrupt partition's CORRUPT_MESSAGE naming the batch's offset", async () => {
    const c = clients(broker.address);
    try {
      const req = (offset0: bigint) =>
        create(FetchRequestSchema, {
          partitions: [
            { topic: "c", partition: 0, offset: offset0 },
            { topic: "c", partition: 1, offset: 0n },
          ],
          format: RecordFormat.RECORDS,
          maxWaitMs: 0,
        });
      const a = await call<unknown, FetchResponse>(c.fetch, "fetch", req(0n));
      expect(values(a, 0)).toEqual(["p0-good"]);
      expect(a.partitions[0]!.nextOffset).toBe(1n);
      const b = await call<unknown, FetchResponse>(c.fetch, "fetch", req(1n));
      expect(b.partitions[0]!.error?.name).toBe("CORRUPT_MESSAGE");
      expect(b.partitions[0]!.error?.message).toContain("c-0: the batch at offset 1 cannot be read");
      expect(b.partitions[0]!.nextOffset).toBe(4n);
      expect(values(b, 1)).toEqual(["p1-a"]);
      const past = await call<unknown, FetchResponse>(c.fetch, "fetch", req(4n));
      expect(values(past, 0)).toEqual(["p0-after"]);

      // A fetch at 2^63-1: OFFSET_OUT_OF_RANGE, next_offset not wrapped to -2^63.
      const far = await call<unknown, FetchResponse>(c.fetch, "fetch", req(2n ** 63n - 1n));
      expect(far.partitions[0]!.error?.name).toBe("OFFSET_OUT_OF_RANGE");
      expect(far.partitions[0]!.nextOffset >= 0n).toBe(true);

      // Logged at error, and counted.
      expect(errors.some((e) => e.obj.topic === "c" && e.obj.partition === 0 && e.obj.offset === 1)).toBe(true);
      const body = await (await fetch(`http://127.0.0.1:${broker.metrics!.port}/metrics`)).text();
      expect(Number(/^rill_corrupt_reads_total\{topic="c",partition="0"\} (\d+)$/m.exec(body)?.[1])).toBeGreaterThanOrEqual(1);
    } finally {
      c.close();
    }
  });

  it("Subscribe: answers the corrupt partition's error and keeps delivering the healthy one", async () => {
    const c = clients(broker.address);
    const stream = (c.fetch as unknown as { subscribe(r: unknown): grpc.ClientReadableStream<FetchResponse> }).subscribe(
      create(SubscribeRequestSchema, {
        partitions: [
          { topic: "c", partition: 0, offset: 1n },
          { topic: "c", partition: 1, offset: 0n },
        ],
        format: RecordFormat.RECORDS,
      }),
    );
    const seen: string[] = [];
    const got = new Promise<void>((resolve, reject) => {
      stream.on("data", (m: FetchResponse) => {
        for (const p of m.partitions) {
          if (p.error) seen.push(`${p.partition}:${p.error.name}`);
          for (const r of p.records) seen.push(`${p.partition}:${Buffer.from(r.value!).toString()}`);
        }
        if (seen.includes("1:p1-b")) resolve();
      });
      stream.on("error", reject);
    });
    try {
      const p = new Producer({ bootstrap: broker.address });
      await new Promise((r) => setTimeout(r, 200));
      await p.send({ topic: "c", partition: 1, value: "p1-b" });
      await p.close();
      await got;
      expect(seen).toEqual(["0:CORRUPT_MESSAGE", "1:p1-a", "1:p1-b"]);
    } finally {
      stream.cancel();
      c.close();
    }
  });

  it("SDK Consumer with skipCorrupt goes on past the batch it cannot decode", async () => {
    const reports: string[] = [];
    const consumer = new Consumer({
      bootstrap: broker.address,
      skipCorrupt: true,
      onCorrupt: (r) => void reports.push(`${r.partition}:${r.offset}..${r.nextOffset}`),
    });
    consumer.assign([{ topic: "c", partition: 0, offset: "earliest" }]);
    const got: ConsumerRecord[] = [];
    for await (const r of consumer) {
      got.push(r);
      if (got.length === 2) break;
    }
    await consumer.close();
    expect(got.map((r) => `${r.offset}:${r.value}`)).toEqual(["0:p0-good", "4:p0-after"]);
    expect(reports).toEqual(["0:1..4"]);
  });

  it("GroupConsumer (Consume stream) without skipCorrupt throws CORRUPT_MESSAGE; with it, skips and keeps both partitions flowing", async () => {
    const strict = new GroupConsumer({ bootstrap: broker.address, groupId: "strict", autoOffsetReset: "earliest" });
    strict.subscribe(["c"]);
    const err = await (async () => {
      for await (const _ of strict) {
        // records before the bad batch, and partition 1's
      }
    })().then(
      () => null,
      (e: unknown) => e as Error,
    );
    await strict.close();
    expect(err?.message).toContain("the batch at offset 1 cannot be read");

    const reports: string[] = [];
    const g = new GroupConsumer({
      bootstrap: broker.address,
      groupId: "skip",
      autoOffsetReset: "earliest",
      skipCorrupt: true,
      onCorrupt: (r) => void reports.push(`${r.partition}:${r.offset}..${r.nextOffset}`),
    });
    g.subscribe(["c"]);
    const got = new Set<string>();
    for await (const r of g) {
      got.add(`${r.partition}:${r.value}`);
      if (got.has("0:p0-after") && got.has("1:p1-a")) break;
    }
    await g.close();
    expect([...got].sort()).toEqual(expect.arrayContaining(["0:p0-good", "0:p0-after", "1:p1-a"]));
    expect(reports).toEqual(["0:1..4"]);
  }, 30_000);
});

/** Runs `bin/rill args` against the broker; killed after 20 s. */
function rill(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, RILL_BOOTSTRAP: broker.address };
    delete env["RILL_RUNTIME"];
    const proc = spawn(path.resolve("bin/rill"), args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("rill consume and corrupt stored data", () => {
  it("without --skip-corrupt fails with one line naming the batch; with it reports the batch on stderr and goes on", async () => {
    const strict = await rill(["consume", "c", "--partition", "0", "--from-beginning", "-n", "2"]);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toBe("p0-good\n");
    expect(strict.stderr).toMatch(/^rill: .*c-0: the batch at offset 1 cannot be read/);
    const skip = await rill(["consume", "c", "--partition", "0", "--from-beginning", "-n", "2", "--skip-corrupt"]);
    expect(skip.code).toBe(0);
    expect(skip.stdout).toBe("p0-good\np0-after\n");
    expect(skip.stderr).toMatch(/^rill: skipped c-0 offsets 1\.\.3: /);
  }, 30_000);
});
