/**
 * The Kafka listener's framing and ApiVersions against a real broker: versions advertised, the
 * v0-layout answer to an unknown ApiVersions version, and connections closed — alone — on bad
 * frames (unknown API key, a size of 2^31-1, a truncated body, garbage tagged fields).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { ApiVersionsRequest, ApiVersionsResponse } from "../../src/kafka/apis/api-versions.ts";
import { ListOffsetsRequest, ListOffsetsResponse } from "../../src/kafka/apis/list-offsets.ts";
import { MetadataRequest, MetadataResponse } from "../../src/kafka/apis/metadata.ts";
import { ProduceRequest, ProduceResponse } from "../../src/kafka/apis/produce.ts";
import { encode } from "../../src/kafka/schema.ts";
import { Compression, encodeBatch } from "../../src/protocol/record-batch.ts";
import { KafkaWriter } from "../../src/kafka/wire.ts";
import { KafkaReader } from "../../src/kafka/wire.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;
let address: string;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", httpListen: "127.0.0.1:0" },
    shutdownGraceMs: 500,
  });
  address = broker.kafkaAddress as string;
});

afterAll(async () => {
  await broker?.close();
  rmTmp(dir);
});

describe("Kafka listener", () => {
  it("answers ApiVersions v0 to v4 with the APIs it implements", async () => {
    const c = await RawKafka.connect(address);
    for (const v of [0, 1, 2, 3, 4]) {
      const res = await c.request(
        18,
        v,
        ApiVersionsRequest,
        { clientSoftwareName: "test", clientSoftwareVersion: "1" },
        ApiVersionsResponse,
      );
      expect(res.errorCode).toBe(0);
      expect(res.apiKeys).toContainEqual({ apiKey: 18, minVersion: 0, maxVersion: 4 });
    }
    c.close();
  });

  it("answers an ApiVersions version it does not know with UNSUPPORTED_VERSION in the v0 layout", async () => {
    const c = await RawKafka.connect(address);
    const body = await c.sendRaw(18, 99, Buffer.alloc(0), true);
    const r = new KafkaReader(body);
    expect(r.int16()).toBe(35);
    const n = r.int32();
    const keys = Array.from({ length: n }, () => [r.int16(), r.int16(), r.int16()]);
    expect(keys).toContainEqual([18, 0, 4]);
    // The connection stays usable: the client retries with a version from the answer.
    const res = await c.request(18, 3, ApiVersionsRequest, {}, ApiVersionsResponse);
    expect(res.errorCode).toBe(0);
    c.close();
  });

  it("closes only the connection that sent a bad frame", async () => {
    const good = await RawKafka.connect(address);
    const bad = async (bytes: Buffer) => {
      const c = await RawKafka.connect(address);
      c.write(bytes);
      await c.closed;
    };
    // A frame with its true size in front.
    const framed = (h: string) => {
      const body = Buffer.from(h, "hex");
      const size = Buffer.alloc(4);
      size.writeInt32BE(body.length);
      return Buffer.concat([size, body]);
    };
    // Unknown API key 999.
    await bad(framed("03e7" + "0000" + "00000001" + "0000"));
    // A size of 2^31-1.
    await bad(Buffer.from("7fffffff0012000000000001", "hex"));
    // A size too small for a header.
    await bad(Buffer.from("00000002abcd", "hex"));
    // ApiVersions v3 whose body is truncated (a compact string claiming 10 bytes, one sent).
    await bad(framed("0012" + "0003" + "00000001" + "0000" + "00" + "0b61"));
    // ApiVersions v3 with garbage where the body's tag section should be (5 tags, nothing after).
    await bad(framed("0012" + "0003" + "00000001" + "0000" + "00" + "01" + "01" + "05"));
    // ApiVersions v0 with bytes left over after its (empty) body.
    await bad(framed("0012" + "0000" + "00000001" + "0000" + "ffffff"));
    const res = await good.request(18, 2, ApiVersionsRequest, {}, ApiVersionsResponse);
    expect(res.errorCode).toBe(0);
    good.close();
  });

  it("answers pipelined requests in request order", async () => {
    const c = await RawKafka.connect(address);
    const answers = await Promise.all([0, 1, 2, 3, 4, 0, 1, 2].map((v) => c.request(18, v, ApiVersionsRequest, {}, ApiVersionsResponse)));
    expect(answers.every((a) => a.errorCode === 0)).toBe(true);
    c.close();
  });

  it("counts its requests and connections in /metrics with protocol kafka", async () => {
    const c = await RawKafka.connect(address);
    const scrape = async () => await (await globalThis.fetch(`http://${broker.http?.address}/metrics`)).text();
    const count = (text: string) =>
      Number(/rill_requests_total\{api="ApiVersions",protocol="kafka",code="OK"\} (\d+)/.exec(text)?.[1] ?? 0);
    const before = count(await scrape());
    for (let i = 0; i < 3; i++) await c.request(18, 2, ApiVersionsRequest, {}, ApiVersionsResponse);
    const text = await scrape();
    expect(count(text)).toBe(before + 3);
    expect(Number(/rill_connections\{listener="kafka"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    c.close();
  });

  it("stores nothing from a Produce frame that is cut short, answers an unsupported version by closing, and keeps serving", async () => {
    const c = await RawKafka.connect(address);
    await c.request(3, 9, MetadataRequest, { topics: [{ name: "bad-input" }], allowAutoTopicCreation: true }, MetadataResponse);
    const endOffset = async () => {
      const r = await c.request(
        2,
        7,
        ListOffsetsRequest,
        { replicaId: -1, topics: [{ name: "bad-input", partitions: [{ partitionIndex: 0, timestamp: -1n }] }] },
        ListOffsetsResponse,
      );
      return r.topics[0]?.partitions[0]?.offset;
    };
    // Wait for the auto-created topic's leader, then one good produce.
    let end: bigint | undefined = -1n;
    for (let i = 0; i < 50 && end !== 0n; i++) {
      end = await endOffset();
      if (end !== 0n) await new Promise((r) => setTimeout(r, 100));
    }
    expect(end).toBe(0n);
    const batch = encodeBatch([{ key: null, value: "good" }], { compression: Compression.NONE, nowMs: Date.now() });
    const good = { acks: 1, timeoutMs: 5000, topicData: [{ name: "bad-input", partitionData: [{ index: 0, records: batch }] }] };
    const ok = await c.request(0, 9, ProduceRequest, good, ProduceResponse);
    expect(ok.responses[0]?.partitionResponses[0]?.errorCode).toBe(0);
    // The same request with its body cut inside the batch: the connection closes, nothing is appended.
    const w = new KafkaWriter();
    encode(ProduceRequest, good, 9, w);
    const body = w.toBuffer();
    const bad = await RawKafka.connect(address);
    void bad.sendRaw(0, 9, body.subarray(0, body.length - 20), true);
    await bad.closed;
    // Metadata at a version this listener does not advertise: closed, not answered.
    const old = await RawKafka.connect(address);
    void old.sendRaw(3, 99, Buffer.alloc(0), true);
    await old.closed;
    expect(await endOffset()).toBe(1n);
    c.close();
  });
});
