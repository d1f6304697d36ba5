/**
 * `rill bench` (bin/rill, under the package's Bun) with tiny record counts: the producer tool
 * against a running broker (--brokers: none started) and the consumer tool and two suite
 * scenario groups against brokers they start. Checks what they report and write, never a timing
 * value: a throughput only has to be a positive number.
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { runRill } from "./cli-run.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

/** Runs `bin/rill args` (killed after `timeoutMs`). */
const rill = (args: readonly string[], timeoutMs = 90_000, extraEnv: Record<string, string> = {}) => runRill(args, timeoutMs, extraEnv);

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(nodeFs.readFileSync(file, "utf8")) as Record<string, unknown>;
}

const positive = (x: unknown): boolean => typeof x === "number" && Number.isFinite(x) && x > 0;

let dir: string;
let out: string;
let broker: Broker;

beforeAll(async () => {
  dir = tmpDir("rill-cli-bench-");
  out = tmpDir("rill-cli-bench-out-");
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { kafkaListen: "127.0.0.1:0", numPartitions: 2 } });
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
  rmTmp(out);
});

describe("rill bench", () => {
  it("producer: two producers with acks=all against a running broker report progress and records/s and write JSON", async () => {
    const json = path.join(out, "producer.json");
    // Paced to 10000 records/s, the run takes 2 s at least: progress lines every 250 ms (5 s unless told).
    const progressEnv = { RILL_BENCH_PROGRESS_MS: "250" };
    const r = await rill(
      [
        "bench",
        "producer",
        "--records",
        "20000",
        "--record-size",
        "100",
        "--producers",
        "2",
        "--acks",
        "all",
        "--partitions",
        "2",
        "--brokers",
        broker.address,
        "--throughput",
        "10000",
        "--json",
        json,
      ],
      90_000,
      progressEnv,
    );
    expect(r.stderr).not.toMatch(/^rill: /m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/20000 records in .* by 2 producer\(s\), acks=all, .*M records\/s/);
    // Not a terminal: plain lines, records done of the total and the rates.
    const progress = r.stderr.split("\n").filter((l) => l.startsWith("  producer "));
    expect(progress.length).toBeGreaterThan(0);
    for (const l of progress)
      expect(l).toMatch(/^ {2}producer \d+ s: \d+\/20000 records \(\d+%\), [\d.]+M records\/s now, [\d.]+M records\/s average$/);
    const j = readJson(json);
    expect(j).toMatchObject({
      tool: "producer-perf",
      records: 20000,
      producers: 2,
      acks: "all",
      errors: 0,
      brokerRuntime: "external",
      brokers: broker.address,
    });
    expect(positive(j["recordsPerSec"])).toBe(true);
    expect((j["requestsPerProducer"] as number[]).reduce((a, b) => a + b, 0)).toBe(20); // 1000 records per request
    expect(Object.keys(j["latencyMs"] as object)).toEqual(expect.arrayContaining(["p50", "p99", "p999"]));
  }, 120_000);

  it("producer --warmup-records: the same producers send those first, untimed, then the measured records", async () => {
    const json = path.join(out, "producer-warmup.json");
    const r = await rill([
      "bench",
      "producer",
      "--records",
      "5000",
      "--warmup-records",
      "3000",
      "--batch-records",
      "500",
      "--brokers",
      broker.address,
      "--json",
      json,
    ]);
    expect(r.stderr).not.toMatch(/^rill: /m);
    expect(r.code).toBe(0);
    const j = readJson(json);
    expect(j).toMatchObject({ tool: "producer-perf", records: 5000, warmupRecords: 3000, warmupErrors: 0, errors: 0 });
    expect((j["requestsPerProducer"] as number[]).reduce((a, b) => a + b, 0)).toBe(10); // the measured run's requests only
    // Both runs wrote to the one topic: its end offset counts the warm-up's records too.
    const admin = new Admin({ bootstrap: broker.address });
    try {
      const topics = (await admin.listTopics()).filter((t) => t.name.startsWith("perf-"));
      const ends = await Promise.all(topics.map((t) => admin.listOffsets([{ topic: t.name, partition: 0, query: "latest" }])));
      expect(ends.map((e) => e[0]!.offset)).toContain(8000);
    } finally {
      await admin.close();
    }
  }, 120_000);

  it("producer --protocol kafka: Rill's Kafka-protocol producers against a running Kafka listener report records/s", async () => {
    const json = path.join(out, "producer-kafka.json");
    const kafka = broker.kafkaAddress as string;
    const r = await rill([
      "bench",
      "producer",
      "--records",
      "20000",
      "--producers",
      "2",
      "--acks",
      "all",
      "--protocol",
      "kafka",
      "--brokers",
      kafka,
      "--json",
      json,
    ]);
    expect(r.stderr).not.toMatch(/^rill: /m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/20000 records in .* by 2 producer\(s\), acks=all, .*M records\/s.*errors 0; over Kafka's protocol/);
    const j = readJson(json);
    expect(j).toMatchObject({ tool: "producer-perf", protocol: "kafka", records: 20000, errors: 0, brokers: kafka });
    expect(positive(j["recordsPerSec"])).toBe(true);
    expect((j["requestsPerProducer"] as number[]).reduce((a, b) => a + b, 0)).toBe(20);
  }, 120_000);

  it("consumer: starts its own broker, reads the records back, reports records/s and the broker's RSS", async () => {
    const json = path.join(out, "consumer.json");
    const r = await rill(["bench", "consumer", "--records", "20000", "--mode", "subscribe", "--runs", "1", "--json", json]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/subscribe: 20000 records of 100 B .*M records\/s/);
    const j = readJson(json);
    expect(j).toMatchObject({ tool: "consumer-perf", records: 20000, brokerRuntime: "bun" });
    expect(positive(j["recordsPerSec"])).toBe(true);
    expect(positive((j["brokerRssMiB"] as Record<string, number>)["consumePeak"])).toBe(true);
  }, 120_000);

  it("suite scenarios: consume and latency at a tiny scale write the JSON, the table and the chart", async () => {
    const results = path.join(out, "suite");
    const r = await rill(
      ["bench", "consume", "latency", "--records-scale", "0.002", "--runs", "1", "--out", results, "--label", "smoke"],
      240_000,
    );
    expect(r.code).toBe(0);
    const files = nodeFs.readdirSync(results);
    expect(files).toEqual(expect.arrayContaining(["smoke.md", "smoke.svg"]));
    const jsonFile = files.find((f) => f.endsWith(".json"))!;
    const j = readJson(path.join(results, jsonFile)) as { rows: Array<{ kind: string; recordsPerSec: number }> };
    expect(j.rows.map((x) => x.kind)).toEqual(["consume", "consume", "consume", "consume", "e2e"]);
    for (const row of j.rows) expect(positive(row.recordsPerSec)).toBe(true);
    expect(nodeFs.readFileSync(path.join(results, "smoke.md"), "utf8")).toMatch(/\| consume 100 B subscribe none \| bun \| [\d.]+M \|/);
    expect(r.stdout).toMatch(/records\/s/);
  }, 300_000);

  it("producer --sweep: a short ladder against a running broker writes a table, JSON with increasing offered rates and a well-formed SVG", async () => {
    const json = path.join(out, "sweep.json");
    const svg = path.join(out, "sweep.svg");
    // Tiny steps: the maximum for 0.3 s, then 1/3, 2/3, 3/3 of it and a fixed 5000 records/s.
    const r = await rill(
      [
        "bench",
        "producer",
        "--sweep",
        "--brokers",
        broker.address,
        "--steps",
        "3",
        "--step-seconds",
        "0.3",
        "--max-seconds",
        "0.3",
        "--warmup-seconds",
        "0",
        "--extra-rates",
        "5000",
        "--batch-records",
        "100",
        "--svg",
        svg,
        "--json",
        json,
      ],
      60_000,
    );
    expect(r.stderr).not.toMatch(/^rill: /m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^1 broker acks=leader: 100 B records, none, 1 partition\(s\), 1 producer\(s\); maximum \d+ records\/s$/m);
    expect(r.stdout.split("\n").filter((l) => /^(closed|\d+%|fixed) /.test(l))).toHaveLength(5);
    const j = readJson(json) as Record<string, unknown> & {
      max: { records: number; achievedRecordsPerSec: number };
      steps: Array<{
        kind: string;
        fraction: number;
        offeredRecordsPerSec: number;
        records: number;
        measuredRecords: number;
        errors: number;
        requestMs: Record<string, number>;
        e2eMs: Record<string, number>;
      }>;
    };
    expect(j).toMatchObject({ tool: "producer-sweep", brokerRuntime: "external", brokers: broker.address, errors: 0, producerCount: 1 });
    expect(positive(j.max.achievedRecordsPerSec)).toBe(true);
    expect(j["maxRecordsPerSec"]).toBe(j.max.achievedRecordsPerSec);
    // Four steps, offered rates strictly increasing: the three fractions of the maximum and the fixed rate in its place.
    expect(j.steps).toHaveLength(4);
    const offered = j.steps.map((s) => s.offeredRecordsPerSec);
    for (let i = 1; i < offered.length; i++) expect(offered[i]!).toBeGreaterThan(offered[i - 1]!);
    const fractions = j.steps.filter((s) => s.kind === "fraction");
    expect(fractions.map((s) => s.fraction)).toEqual([1 / 3, 2 / 3, 1]);
    for (const s of fractions) expect(s.offeredRecordsPerSec).toBeCloseTo(s.fraction * j.max.achievedRecordsPerSec, 6);
    expect(j.steps.filter((s) => s.kind === "extra").map((s) => s.offeredRecordsPerSec)).toEqual([5000]);
    for (const s of j.steps) {
      expect(s.errors).toBe(0);
      expect(s.records).toBeGreaterThan(0);
      // No warm-up: every record sent was read back and measured end to end.
      expect(s.measuredRecords).toBe(s.records);
      for (const l of [s.requestMs, s.e2eMs]) {
        expect(positive(l["p50"])).toBe(true);
        expect(l["p99"]).toBeGreaterThanOrEqual(l["p50"]!);
        expect(l["p999"]).toBeGreaterThanOrEqual(l["p99"]!);
      }
    }
    // The SVG: one element tree, every tag closed, two panels of three percentile lines each.
    const text = nodeFs.readFileSync(svg, "utf8");
    expect(text).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" [^>]*>[\s\S]*<\/svg>\n$/);
    const stack: string[] = [];
    for (const m of text.matchAll(/<(\/?)([a-z]+)\b[^>]*?(\/?)>/g)) {
      if (m[1]) expect(stack.pop()).toBe(m[2]);
      else if (!m[3]) stack.push(m[2]!);
    }
    expect(stack).toEqual([]);
    expect(text.match(/<polyline /g)).toHaveLength(6);
    expect(text).not.toMatch(/NaN|undefined|Infinity/);
  }, 90_000);

  it("producer: --sweep and the fixed-count options refuse each other", async () => {
    const a = await rill(["bench", "producer", "--sweep", "--records", "5"]);
    expect([a.code, a.stderr.trim()]).toEqual([2, "rill: --sweep does not take --records"]);
    const b = await rill(["bench", "producer", "--steps", "3"]);
    expect([b.code, b.stderr.trim()]).toEqual([2, "rill: --steps: only with --sweep"]);
  });

  it("refuses an unknown scenario with one usage line", async () => {
    const r = await rill(["bench", "everything"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      expect.stringMatching(
        /^rill: unknown scenario "everything" \(scenarios: produce, consume, latency, peers, cluster, kafka, sweep, partitions; tools: producer, consumer, e2e\)$/,
      ),
    ]);
  });
});
