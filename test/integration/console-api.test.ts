/**
 * The console's JSON API (/api/v1) against a real broker: each endpoint answers what the service
 * layer holds (topics created here and by the SDK, records produced by the SDK, a group's
 * committed offsets and lag, the traffic history), and bad input — wrong methods, bad JSON, a
 * body that is not JSON, unknown topics and groups, huge bodies, wrong field types — gets a
 * specific 4xx with a catalog code and a message naming what was wrong, and changes nothing.
 */
import * as http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { Producer } from "../../src/client/producer.ts";
import { API_BODY_BYTES_MAX } from "../../src/http/api/http-io.ts";
import { call, type ConsoleBroker, startConsoleBroker } from "./console-harness.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let b: ConsoleBroker;
let bootstrap: string;

const get = (path: string) => call(b.url, "GET", `/api/v1/${path}`);

/** What the bad-input tests must leave unchanged: the topics and one topic's configs. */
async function state(): Promise<string> {
  const topics = await get("topics");
  const configs = await get("topics/kept/configs");
  return JSON.stringify([topics.body, configs.body]);
}

/** A raw request (the body written as given, chunked unless `length` is set). */
function raw(
  method: string,
  path: string,
  headers: Record<string, string>,
  chunks: Buffer[],
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${b.url}${path}`, { method, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), headers: res.headers }));
    });
    req.on("error", (e) => (/EPIPE|ECONNRESET/.test(e.message) ? undefined : reject(e)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

beforeAll(async () => {
  dir = tmpDir("rill-console-api-");
  b = await startConsoleBroker(dir, {}, 100);
  bootstrap = b.broker.address;
  expect(
    (await call(b.url, "POST", "/api/v1/topics", { name: "kept", partitions: 2, configs: { "retention.ms": "3600000" } })).status,
  ).toBe(201);
});

afterAll(async () => {
  await b?.close();
  if (dir) rmTmp(dir);
});

describe("console API: what it answers", () => {
  it("cluster overview: nodes, controller, Raft term, partition counts", async () => {
    const r = await get("cluster");
    expect(r.status).toBe(200);
    expect(r.body.controllerId).toBe(1);
    expect(r.body.raft.term).toBeGreaterThanOrEqual(1);
    expect(r.body.brokers).toEqual([expect.objectContaining({ nodeId: 1, fenced: false, roles: ["broker", "controller"] })]);
    // __consumer_offsets (50) and "kept" (2), all led by node 1, none offline or under-replicated.
    expect(r.body.partitions).toEqual({ total: 52, offline: 0, underReplicated: 0, underMinIsr: 0 });
    expect(r.body.brokers[0].leaderPartitions).toBe(52);
  });

  it("topics: create, list, describe partitions, configs, delete", async () => {
    const c = await call(b.url, "POST", "/api/v1/topics", { name: "made", partitions: 3, configs: { "cleanup.policy": "compact" } });
    expect(c.status).toBe(201);
    expect(c.body).toEqual({ name: "made", partitions: 3, replicationFactor: 1, validateOnly: false });
    const sdk = new Admin({ bootstrap });
    expect((await sdk.listTopics()).map((t) => t.name)).toContain("made");
    const list = await get("topics");
    expect(list.body.topics.map((t: { name: string }) => t.name)).toEqual(["kept", "made"]);
    const d = await get("topics/made");
    expect(d.body.partitions).toHaveLength(3);
    expect(d.body.partitions[2]).toMatchObject({
      partition: 2,
      leader: 1,
      replicas: [1],
      isr: [1],
      logStartOffset: 0,
      highWatermark: 0,
      sizeBytes: 0,
    });
    const cfg = await get("topics/made/configs");
    expect(cfg.body.configs.find((e: { name: string }) => e.name === "cleanup.policy")).toMatchObject({
      value: "compact",
      source: "dynamic-topic",
    });
    const alt = await call(b.url, "PATCH", "/api/v1/topics/made/configs", { set: { "retention.ms": "60000" }, delete: ["cleanup.policy"] });
    expect(alt.status).toBe(200);
    expect(alt.body.configs.find((e: { name: string }) => e.name === "retention.ms")).toMatchObject({
      value: "60000",
      source: "dynamic-topic",
    });
    expect(alt.body.configs.find((e: { name: string }) => e.name === "cleanup.policy")).toMatchObject({
      value: "delete",
      source: "default",
    });
    const del = await call(b.url, "DELETE", "/api/v1/topics/made");
    expect(del).toMatchObject({ status: 200, body: { deleted: "made" } });
    expect((await sdk.listTopics()).map((t) => t.name)).not.toContain("made");
    await sdk.close();
  });

  it("messages: produced by the SDK, browsed newest, from offset, from timestamp, as text, JSON and hex", async () => {
    await call(b.url, "POST", "/api/v1/topics", { name: "browse", partitions: 1 });
    const p = new Producer({ bootstrap, lingerMs: 0 });
    const t0 = Date.now() - 60_000;
    for (let i = 0; i < 10; i++)
      await p.send({
        topic: "browse",
        partition: 0,
        key: `k${i}`,
        value: JSON.stringify({ n: i }),
        headers: { h: `v${i}` },
        timestampMs: t0 + i * 1000,
      });
    await p.close();
    const newest = await get("topics/browse/messages?newest=3");
    expect(newest.status).toBe(200);
    expect(newest.body.records.map((r: { offset: number }) => r.offset)).toEqual([7, 8, 9]);
    expect(newest.body.records[0]).toMatchObject({
      partition: 0,
      key: { text: "k7" },
      value: { text: '{"n":7}' },
      headers: [{ key: "h", value: { text: "v7" } }],
    });
    const json = await get("topics/browse/messages?offset=2&limit=2&format=json");
    expect(json.body.records.map((r: { value: unknown }) => r.value)).toEqual([{ json: { n: 2 } }, { json: { n: 3 } }]);
    expect(json.body.partitions[0]).toMatchObject({ from: 2, nextOffset: 4, highWatermark: 10 });
    expect(json.body.truncated).toBe(true);
    const hex = await get("topics/browse/messages?offset=0&limit=1&format=hex");
    expect(hex.body.records[0].key).toEqual({ hex: Buffer.from("k0").toString("hex") });
    const byTime = await get(`topics/browse/messages?partition=0&timestamp=${t0 + 5500}`);
    expect(byTime.body.records.map((r: { offset: number }) => r.offset)).toEqual([6, 7, 8, 9]);
    expect(byTime.body.records[0].timestampMs).toBe(t0 + 6000);
  });

  it("groups: committed offsets, lag per partition, total lag, lag history", async () => {
    await call(b.url, "POST", "/api/v1/topics", { name: "lagged", partitions: 2 });
    const p = new Producer({ bootstrap, lingerMs: 0 });
    for (let i = 0; i < 10; i++) await p.send({ topic: "lagged", partition: i % 2, value: `v${i}` });
    await p.close();
    const ga = new GroupAdmin({ bootstrap });
    await ga.commitOffsets("stalled", [
      { topic: "lagged", partition: 0, offset: 1 },
      { topic: "lagged", partition: 1, offset: 5 },
    ]);
    await ga.close();
    const list = await get("groups");
    expect(list.body.groups).toContainEqual({ groupId: "stalled", state: "empty", members: 0, totalLag: 4 });
    const deadline = Date.now() + 10_000;
    let g = await get("groups/stalled");
    while (g.body.history.t.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      g = await get("groups/stalled");
    }
    expect(g.status).toBe(200);
    expect(g.body.offsets).toEqual([
      expect.objectContaining({ topic: "lagged", partition: 0, committedOffset: 1, logEndOffset: 5, lag: 4 }),
      expect.objectContaining({ topic: "lagged", partition: 1, committedOffset: 5, logEndOffset: 5, lag: 0 }),
    ]);
    expect(g.body.totalLag).toBe(4);
    expect(g.body.history.total.at(-1)).toBe(4);
    expect(g.body.history.partitions["lagged-0"].at(-1)).toBe(4);
  });

  it("traffic: records and bytes in per second of a topic produced to", async () => {
    await call(b.url, "POST", "/api/v1/topics", { name: "busy", partitions: 1 });
    const p = new Producer({ bootstrap, lingerMs: 0 });
    const deadline = Date.now() + 10_000;
    let seen = 0;
    while (Date.now() < deadline && seen === 0) {
      await p.send({ topic: "busy", value: "x".repeat(100) });
      const t = await get("traffic?topic=busy");
      seen = Math.max(0, ...t.body.topics[0].recordsIn);
      if (seen > 0) expect(Math.max(...t.body.topics[0].bytesIn)).toBeGreaterThan(100);
    }
    await p.close();
    expect(seen).toBeGreaterThan(0);
    const all = await get("traffic");
    expect(all.body).toMatchObject({ intervalMs: 100, windowMs: 900_000 });
    expect(all.body.topics.map((t: { topic: string }) => t.topic)).toContain("busy");
  });
});

describe("console API: bad input gets a specific 4xx and changes nothing", () => {
  it("a method the path does not serve: 405 with Allow", async () => {
    const before = await state();
    for (const [method, path, allow] of [
      ["PUT", "/api/v1/topics", "GET, POST"],
      ["DELETE", "/api/v1/topics", "GET, POST"],
      ["POST", "/api/v1/topics/kept", "GET, DELETE"],
      ["PUT", "/api/v1/topics/kept/configs", "GET, PATCH"],
      ["DELETE", "/api/v1/cluster", "GET"],
      ["POST", "/api/v1/groups/stalled", "GET"],
    ] as const) {
      const r = await call(b.url, method, path, {});
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.headers.get("allow")).toBe(allow);
      expect(r.body.error).toMatchObject({
        name: "INVALID_REQUEST",
        message: `${path}: method ${method} is not served here (allowed: ${allow})`,
      });
    }
    // A CORS preflight is never granted: another site's page cannot send JSON, PATCH or DELETE here.
    const preflight = await call(b.url, "OPTIONS", "/api/v1/topics", undefined, {
      origin: "http://evil.example",
      "access-control-request-method": "POST",
    });
    expect(preflight.status).toBe(405);
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const form = await call(b.url, "POST", "/api/v1/topics", "name=evil", { "content-type": "application/x-www-form-urlencoded" });
    expect(form.status).toBe(415);
    const page = await call(b.url, "POST", "/", "x");
    expect(page.status).toBe(405);
    expect(page.headers.get("allow")).toBe("GET, HEAD");
    expect(await state()).toBe(before);
  });

  it("bad JSON, not JSON, the wrong shape: 400/415 naming the problem", async () => {
    const before = await state();
    const bad = await call(b.url, "POST", "/api/v1/topics", '{"name": "x",');
    expect(bad.status).toBe(400);
    expect(bad.body.error.name).toBe("INVALID_REQUEST");
    expect(bad.body.error.message).toMatch(/^request body: not valid JSON \(/);
    const text = await call(b.url, "POST", "/api/v1/topics", '{"name":"x"}', { "content-type": "text/plain" });
    expect(text.status).toBe(415);
    expect(text.body.error.message).toBe("request body: content-type must be application/json, not text/plain");
    const shape = await call(b.url, "POST", "/api/v1/topics", { name: "x", partitions: "three" });
    expect(shape.status).toBe(400);
    expect(shape.body.error.message).toMatch(/^request body: partitions: .*number/);
    const extra = await call(b.url, "POST", "/api/v1/topics", { name: "x", partitons: 3 });
    expect(extra.status).toBe(400);
    expect(extra.body.error.message).toMatch(/partitons/);
    const nothing = await call(b.url, "PATCH", "/api/v1/topics/kept/configs", {});
    expect(nothing).toMatchObject({
      status: 400,
      body: { error: { message: "request body: nothing to change (give `set` or `delete`)" } },
    });
    const badConfig = await call(b.url, "PATCH", "/api/v1/topics/kept/configs", { set: { "retention.ms": "soon" } });
    expect(badConfig.status).toBe(400);
    expect(badConfig.body.error.name).toBe("INVALID_CONFIG");
    expect(badConfig.body.error.message).toMatch(/retention\.ms/);
    const badName = await call(b.url, "POST", "/api/v1/topics", { name: "no/slash" });
    expect(badName.status).toBe(400);
    expect(badName.body.error.name).toBe("INVALID_TOPIC_EXCEPTION");
    const badQuery = await get("topics/kept/messages?offset=-1");
    expect(badQuery).toMatchObject({
      status: 400,
      body: { error: { message: 'offset: "-1" is not an integer in [0, 9007199254740991]' } },
    });
    const both = await get("topics/kept/messages?offset=1&newest=2");
    expect(both.body.error.message).toBe("offset, newest: give one of offset, timestamp and newest, not several");
    const format = await get("topics/kept/messages?format=xml");
    expect(format.body.error.message).toBe('format: "xml" is not one of text, json, hex, base64');
    expect(await state()).toBe(before);
  });

  it("unknown topics, partitions, groups and paths: 404", async () => {
    const before = await state();
    const cases: Array<[string, string, unknown?]> = [
      ["GET", "/api/v1/topics/nope"],
      ["DELETE", "/api/v1/topics/nope"],
      ["GET", "/api/v1/topics/nope/configs"],
      ["PATCH", "/api/v1/topics/nope/configs", { set: { "retention.ms": "1" } }],
      ["GET", "/api/v1/topics/nope/messages"],
      ["GET", "/api/v1/traffic?topic=nope"],
    ];
    for (const [method, path, body] of cases) {
      const r = await call(b.url, method, path, body);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.error.name).toBe("UNKNOWN_TOPIC_OR_PARTITION");
      expect(r.body.error.message).toContain('"nope"');
    }
    const part = await get("topics/kept/messages?partition=7");
    expect(part).toMatchObject({ status: 400, body: { error: { message: 'partition: "7" is not an integer in [0, 1]' } } });
    const group = await get("groups/nobody");
    expect(group.status).toBe(404);
    expect(group.body.error).toMatchObject({ name: "GROUP_ID_NOT_FOUND", message: "group_id: group nobody does not exist" });
    const path = await get("nothing/here");
    expect(path.status).toBe(404);
    expect(path.body.error.message).toBe("/api/v1/nothing/here: no such API path (see GET /api/v1/)");
    const dup = await call(b.url, "POST", "/api/v1/topics", { name: "kept" });
    expect(dup.status).toBe(409);
    expect(dup.body.error.name).toBe("TOPIC_ALREADY_EXISTS");
    expect(await state()).toBe(before);
  });

  it("huge bodies: 413, refused on content-length before reading, or as soon as a chunked body passes the bound", async () => {
    const before = await state();
    const big = Buffer.alloc(API_BODY_BYTES_MAX + 1, 0x20);
    const declared = await raw("POST", "/api/v1/topics", { "content-type": "application/json", "content-length": String(big.length) }, [
      big,
    ]);
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error).toMatchObject({
      name: "RECORD_LIST_TOO_LARGE",
      message: `request body: larger than ${API_BODY_BYTES_MAX} bytes, the most this API reads`,
    });
    expect(declared.headers.connection).toBe("close");
    // Chunked, 16 MiB announced by nothing: refused once the bound is passed, the rest never read.
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const chunked = await raw(
      "POST",
      "/api/v1/topics",
      { "content-type": "application/json" },
      Array.from({ length: 256 }, () => chunk),
    );
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.body).error.name).toBe("RECORD_LIST_TOO_LARGE");
    const patch = await raw("PATCH", "/api/v1/topics/kept/configs", { "content-type": "application/json" }, [big]);
    expect(patch.status).toBe(413);
    expect(await state()).toBe(before);
  });

  it("every request is counted under its method and endpoint with the code answered", () => {
    expect(b.observed).toContainEqual(["POST topics", "OK"]);
    expect(b.observed).toContainEqual(["PUT topics", "INVALID_REQUEST"]);
    expect(b.observed).toContainEqual(["POST topics", "RECORD_LIST_TOO_LARGE"]);
    expect(b.observed).toContainEqual(["GET topics/{name}", "UNKNOWN_TOPIC_OR_PARTITION"]);
    expect(b.observed).toContainEqual(["GET groups/{id}", "GROUP_ID_NOT_FOUND"]);
    expect(b.observed).toContainEqual(["unknown", "INVALID_REQUEST"]);
  });
});
