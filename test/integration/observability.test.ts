/**
 * Observability on one broker (issue 16): the HTTP listener's endpoints, exact request and
 * traffic counters for a known workload, the change log lines, and the deprecated metrics.port.
 */
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import type { BrokerLog } from "../../src/broker/log.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { GroupConsumer } from "../../src/client/group-consumer.ts";
import { FetchRequestSchema, type FetchResponse } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { call, clients, errorName, rmTmp, tmpDir } from "./rpc-helpers.ts";
import { scrape, sample, samples } from "./prom-text.ts";

/** Log lines a broker wrote, kept for the test to read. */
class LogLines implements BrokerLog {
  readonly lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
  info(obj: object, msg = ""): void {
    this.lines.push({ level: "info", msg, obj: obj as Record<string, unknown> });
  }
  warn(obj: object, msg = ""): void {
    this.lines.push({ level: "warn", msg, obj: obj as Record<string, unknown> });
  }
  error(obj: object, msg = ""): void {
    this.lines.push({ level: "error", msg, obj: obj as Record<string, unknown> });
  }
  find(msg: string, fields: Record<string, unknown> = {}): Record<string, unknown> | undefined {
    return this.lines.find((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l.obj[k] === v))?.obj;
  }
}

let dir: string;
let broker: Broker;
let log: LogLines;
let url: string;

beforeAll(async () => {
  dir = tmpDir();
  log = new LogLines();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", log, config: { httpListen: "127.0.0.1:0" } });
  url = `http://127.0.0.1:${broker.http!.port}`;
});

afterAll(async () => {
  await broker.close();
  rmTmp(dir);
});

describe("the HTTP listener", () => {
  it("answers /healthz and /readyz without authentication, 404 elsewhere, 405 for other methods", async () => {
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    const post = await fetch(`${url}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("serves the metrics DESIGN.md names, single-node values included", async () => {
    const body = await scrape(url);
    for (const name of [
      "rill_under_replicated_partitions",
      "rill_offline_partitions",
      "rill_under_min_isr_partitions",
      "rill_isr_shrinks_total",
      "rill_isr_expands_total",
      "rill_leader_partitions",
      "rill_controller_active",
      "rill_raft_term",
      "rill_raft_commit_offset",
      "rill_memory_budget_bytes",
      "rill_memory_budget_used_bytes",
    ])
      expect(body, name).toMatch(new RegExp(`^${name}(\\{[^}]*\\})? `, "m"));
    expect(sample(body, "rill_controller_active")).toBe(1);
    expect(sample(body, "rill_raft_term")).toBeGreaterThan(0);
    expect(sample(body, "rill_connections", { listener: "http" })).toBeGreaterThanOrEqual(1);
    expect(samples(body, "rill_connections").map((s) => s.labels["listener"])).toContain("grpc");
    // __consumer_offsets is led here, replicated once: nothing under-replicated or offline.
    expect(sample(body, "rill_leader_partitions")).toBeGreaterThan(0);
    expect(sample(body, "rill_under_replicated_partitions")).toBe(0);
    expect(sample(body, "rill_offline_partitions")).toBe(0);
  });
});

describe("request and traffic counters", () => {
  it("count a known workload exactly: records and bytes in and out per topic, requests by API and code", async () => {
    const c = clients(broker.address);
    const admin = new Admin({ bootstrap: broker.address });
    try {
      await admin.createTopics([{ name: "exact", partitions: 2 }]);
      const before = await scrape(url);
      const producesBefore = sample(before, "rill_requests_total", { api: "Produce", protocol: "grpc", code: "OK" }) ?? 0;
      // 7 produce calls: 3 to partition 0 (2 records each), 4 to partition 1 (1..4 records): 6 + 10 = 16 records.
      let records = 0;
      for (let i = 0; i < 3; i++) {
        const rs = [{ value: Buffer.from(`zero-${i}-a`) }, { key: Buffer.from("k"), value: Buffer.alloc(100 + i, 1) }];
        await call(c.produce, "produce", create(ProduceRequestSchema, { topic: "exact", partition: 0, records: rs }));
        records += rs.length;
      }
      for (let n = 1; n <= 4; n++) {
        const rs = Array.from({ length: n }, (_, j) => ({ value: Buffer.from(`one-${n}-${j}`) }));
        await call(c.produce, "produce", create(ProduceRequestSchema, { topic: "exact", partition: 1, records: rs }));
        records += rs.length;
      }
      // One refused produce: an unknown topic, counted by its catalog name.
      const refused = await call(
        c.produce,
        "produce",
        create(ProduceRequestSchema, { topic: "no-such", records: [{ value: Buffer.from("x") }] }),
      ).catch((e: unknown) => e);
      expect(errorName(refused)).toBe("UNKNOWN_TOPIC_OR_PARTITION");
      // Read everything back once as stored batches.
      for (const partition of [0, 1]) {
        const res = await call<unknown, FetchResponse>(
          c.fetch,
          "fetch",
          create(FetchRequestSchema, { partitions: [{ topic: "exact", partition, offset: 0n }], format: RecordFormat.BATCHES }),
        );
        expect(res.partitions[0]!.error).toBeUndefined();
      }
      const body = await scrape(url);
      const logBytes =
        (sample(body, "rill_log_size_bytes", { topic: "exact", partition: "0" }) ?? 0) +
        (sample(body, "rill_log_size_bytes", { topic: "exact", partition: "1" }) ?? 0);
      expect(logBytes).toBeGreaterThan(0);
      expect(sample(body, "rill_records_in_total", { topic: "exact" })).toBe(records);
      // Each partition was read once from offset 0 to its end: every record went out once.
      expect(sample(body, "rill_records_out_total", { topic: "exact" })).toBe(records);
      expect(records).toBe(16);
      // What was appended is what the segments hold, byte for byte; and one full read answers it all.
      expect(sample(body, "rill_bytes_in_total", { topic: "exact" })).toBe(logBytes);
      expect(sample(body, "rill_bytes_out_total", { topic: "exact" })).toBe(logBytes);
      expect(sample(body, "rill_requests_total", { api: "Produce", protocol: "grpc", code: "OK" })).toBe(producesBefore + 7);
      expect(sample(body, "rill_requests_total", { api: "Produce", protocol: "grpc", code: "UNKNOWN_TOPIC_OR_PARTITION" })).toBe(1);
      expect(sample(body, "rill_requests_total", { api: "Fetch", protocol: "grpc", code: "OK" })).toBeGreaterThanOrEqual(2);
      // The histogram counted every Produce once, in cumulative buckets.
      const count = sample(body, "rill_request_duration_seconds_count", { api: "Produce", protocol: "grpc" });
      expect(count).toBe(producesBefore + 8);
      expect(sample(body, "rill_request_duration_seconds_bucket", { api: "Produce", protocol: "grpc", le: "+Inf" })).toBe(count);
      const buckets = samples(body, "rill_request_duration_seconds_bucket").filter((s) => s.labels["api"] === "Produce");
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(sample(body, "rill_request_duration_seconds_sum", { api: "Produce", protocol: "grpc" })).toBeGreaterThan(0);
    } finally {
      c.close();
      await admin.close();
    }
  });
});

describe("change log lines", () => {
  it("logs topic, config, group-membership and ACL-free changes at info with greppable fields", async () => {
    const admin = new Admin({ bootstrap: broker.address });
    const groups = new GroupAdmin({ bootstrap: broker.address });
    try {
      await admin.createTopics([{ name: "logged", partitions: 2 }]);
      await admin.alterConfigs([{ resource: { type: "topic", name: "logged" }, set: { "retention.ms": "60000" } }]);
      await groups.commitOffsets("logged-group", [{ topic: "logged", partition: 0, offset: 0 }]);
      await admin.deleteTopics(["logged"]);
      expect(log.find("topic created", { topic: "logged" })).toMatchObject({ topic: "logged" });
      expect(log.find("partition created", { topic: "logged", partition: 1 })).toMatchObject({ replicas: [expect.any(Number)] });
      expect(log.find("topic config changed", { topic: "logged" })).toMatchObject({ configs: { "retention.ms": "60000" } });
      expect(log.find("topic deleted", { topic: "logged" })).toBeDefined();
      expect(log.find("broker registered")).toBeDefined();
      expect(log.find("broker unfenced")).toBeDefined();
    } finally {
      await admin.close();
      await groups.close();
    }
  });
});

describe("group membership", () => {
  it("logs a member joining and leaving and the group's rebalances; members show in rill_consumer_group_members", async () => {
    const admin = new Admin({ bootstrap: broker.address });
    try {
      await admin.createTopics([{ name: "joined", partitions: 2 }]);
    } finally {
      await admin.close();
    }
    const c = new GroupConsumer({ bootstrap: broker.address, groupId: "watched", autoOffsetReset: "earliest" });
    c.subscribe(["joined"]);
    const drained = (async () => {
      for await (const _ of c) break;
    })();
    const deadline = Date.now() + 15_000;
    while (c.assignment().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(c.assignment()).toHaveLength(2);
    const joined = log.find("group member joined", { group: "watched" });
    expect(joined).toMatchObject({ group: "watched", member: expect.any(String), topics: ["joined"] });
    expect(log.find("group rebalanced", { group: "watched" })).toMatchObject({ epoch: expect.any(Number) });
    expect(sample(await scrape(url), "rill_consumer_group_members", { group: "watched" })).toBe(1);
    await c.close();
    await drained;
    const left = log.find("group member left", { group: "watched" });
    expect(left).toMatchObject({ member: joined!["member"] });
    expect(sample(await scrape(url), "rill_consumer_group_members", { group: "watched" })).toBe(0);
  });
});

describe("metrics.port", () => {
  it("is a deprecated alias: still serves the HTTP listener on 127.0.0.1, with a warning", async () => {
    const d = tmpDir();
    const lines = new LogLines();
    const b = await Broker.start({ dataDir: d, listen: "127.0.0.1:0", log: lines, config: { metricsPort: 0 } });
    try {
      expect(b.http).not.toBeNull();
      expect(b.http!.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect((await fetch(`http://127.0.0.1:${b.http!.port}/readyz`)).status).toBe(200);
      const warning = lines.lines.find((l) => l.level === "warn" && l.obj["key"] === "metrics.port");
      expect(warning?.msg).toMatch(/metrics\.port is deprecated: set http\.listen=127\.0\.0\.1:0/);
    } finally {
      await b.close();
      rmTmp(d);
    }
  });
});
