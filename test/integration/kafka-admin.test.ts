/**
 * The Kafka listener's admin APIs against a real broker, with golden-layout requests (RawKafka):
 * topics created, grown, configured and deleted over Kafka are the ones gRPC sees (the same
 * admin services); ACLs, SCRAM users and quotas likewise; per-item errors carry Kafka's codes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { AlterClientQuotasRequest, AlterClientQuotasResponse } from "../../src/kafka/apis/alter-client-quotas.ts";
import { AlterConfigsRequest, AlterConfigsResponse } from "../../src/kafka/apis/alter-configs.ts";
import { AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse } from "../../src/kafka/apis/alter-user-scram-credentials.ts";
import { ApiVersionsRequest, ApiVersionsResponse } from "../../src/kafka/apis/api-versions.ts";
import { CreateAclsRequest, CreateAclsResponse } from "../../src/kafka/apis/create-acls.ts";
import { CreatePartitionsRequest, CreatePartitionsResponse } from "../../src/kafka/apis/create-partitions.ts";
import { CreateTopicsRequest, CreateTopicsResponse } from "../../src/kafka/apis/create-topics.ts";
import { DeleteAclsRequest, DeleteAclsResponse } from "../../src/kafka/apis/delete-acls.ts";
import { DeleteRecordsRequest, DeleteRecordsResponse } from "../../src/kafka/apis/delete-records.ts";
import { DeleteTopicsRequest, DeleteTopicsResponse } from "../../src/kafka/apis/delete-topics.ts";
import { DescribeAclsRequest, DescribeAclsResponse } from "../../src/kafka/apis/describe-acls.ts";
import { DescribeClientQuotasRequest, DescribeClientQuotasResponse } from "../../src/kafka/apis/describe-client-quotas.ts";
import { DescribeClusterRequest, DescribeClusterResponse } from "../../src/kafka/apis/describe-cluster.ts";
import { DescribeConfigsRequest, DescribeConfigsResponse } from "../../src/kafka/apis/describe-configs.ts";
import {
  DescribeUserScramCredentialsRequest,
  DescribeUserScramCredentialsResponse,
} from "../../src/kafka/apis/describe-user-scram-credentials.ts";
import { ElectLeadersRequest, ElectLeadersResponse } from "../../src/kafka/apis/elect-leaders.ts";
import { IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse } from "../../src/kafka/apis/incremental-alter-configs.ts";
import { parseKafkaAddress } from "../../src/kafka/deps.ts";
import { saltPassword } from "../../src/security/scram.ts";
import { RawKafka } from "./kafka-helpers.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let broker: Broker;
let dir: string;
let c: RawKafka;

beforeAll(async () => {
  dir = tmpDir("rill-kafka-admin-");
  broker = await Broker.start({
    dataDir: dir,
    listen: "127.0.0.1:0",
    config: { kafkaListen: "127.0.0.1:0", numPartitions: 2 },
    shutdownGraceMs: 500,
  });
  c = await RawKafka.connect(broker.kafkaAddress as string);
});

afterAll(async () => {
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

const image = () =>
  (broker as unknown as { parts: { meta: { store: { image: import("../../src/metadata/image.ts").MetadataImage } } } }).parts.meta.store
    .image;

const createTopics = (
  v: number,
  topics: { name: string; numPartitions: number; replicationFactor: number; configs?: { name: string; value: string | null }[] }[],
  validateOnly = false,
) => c.request(19, v, CreateTopicsRequest, { topics, timeoutMs: 5000, validateOnly }, CreateTopicsResponse);

describe("Kafka admin APIs", () => {
  it("advertises every admin API with the versions it implements", async () => {
    const res = await c.request(18, 3, ApiVersionsRequest, {}, ApiVersionsResponse);
    const byKey = new Map(res.apiKeys.map((k) => [k.apiKey, [k.minVersion, k.maxVersion]]));
    expect(byKey.get(19)).toEqual([0, 7]);
    expect(byKey.get(20)).toEqual([0, 6]);
    expect(byKey.get(32)).toEqual([0, 4]);
    expect(byKey.get(17)).toEqual([0, 1]);
    expect(byKey.get(36)).toEqual([0, 2]);
    expect(byKey.get(60)).toEqual([0, 1]);
  });

  it("CreateTopics v0 and v7: defaults for -1, per-topic errors, configs and topic id in v7", async () => {
    const v0 = await createTopics(0, [{ name: "k-a", numPartitions: 3, replicationFactor: 1 }]);
    expect(v0.topics).toEqual([expect.objectContaining({ name: "k-a", errorCode: 0 })]);
    const v7 = await createTopics(7, [
      { name: "k-b", numPartitions: -1, replicationFactor: -1, configs: [{ name: "retention.ms", value: "60000" }] },
      { name: "k-a", numPartitions: 1, replicationFactor: 1 },
      { name: "bad name!", numPartitions: 1, replicationFactor: 1 },
    ]);
    const [b, a, bad] = v7.topics;
    expect(b).toMatchObject({ name: "k-b", errorCode: 0, numPartitions: 2, replicationFactor: 1 });
    expect(b?.topicId.toString("hex")).toBe(image().topics.get("k-b")?.topicId);
    expect(b?.configs).toContainEqual({ name: "retention.ms", value: "60000", readOnly: false, configSource: 1, isSensitive: false });
    expect(a).toMatchObject({ name: "k-a", errorCode: 36 });
    expect(a?.errorMessage).toMatch(/k-a/);
    expect(bad?.errorCode).toBe(17);
    expect(image().topics.get("k-a")?.partitions.length).toBe(3);
    const dry = await createTopics(4, [{ name: "k-dry", numPartitions: 1, replicationFactor: 1 }], true);
    expect(dry.topics[0]?.errorCode).toBe(0);
    expect(image().topics.has("k-dry")).toBe(false);
  });

  it("DescribeConfigs v0-v4 of a topic and of this broker; an unknown topic is that resource's error", async () => {
    for (const v of [0, 1, 2, 3, 4]) {
      const res = await c.request(
        32,
        v,
        DescribeConfigsRequest,
        {
          resources: [
            { resourceType: 2, resourceName: "k-b", configurationKeys: ["retention.ms", "cleanup.policy"] },
            { resourceType: 2, resourceName: "missing", configurationKeys: null },
            { resourceType: 4, resourceName: "1", configurationKeys: ["num.partitions"] },
          ],
          includeDocumentation: true,
        },
        DescribeConfigsResponse,
      );
      const [topic, missing, node] = res.results;
      expect(topic?.errorCode).toBe(0);
      const retention = topic?.configs.find((e) => e.name === "retention.ms");
      expect(retention?.value).toBe("60000");
      if (v === 0) expect(retention?.isDefault).toBe(false);
      if (v >= 1) expect(retention?.configSource).toBe(1);
      if (v >= 3) expect(retention?.documentation).toMatch(/\w/);
      expect(topic?.configs.map((e) => e.name).sort()).toEqual(["cleanup.policy", "retention.ms"]);
      expect(missing?.errorCode).toBe(3);
      expect(node).toMatchObject({ errorCode: 0, resourceType: 4, resourceName: "1" });
      expect(node?.configs).toEqual([expect.objectContaining({ name: "num.partitions", value: "2", readOnly: true })]);
    }
  });

  it("AlterConfigs replaces a topic's overrides; IncrementalAlterConfigs sets and deletes single keys", async () => {
    const alter = await c.request(
      33,
      2,
      AlterConfigsRequest,
      { resources: [{ resourceType: 2, resourceName: "k-b", configs: [{ name: "segment.ms", value: "3600000" }] }] },
      AlterConfigsResponse,
    );
    expect(alter.responses).toEqual([{ errorCode: 0, errorMessage: null, resourceType: 2, resourceName: "k-b" }]);
    expect(image().topics.get("k-b")?.configs).toEqual({ "segment.ms": "3600000" });
    const inc = await c.request(
      44,
      1,
      IncrementalAlterConfigsRequest,
      {
        resources: [
          {
            resourceType: 2,
            resourceName: "k-b",
            configs: [
              { name: "retention.ms", configOperation: 0, value: "120000" },
              { name: "segment.ms", configOperation: 1, value: null },
            ],
          },
          { resourceType: 2, resourceName: "k-a", configs: [{ name: "retention.ms", configOperation: 2, value: "1" }] },
          { resourceType: 4, resourceName: "1", configs: [{ name: "num.partitions", configOperation: 0, value: "3" }] },
        ],
      },
      IncrementalAlterConfigsResponse,
    );
    expect(inc.responses.map((r) => r.errorCode)).toEqual([0, 42, 42]);
    expect(inc.responses[1]?.errorMessage).toMatch(/2 is not SET or DELETE/);
    expect(image().topics.get("k-b")?.configs).toEqual({ "retention.ms": "120000" });
    const v0 = await c.request(
      33,
      0,
      AlterConfigsRequest,
      { resources: [{ resourceType: 2, resourceName: "k-b", configs: [{ name: "retention.ms", value: "-5" }] }] },
      AlterConfigsResponse,
    );
    expect(v0.responses[0]?.errorCode).toBe(40);
    expect(image().topics.get("k-b")?.configs).toEqual({ "retention.ms": "120000" });
  });

  it("CreatePartitions v0 and v3 grow topics one by one", async () => {
    const res = await c.request(
      37,
      3,
      CreatePartitionsRequest,
      {
        topics: [
          { name: "k-a", count: 5, assignments: null },
          { name: "k-a2", count: 5, assignments: null },
          { name: "k-b", count: 1, assignments: null },
        ],
        timeoutMs: 5000,
      },
      CreatePartitionsResponse,
    );
    expect(res.results.map((r) => [r.name, r.errorCode])).toEqual([
      ["k-a", 0],
      ["k-a2", 3],
      ["k-b", 37],
    ]);
    expect(image().topics.get("k-a")?.partitions.length).toBe(5);
    const v0 = await c.request(
      37,
      0,
      CreatePartitionsRequest,
      { topics: [{ name: "k-a", count: 6, assignments: null }], timeoutMs: 5000 },
      CreatePartitionsResponse,
    );
    expect(v0.results).toEqual([{ name: "k-a", errorCode: 0, errorMessage: null }]);
  });

  it("DescribeCluster v0 and v1 answer this node's Kafka address", async () => {
    const own = parseKafkaAddress(broker.kafkaAddress as string);
    for (const v of [0, 1]) {
      const res = await c.request(60, v, DescribeClusterRequest, { includeClusterAuthorizedOperations: true }, DescribeClusterResponse);
      expect(res.errorCode).toBe(0);
      expect(res.clusterId).toBe(broker.clusterId);
      expect(res.controllerId).toBe(1);
      expect(res.brokers).toEqual([{ brokerId: 1, host: own.host, port: own.port, rack: null }]);
      // Authorizer off: every cluster operation (ALTER is bit 7, DESCRIBE bit 8).
      expect(res.clusterAuthorizedOperations & (1 << 7)).not.toBe(0);
      expect(res.clusterAuthorizedOperations & (1 << 8)).not.toBe(0);
    }
    const controllers = await c.request(60, 1, DescribeClusterRequest, { endpointType: 2 }, DescribeClusterResponse);
    expect(controllers.errorCode).toBe(42);
  });

  it("ElectLeaders: nothing to move on one node; an unknown topic is its partitions' error", async () => {
    const res = await c.request(
      43,
      2,
      ElectLeadersRequest,
      {
        electionType: 0,
        topicPartitions: [
          { topic: "k-a", partitions: [0] },
          { topic: "nope", partitions: [0, 1] },
        ],
        timeoutMs: 5000,
      },
      ElectLeadersResponse,
    );
    expect(res.errorCode).toBe(0);
    const byTopic = new Map(res.replicaElectionResults.map((t) => [t.topic, t.partitionResult.map((p) => [p.partitionId, p.errorCode])]));
    expect(byTopic.get("k-a")).toEqual([[0, 84]]);
    expect(byTopic.get("nope")).toEqual([
      [0, 3],
      [1, 3],
    ]);
    const unclean = await c.request(43, 1, ElectLeadersRequest, { electionType: 1, topicPartitions: null }, ElectLeadersResponse);
    expect(unclean.errorCode).toBe(42);
  });

  it("DeleteRecords v0 and v2: up to the high watermark; past it OFFSET_OUT_OF_RANGE; an unknown topic its partitions' error", async () => {
    for (const v of [0, 2]) {
      const res = await c.request(
        21,
        v,
        DeleteRecordsRequest,
        {
          topics: [
            {
              name: "k-a",
              partitions: [
                { partitionIndex: 0, offset: -1n },
                { partitionIndex: 1, offset: 5n },
              ],
            },
            { name: "gone", partitions: [{ partitionIndex: 0, offset: 0n }] },
          ],
          timeoutMs: 5000,
        },
        DeleteRecordsResponse,
      );
      expect(res.topics).toEqual([
        {
          name: "k-a",
          partitions: [
            { partitionIndex: 0, lowWatermark: 0n, errorCode: 0 },
            { partitionIndex: 1, lowWatermark: -1n, errorCode: 1 },
          ],
        },
        { name: "gone", partitions: [{ partitionIndex: 0, lowWatermark: -1n, errorCode: 3 }] },
      ]);
    }
  });

  it("DeleteTopics v1 by name and v6 by topic id", async () => {
    const v1 = await c.request(20, 1, DeleteTopicsRequest, { topicNames: ["k-a", "never"], timeoutMs: 5000 }, DeleteTopicsResponse);
    expect(v1.responses.map((r) => [r.name, r.errorCode])).toEqual([
      ["k-a", 0],
      ["never", 3],
    ]);
    const id = Buffer.from(image().topics.get("k-b")?.topicId as string, "hex");
    const v6 = await c.request(
      20,
      6,
      DeleteTopicsRequest,
      {
        topics: [
          { name: null, topicId: id },
          { name: null, topicId: Buffer.alloc(16, 7) },
        ],
        timeoutMs: 5000,
      },
      DeleteTopicsResponse,
    );
    expect(v6.responses[0]).toMatchObject({ name: "k-b", errorCode: 0 });
    expect(v6.responses[0]?.topicId).toEqual(id);
    expect(v6.responses[1]).toMatchObject({ name: null, errorCode: 100 });
    expect(image().topics.has("k-b")).toBe(false);
  });

  it("CreateAcls, DescribeAcls and DeleteAcls v1 and v3", async () => {
    for (const v of [1, 3]) {
      const name = `acl-topic-${v}`;
      const created = await c.request(
        30,
        v,
        CreateAclsRequest,
        {
          creations: [
            {
              resourceType: 2,
              resourceName: name,
              resourcePatternType: 3,
              principal: "User:alice",
              host: "*",
              operation: 3,
              permissionType: 3,
            },
            { resourceType: 2, resourceName: name, resourcePatternType: 3, principal: "alice", host: "*", operation: 3, permissionType: 3 },
          ],
        },
        CreateAclsResponse,
      );
      expect(created.results.map((r) => r.errorCode)).toEqual([0, 42]);
      const filter = {
        resourceTypeFilter: 2,
        resourceNameFilter: name,
        patternTypeFilter: 1,
        principalFilter: null,
        hostFilter: null,
        operation: 1,
        permissionType: 1,
      };
      const described = await c.request(29, v, DescribeAclsRequest, filter, DescribeAclsResponse);
      expect(described.errorCode).toBe(0);
      expect(described.resources).toEqual([
        {
          resourceType: 2,
          resourceName: name,
          patternType: 3,
          acls: [{ principal: "User:alice", host: "*", operation: 3, permissionType: 3 }],
        },
      ]);
      const deleted = await c.request(31, v, DeleteAclsRequest, { filters: [filter] }, DeleteAclsResponse);
      expect(deleted.filterResults[0]?.matchingAcls).toEqual([
        {
          errorCode: 0,
          errorMessage: null,
          resourceType: 2,
          resourceName: name,
          patternType: 3,
          principal: "User:alice",
          host: "*",
          operation: 3,
          permissionType: 3,
        },
      ]);
      expect((await c.request(29, v, DescribeAclsRequest, filter, DescribeAclsResponse)).resources).toEqual([]);
    }
  });

  it("AlterUserScramCredentials takes Kafka's salted form; DescribeUserScramCredentials answers mechanisms and iterations", async () => {
    const salt = Buffer.from("0123456789abcdef");
    const salted = await saltPassword("secret-1", "SCRAM-SHA-256", 4096, salt);
    const res = await c.request(
      51,
      0,
      AlterUserScramCredentialsRequest,
      {
        upsertions: [
          { name: "kuser", mechanism: 1, iterations: 4096, salt, saltedPassword: salted },
          { name: "short", mechanism: 2, iterations: 4096, salt, saltedPassword: salted },
        ],
        deletions: [{ name: "ghost", mechanism: 9 }],
      },
      AlterUserScramCredentialsResponse,
    );
    expect(res.results.map((r) => [r.user, r.errorCode])).toEqual([
      ["kuser", 0],
      ["short", 93],
      ["ghost", 33],
    ]);
    const described = await c.request(
      50,
      0,
      DescribeUserScramCredentialsRequest,
      { users: [{ name: "kuser" }] },
      DescribeUserScramCredentialsResponse,
    );
    expect(described.results).toEqual([
      { user: "kuser", errorCode: 0, errorMessage: null, credentialInfos: [{ mechanism: 1, iterations: 4096 }] },
    ]);
    expect(image().scramCredential("kuser", "SCRAM-SHA-256")?.iterations).toBe(4096);
  });

  it("AlterClientQuotas and DescribeClientQuotas v0 and v1", async () => {
    for (const v of [0, 1]) {
      const user = `q${v}`;
      const res = await c.request(
        49,
        v,
        AlterClientQuotasRequest,
        {
          entries: [
            { entity: [{ entityType: "user", entityName: user }], ops: [{ key: "producer_byte_rate", value: 1024, remove: false }] },
            { entity: [{ entityType: "ip", entityName: "1.2.3.4" }], ops: [{ key: "producer_byte_rate", value: 1, remove: false }] },
          ],
        },
        AlterClientQuotasResponse,
      );
      expect(res.entries.map((e) => e.errorCode)).toEqual([0, 42]);
      expect(res.entries[1]?.errorMessage).toMatch(/"ip"/);
      const described = await c.request(
        48,
        v,
        DescribeClientQuotasRequest,
        { components: [{ entityType: "user", matchType: 0, match: user }], strict: false },
        DescribeClientQuotasResponse,
      );
      expect(described.entries).toEqual([
        { entity: [{ entityType: "user", entityName: user }], values: [{ key: "producer_byte_rate", value: 1024 }] },
      ]);
    }
  });
});
