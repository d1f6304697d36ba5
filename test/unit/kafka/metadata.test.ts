/**
 * Metadata (key 3) v0–v12: request and response bytes of every version, laid out from Kafka's
 * MetadataRequest.json / MetadataResponse.json (golden.ts), against the schema in
 * src/kafka/apis/metadata.ts.
 */
import { describe, expect, it } from "vitest";
import { MetadataRequest, MetadataResponse, topicIdBytes } from "../../../src/kafka/apis/metadata.ts";
import { arr, bool, cat, golden, i16, i32, str, tags, uvar } from "./golden.ts";

const ID = "0123456789abcdef0123456789abcdef";
const idBytes = Buffer.from(ID, "hex");

describe("MetadataRequest", () => {
  for (let v = 0; v <= 12; v++) {
    it(`v${v}: topics, auto-creation (4+), authorized operations (8+; cluster 8–10), topic ids (10+)`, () => {
      const flex = v >= 9;
      const topic = cat(v >= 10 ? idBytes : Buffer.alloc(0), str("orders", flex), tags(flex));
      const expected = cat(
        arr([topic], flex),
        v >= 4 ? bool(false) : Buffer.alloc(0),
        v >= 8 && v <= 10 ? bool(true) : Buffer.alloc(0),
        v >= 8 ? bool(true) : Buffer.alloc(0),
        tags(flex),
      );
      const back = golden(
        MetadataRequest,
        {
          topics: [{ topicId: idBytes, name: "orders" }],
          allowAutoTopicCreation: false,
          includeClusterAuthorizedOperations: true,
          includeTopicAuthorizedOperations: true,
        },
        v,
        expected,
      );
      expect(back.topics?.[0]?.name).toBe("orders");
      // A field the version lacks decodes as its default (auto-creation: true before v4).
      if (v < 4) expect(back.allowAutoTopicCreation).toBe(true);
    });
  }

  it("null topics (every topic) from v1, a null name with an id from v10", () => {
    expect(golden(MetadataRequest, { topics: null }, 1, cat(i32(-1))).topics).toBeNull();
    const v12 = golden(
      MetadataRequest,
      { topics: [{ topicId: idBytes, name: null }], allowAutoTopicCreation: true },
      12,
      cat(uvar(2), idBytes, uvar(0), uvar(0), bool(true), bool(false), uvar(0)),
    );
    expect(v12.topics?.[0]?.name).toBeNull();
    expect(() => golden(MetadataRequest, { topics: null }, 0, Buffer.alloc(0))).toThrow(/null/);
  });
});

describe("MetadataResponse", () => {
  const value = {
    throttleTimeMs: 7,
    brokers: [{ nodeId: 1, host: "h1", port: 9092, rack: "r1" }],
    clusterId: "cid",
    controllerId: 1,
    topics: [
      {
        errorCode: 0,
        name: "orders",
        topicId: idBytes,
        isInternal: false,
        partitions: [
          { errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 3, replicaNodes: [1, 2], isrNodes: [1], offlineReplicas: [2] },
        ],
        topicAuthorizedOperations: 0x1f8,
      },
    ],
    clusterAuthorizedOperations: -2147483648,
  };
  for (let v = 0; v <= 12; v++) {
    it(`v${v}: throttle (3+), rack (1+), cluster id (2+), controller (1+), internal (1+), leader epoch (7+), offline (5+), ids (10+), operations (8+)`, () => {
      const flex = v >= 9;
      const none = Buffer.alloc(0);
      const ints = (xs: number[]) => arr(xs.map(i32), flex);
      const broker = cat(i32(1), str("h1", flex), i32(9092), v >= 1 ? str("r1", flex) : none, tags(flex));
      const partition = cat(i16(0), i32(0), i32(1), v >= 7 ? i32(3) : none, ints([1, 2]), ints([1]), v >= 5 ? ints([2]) : none, tags(flex));
      const topic = cat(
        i16(0),
        str("orders", flex),
        v >= 10 ? idBytes : none,
        v >= 1 ? bool(false) : none,
        arr([partition], flex),
        v >= 8 ? i32(0x1f8) : none,
        tags(flex),
      );
      const expected = cat(
        v >= 3 ? i32(7) : none,
        arr([broker], flex),
        v >= 2 ? str("cid", flex) : none,
        v >= 1 ? i32(1) : none,
        arr([topic], flex),
        v >= 8 && v <= 10 ? i32(-2147483648) : none,
        tags(flex),
      );
      golden(MetadataResponse, value, v, expected);
    });
  }

  it("a null rack and cluster id, and (v12) a null topic name", () => {
    const bytes = cat(i32(0), uvar(2), i32(1), str("h", true), i32(1), uvar(0), uvar(0), uvar(0), i32(-1), uvar(2));
    const topic = cat(i16(100), uvar(0), idBytes, bool(false), uvar(1), i32(-2147483648), uvar(0));
    const back = golden(
      MetadataResponse,
      {
        brokers: [{ nodeId: 1, host: "h", port: 1, rack: null }],
        clusterId: null,
        controllerId: -1,
        topics: [{ errorCode: 100, name: null, topicId: idBytes, partitions: [] }],
      },
      12,
      cat(bytes, topic, uvar(0)),
    );
    expect(back.topics[0]?.name).toBeNull();
    expect(back.brokers[0]?.rack).toBeNull();
  });

  it("turns the image's 32-hex-digit topic id into Kafka's 16 bytes", () => {
    expect(topicIdBytes(ID)).toEqual(idBytes);
    expect(topicIdBytes("")).toEqual(Buffer.alloc(16));
  });
});
