/**
 * The idempotent producer against a real broker through a faulty link (tcp-proxy.ts): 100k unique
 * 20-byte values over 4 partitions, up to 5 batches in flight per partition, while the proxy cuts
 * connections and swallows answers at seeded random moments (so the producer re-sends batches
 * the broker had written). The log, read straight from the broker, must hold every value exactly
 * once, in send order per partition, at the offsets the producer reported. The second run also
 * kills the broker with SIGKILL mid-run and restarts it on the same port and data dir.
 *
 * SEED=n replays a fault schedule; IDEMPOTENT_RECORDS=n changes the record count.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Errors, type RillError } from "../../src/base/errors.ts";
import { seedFromEnv } from "../../src/base/random.ts";
import { SeededRandom } from "../../src/base/random.ts";
import { Admin } from "../../src/client/admin.ts";
import { Producer, type ProducerOptions, type RecordMetadata } from "../../src/client/producer.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { call, clients, rmTmp, tmpDir } from "./rpc-helpers.ts";
import { TcpProxy } from "./tcp-proxy.ts";

const SEED = seedFromEnv();
const RECORDS = Number(process.env["IDEMPOTENT_RECORDS"] ?? 100_000);
const PARTITIONS = 4;
const ROOT = path.resolve(".");

beforeAll(() => console.log(`idempotent-producer SEED=${SEED} records=${RECORDS}`));

interface Running {
  readonly proc: ChildProcess;
  readonly address: string;
  readonly exited: Promise<number | null>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `rill broker start` under Bun on 127.0.0.1:`port` (0: a free one); resolves at "broker started". */
function startBroker(dataDir: string, port = 0): Promise<Running> {
  const proc = spawn(
    path.join(ROOT, "node_modules/.bin/bun"),
    ["src/cli/main.ts", "broker", "start", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => resolve(code)));
  cleanups.push(() => void proc.kill("SIGKILL"));
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "broker started" within 30 s:\n${lines.join("\n")}`)), 30_000);
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.includes('"broker started"')) {
          clearTimeout(timer);
          resolve({ proc, address: (JSON.parse(line) as { address: string }).address, exited });
        }
      }
    });
    proc.stderr!.on("data", (d: Buffer) => lines.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before serving:\n${lines.join("\n")}`));
    });
  });
}

/** Value `i`: 20 bytes that name it. */
const valueAt = (i: number): string => `v${String(i).padStart(10, "0")}`.padEnd(20, ".");

/** Producer settings of both runs: small batches so that many are in flight, generous retries. */
function producerOptions(bootstrap: string, seed: number): ProducerOptions {
  return {
    bootstrap,
    lingerMs: 2,
    batchBytes: 4096,
    bufferBytes: 512 * 1024,
    requestTimeoutMs: 5000,
    random: new SeededRandom(seed),
    retry: { retries: 10_000, initialBackoffMs: 20, backoffMsMax: 250 },
  };
}

/**
 * Sends value i to partition i % PARTITIONS, for i in [0, RECORDS), keeping at most the buffer
 * in flight; `onSent(i)` runs before each send. Resolves with every send's outcome.
 */
async function sendAll(
  producer: Producer,
  topic: string,
  onSent: (i: number) => Promise<void> | void = () => {},
): Promise<PromiseSettledResult<RecordMetadata>[]> {
  const sends: Promise<RecordMetadata>[] = [];
  let acked = 0;
  const progress = setInterval(
    () =>
      console.log(
        `  ${topic} ${new Date().toISOString().slice(17, 23)}: ${sends.length} sent, ${acked} acknowledged, ${producer.bufferedBytes} bytes buffered, ${JSON.stringify(producer.stats)}`,
      ),
    2000,
  );
  try {
    for (let i = 0; i < RECORDS; i++) {
      await onSent(i);
      await producer.ready();
      const sent = producer.send({ topic, partition: i % PARTITIONS, value: valueAt(i) });
      sent.then(
        () => acked++,
        () => {},
      );
      sends.push(sent);
    }
    await producer.flush();
    return await Promise.allSettled(sends);
  } finally {
    clearInterval(progress);
  }
}

/** Every value of every partition, read from the broker at `address` (not through the proxy). */
async function readLog(address: string, topic: string): Promise<{ offset: number; value: string }[][]> {
  const c = clients(address);
  try {
    const out: { offset: number; value: string }[][] = [];
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const got: { offset: number; value: string }[] = [];
      for (;;) {
        const req = create(FetchRequestSchema, {
          partitions: [{ topic, partition, offset: BigInt(got.length) }],
          maxBytes: 4 << 20,
          format: RecordFormat.RECORDS,
        });
        const res: FetchResponse = await call(c.fetch, "fetch", req);
        const p = res.partitions[0]!;
        expect(p.error).toBeUndefined();
        for (const r of p.records) got.push({ offset: Number(r.offset), value: Buffer.from(r.value!).toString() });
        if (got.length >= Number(p.highWatermark)) break;
      }
      out.push(got);
    }
    return out;
  } finally {
    c.close();
  }
}

/**
 * Each value once, in send order per partition, at the offset its send resolved with. Collects
 * the first violations rather than asserting per record (100k expects are slow).
 */
function checkExactlyOnceInOrder(log: { offset: number; value: string }[][], results: PromiseSettledResult<RecordMetadata>[]): void {
  const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`send ${i}: ${(r.reason as Error).message}`] : []));
  expect(failed.slice(0, 5), `${failed.length} sends failed`).toEqual([]);
  const problems: string[] = [];
  const where = new Map<number, string>();
  log.forEach((records, partition) => {
    let previous = -1;
    records.forEach((r, k) => {
      const at = `${partition}/${r.offset}`;
      const i = Number(r.value.slice(1, 11));
      if (r.offset !== k) problems.push(`${at}: offset ${r.offset} at position ${k}`);
      if (r.value !== valueAt(i) || i % PARTITIONS !== partition) problems.push(`${at}: unexpected value ${r.value}`);
      if (where.has(i)) problems.push(`${at}: value ${i} also at ${where.get(i)}`);
      if (i <= previous) problems.push(`${at}: value ${i} after value ${previous}`);
      where.set(i, at);
      previous = i;
    });
  });
  results.forEach((r, i) => {
    const m = (r as PromiseFulfilledResult<RecordMetadata>).value;
    const at = where.get(i);
    if (at === undefined) problems.push(`value ${i}: acknowledged at ${m.partition}/${m.offset} but not in the log`);
    else if (at !== `${m.partition}/${m.offset}`)
      problems.push(`value ${i}: acknowledged at ${m.partition}/${m.offset} but found at ${at}`);
  });
  expect(problems.slice(0, 10), `${problems.length} problems`).toEqual([]);
  expect(where.size).toBe(RECORDS);
}

async function createTopic(address: string, name: string): Promise<void> {
  const admin = new Admin({ bootstrap: address });
  await admin.createTopics([{ name, partitions: PARTITIONS }]);
  await admin.close();
}

function chaos(proxy: TcpProxy, seed: number) {
  return proxy.startChaos({ seed, minGapMs: 10, maxGapMs: 100, swallowShare: 0.5, swallowMsMax: 60, faultsMax: 500, durationMs: 50_000 });
}

function report(name: string, startedMs: number, producer: Producer, proxy: TcpProxy, faults: number): void {
  const s = producer.stats;
  const secs = ((Date.now() - startedMs) / 1000).toFixed(1);
  console.log(
    `${name}: ${RECORDS} records in ${secs} s; ${faults} faults (${proxy.stats.cuts} cuts, ${proxy.stats.swallows} swallows, ${proxy.stats.bytesSwallowed} bytes swallowed, ${proxy.stats.connections} connections); ` +
      `${s.requests} requests, ${s.retries} re-sends, ${s.producerIdsAcquired} producer id/epoch, at most ${s.inFlightPerPartitionPeak} batches in flight per partition`,
  );
}

describe("idempotent producer through a faulty link", () => {
  it("writes 100k values exactly once and in order while the proxy cuts connections and swallows answers", async () => {
    const dir = tmpDir();
    cleanups.push(() => rmTmp(dir));
    const broker = await startBroker(dir);
    await createTopic(broker.address, "cuts");
    const proxy = await TcpProxy.start(broker.address);
    cleanups.push(() => proxy.close());
    const producer = new Producer(producerOptions(proxy.address, SEED));
    cleanups.push(() => producer.close());

    const started = Date.now();
    const faults = chaos(proxy, SEED);
    const results = await sendAll(producer, "cuts");
    faults.stop();
    report("cuts", started, producer, proxy, await faults.done);

    checkExactlyOnceInOrder(await readLog(broker.address, "cuts"), results);
    expect(producer.stats.inFlightPerPartitionPeak).toBe(5);
    expect(producer.stats.producerIdsAcquired).toBe(1); // no sequence was ever left unresolved
    expect(proxy.stats.cuts + proxy.stats.swallows).toBeGreaterThan(5);
    expect(proxy.stats.bytesSwallowed).toBeGreaterThan(0); // answers of requests the broker applied
  }, 120_000);

  it("does the same across a kill -9 and restart of the broker mid-run", async () => {
    const dir = tmpDir();
    cleanups.push(() => rmTmp(dir));
    let broker = await startBroker(dir);
    const port = Number(broker.address.split(":")[1]);
    await createTopic(broker.address, "crash");
    const proxy = await TcpProxy.start(broker.address);
    cleanups.push(() => proxy.close());
    const producer = new Producer(producerOptions(proxy.address, SEED + 1));
    cleanups.push(() => producer.close());

    const started = Date.now();
    const faults = chaos(proxy, SEED + 1);
    let downMs = 0;
    let restarted: Promise<void> = Promise.resolve();
    const results = await sendAll(producer, "crash", (i) => {
      if (i !== Math.floor(RECORDS * 0.4)) return;
      // kill -9 with batches in flight; the application keeps sending (into the buffer) meanwhile
      restarted = (async () => {
        const t0 = Date.now();
        broker.proc.kill("SIGKILL");
        await broker.exited;
        broker = await startBroker(dir, port); // same port and data dir
        downMs = Date.now() - t0;
      })();
    });
    await restarted;
    faults.stop();
    report(`crash (broker down ${downMs} ms)`, started, producer, proxy, await faults.done);

    checkExactlyOnceInOrder(await readLog(broker.address, "crash"), results);
    expect(producer.stats.producerIdsAcquired).toBe(1);
  }, 120_000);

  it("fences the older of two producers with the same transactionalId, without retrying", async () => {
    const dir = tmpDir();
    cleanups.push(() => rmTmp(dir));
    const broker = await startBroker(dir);
    await createTopic(broker.address, "fence");
    const a = new Producer({ bootstrap: broker.address, transactionalId: "writer", lingerMs: 0 });
    const b = new Producer({ bootstrap: broker.address, transactionalId: "writer", lingerMs: 0 });
    cleanups.push(
      () => a.close(),
      () => b.close(),
    );
    await a.send({ topic: "fence", partition: 0, value: "a1" });
    await b.send({ topic: "fence", partition: 0, value: "b1" }); // same producer id, epoch + 1
    expect(b.producerIdAndEpoch).toEqual({
      producerId: a.producerIdAndEpoch!.producerId,
      producerEpoch: a.producerIdAndEpoch!.producerEpoch + 1,
    });
    const e = (await a.send({ topic: "fence", partition: 0, value: "a2" }).catch((x: unknown) => x)) as RillError;
    expect(e.kind).toBe(Errors.PRODUCER_FENCED);
    expect(e.message).toMatch(
      /is fenced: a newer instance holds its producer id.*INVALID_PRODUCER_EPOCH|is fenced: .*older than the current epoch/,
    );
    await expect(a.send({ topic: "fence", partition: 1, value: "a3" })).rejects.toMatchObject({ kind: Errors.PRODUCER_FENCED });
    expect(a.stats.retries).toBe(0);
    const log = await readLog(broker.address, "fence");
    expect(log[0]!.map((r) => r.value)).toEqual(["a1", "b1"]);
  }, 60_000);
});
