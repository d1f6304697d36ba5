/**
 * The AdminService codec: a forwarded change is encoded from the domain input and the
 * controller's response decoded back, so both directions must lose nothing, errors and
 * unrecognized enum values included.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Errors, RillError, rillError } from "../../../src/base/errors.ts";
import {
  AlterConfigsRequestSchema,
  ConfigOperation,
  ConfigResourceType,
  ConfigSource,
  DescribeConfigsRequestSchema,
} from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { ErrorDetailSchema, NodeRole } from "../../../src/gen/rill/v1/common_pb.ts";
import {
  changeCodecs,
  decodeAlterConfigs,
  decodeCreateTopics,
  decodeDescribeConfigs,
  encodeAlterConfigsResult,
  encodeCreatePartitionsResult,
  encodeCreateTopicsResult,
  encodeDeleteTopicsResult,
  encodeDescribeClusterResult,
  encodeDescribeConfigsResult,
  encodeDescribeTopicsResult,
  encodeElectLeadersResult,
  fromErrorDetail,
} from "../../../src/rpc/admin-codec.ts";
import type { AlterConfigsInput, AlterConfigsResult } from "../../../src/service/admin-types.ts";

/** `value` with every RillError replaced by its catalog name and message, for deep comparison. */
function plain(value: unknown): unknown {
  if (value instanceof RillError) return { kind: value.kind.name, message: value.message };
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

describe("admin codec", () => {
  it("a forwarded CreateTopics keeps every field of the input and of the answer", () => {
    const input = {
      topics: [{ name: "a", partitions: 3, replicationFactor: 2, configs: { "retention.ms": "10" } }],
      validateOnly: true,
      timeoutMs: 500,
    };
    expect(decodeCreateTopics(changeCodecs.createTopics.encodeInput(input))).toEqual(input);
    const result = {
      topics: [
        { name: "a", partitions: 3, replicationFactor: 2 },
        { name: "b", error: rillError("TOPIC_ALREADY_EXISTS", 'name: topic "b" already exists'), partitions: 0, replicationFactor: 0 },
      ],
    };
    const back = changeCodecs.createTopics.decodeResult(encodeCreateTopicsResult(result));
    expect(plain(back)).toEqual(plain(result));
    expect(back.topics[1]?.error?.kind).toBe(Errors.TOPIC_ALREADY_EXISTS);
  });

  it("the inputs of the other changes survive encoding for the controller", () => {
    const alter: AlterConfigsInput = {
      resources: [
        {
          resource: { type: "topic", name: "x" },
          operations: [
            { name: "retention.ms", operation: "set", value: "1" },
            { name: "segment.ms", operation: "delete", value: "" },
            { name: "k", operation: { unrecognized: 9 }, value: "" },
          ],
        },
        { operations: [] },
        { resource: { type: { unrecognized: 0 }, name: "" }, operations: [] },
      ],
      validateOnly: true,
    };
    expect(decodeAlterConfigs(changeCodecs.alterConfigs.encodeInput(alter))).toEqual(alter);
    const del = changeCodecs.deleteTopics.encodeInput({ topics: ["x", "y"], timeoutMs: 3 });
    expect([del.topics, del.timeoutMs]).toEqual([["x", "y"], 3]);
    const grow = changeCodecs.createPartitions.encodeInput({ topics: [{ name: "x", count: 4 }], validateOnly: true, timeoutMs: 1 });
    expect([grow.topics.map((t) => [t.name, t.count]), grow.validateOnly, grow.timeoutMs]).toEqual([[["x", 4]], true, 1]);
    const elect = changeCodecs.electLeaders.encodeInput({ partitions: [{ topic: "x", partitions: [0, 2] }] });
    expect(elect.partitions.map((tp) => [tp.topic, tp.partitions])).toEqual([["x", [0, 2]]]);
  });

  it("the answers of the other changes keep their errors and resources", () => {
    const invalid = rillError("INVALID_CONFIG", "retention.ms: must be >= -1");
    const deleted = {
      topics: [{ name: "x" }, { name: "y", error: rillError("UNKNOWN_TOPIC_OR_PARTITION", 'name: topic "y" does not exist') }],
    };
    expect(plain(changeCodecs.deleteTopics.decodeResult(encodeDeleteTopicsResult(deleted)))).toEqual(plain(deleted));
    const grown = { topics: [{ name: "x", error: invalid }, { name: "z" }] };
    expect(plain(changeCodecs.createPartitions.decodeResult(encodeCreatePartitionsResult(grown)))).toEqual(plain(grown));
    const altered: AlterConfigsResult = {
      results: [{ resource: { type: "topic", name: "x" }, error: invalid }, {}, { resource: { type: { unrecognized: 5 }, name: "b" } }],
    };
    expect(plain(changeCodecs.alterConfigs.decodeResult(encodeAlterConfigsResult(altered)))).toEqual(plain(altered));
    const elected = {
      results: [
        { topic: "x", partition: 1, leader: 2, error: rillError("ELECTION_NOT_NEEDED") },
        { topic: "x", partition: 2, leader: 3 },
      ],
    };
    expect(plain(changeCodecs.electLeaders.decodeResult(encodeElectLeadersResult(elected)))).toEqual(plain(elected));
  });

  it("an error code this node does not know keeps its code, name and retriable flag, with the controller's message", () => {
    const e = fromErrorDetail(
      create(ErrorDetailSchema, { code: 99999, name: "FUTURE", message: "from a newer controller", retriable: true }),
    );
    expect([e.code, e.kind.name, e.retriable, e.message]).toEqual([99999, "FUTURE", true, "from a newer controller"]);
    const known = fromErrorDetail(create(ErrorDetailSchema, { code: Errors.NOT_CONTROLLER.code, message: "m" }));
    expect(known.kind).toBe(Errors.NOT_CONTROLLER);
  });

  it("decodes the enum values of a request, keeping unrecognized ones for the error message", () => {
    const req = create(DescribeConfigsRequestSchema, {
      resources: [
        { type: ConfigResourceType.TOPIC, name: "t" },
        { type: ConfigResourceType.BROKER, name: "" },
        { type: ConfigResourceType.UNSPECIFIED, name: "u" },
      ],
      names: ["a"],
      includeDocumentation: true,
    });
    expect(decodeDescribeConfigs(req)).toEqual({
      resources: [
        { type: "topic", name: "t" },
        { type: "broker", name: "" },
        { type: { unrecognized: 0 }, name: "u" },
      ],
      names: ["a"],
      includeDocumentation: true,
    });
    const alter = create(AlterConfigsRequestSchema, {
      resources: [{ operations: [{ name: "k", operation: ConfigOperation.UNSPECIFIED, value: "v" }] }],
    });
    expect(decodeAlterConfigs(alter).resources[0]).toEqual({ operations: [{ name: "k", operation: { unrecognized: 0 }, value: "v" }] });
  });

  it("encodes offsets as int64, sources and roles as their enum values", () => {
    const topics = encodeDescribeTopicsResult({
      topics: [
        {
          name: "t",
          internal: false,
          configs: { a: "1" },
          partitions: [
            {
              partition: 0,
              leader: 2,
              replicas: [2, 1, 3],
              isr: [2],
              eligibleLeaderReplicas: [1],
              lastKnownElr: [3],
              leaderEpoch: 3,
              logStartOffset: 4,
              highWatermark: 2 ** 40,
            },
          ],
        },
      ],
    });
    expect(topics.topics[0]?.partitions[0]?.highWatermark).toBe(2n ** 40n);
    expect(topics.topics[0]?.partitions[0]?.eligibleLeaderReplicas).toEqual([1]);
    expect(topics.topics[0]?.partitions[0]?.lastKnownElr).toEqual([3]);
    expect(topics.topics[0]?.error).toBeUndefined();
    const configs = encodeDescribeConfigsResult({
      results: [
        {
          resource: { type: "broker", name: "" },
          entries: [{ name: "n", value: "v", source: "static-broker", readOnly: true, sensitive: false, documentation: "" }],
        },
      ],
    });
    expect(configs.results[0]?.entries[0]?.source).toBe(ConfigSource.STATIC_BROKER);
    expect(configs.results[0]?.resource?.type).toBe(ConfigResourceType.BROKER);
    const cluster = encodeDescribeClusterResult({
      clusterId: "c",
      controllerId: -1,
      brokers: [
        { nodeId: 1, address: "h:1", roles: ["broker", "controller"], fenced: false, rack: "", cordoned: false },
        { nodeId: 2, address: "h:2", roles: ["broker"], fenced: false, rack: "", cordoned: true },
      ],
      voters: [],
      node: { nodeId: 1, roles: ["controller"], metadataOffset: -1, raftRole: "observer", raftTerm: 0, commitOffset: 5, brokerState: "" },
    });
    expect(cluster.brokers[0]?.roles).toEqual([NodeRole.BROKER, NodeRole.CONTROLLER]);
    expect(cluster.brokers.map((b) => b.cordoned)).toEqual([false, true]); // issue 21
    expect(cluster.node?.metadataOffset).toBe(-1n);
  });
});
