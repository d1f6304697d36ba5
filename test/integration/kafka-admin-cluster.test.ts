/**
 * Kafka admin requests on a 3-node cluster: a change sent to a node that is not the active
 * controller is forwarded there (as the AdminService call gRPC forwards) and answered once that
 * node holds it; DescribeCluster lists every node's own Kafka address.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CreateAclsRequest, CreateAclsResponse } from "../../src/kafka/apis/create-acls.ts";
import { CreateTopicsRequest, CreateTopicsResponse } from "../../src/kafka/apis/create-topics.ts";
import { DeleteTopicsRequest, DeleteTopicsResponse } from "../../src/kafka/apis/delete-topics.ts";
import { DescribeAclsRequest, DescribeAclsResponse } from "../../src/kafka/apis/describe-acls.ts";
import { DescribeClusterRequest, DescribeClusterResponse } from "../../src/kafka/apis/describe-cluster.ts";
import { DescribeConfigsRequest, DescribeConfigsResponse } from "../../src/kafka/apis/describe-configs.ts";
import { Cluster, freePort } from "./cluster-harness.ts";
import { RawKafka } from "./kafka-helpers.ts";

let cluster: Cluster;
const kafkaPorts = new Map<number, number>();

beforeAll(async () => {
  for (const id of [1, 2, 3]) kafkaPorts.set(id, await freePort());
  cluster = await Cluster.start({
    name: "rill-kadmin-cluster-",
    nodes: 3,
    nodeSet: (id) => ({ "kafka.listen": `127.0.0.1:${kafkaPorts.get(id)}` }),
  });
  await cluster.waitForStable(30_000);
}, 120_000);

afterEach((ctx) => {
  if (ctx.task.result?.state === "fail") console.log(cluster.tails(30));
});

afterAll(async () => {
  await cluster?.close();
}, 60_000);

describe("Kafka admin APIs on a cluster", () => {
  it("forwards changes from every node to the controller and reads them back there at once", async () => {
    const views = await cluster.views();
    const controller = [...views.values()].find((v) => v !== null)?.controllerId ?? -1;
    expect(controller).toBeGreaterThan(0);
    for (const id of [1, 2, 3]) {
      const c = await RawKafka.connect(`127.0.0.1:${kafkaPorts.get(id)}`);
      try {
        const name = `via-${id}`;
        const created = await c.request(
          19,
          7,
          CreateTopicsRequest,
          {
            topics: [{ name, numPartitions: 2, replicationFactor: 3, configs: [{ name: "retention.ms", value: "90000" }] }],
            timeoutMs: 10_000,
          },
          CreateTopicsResponse,
        );
        expect(created.topics[0], `through node ${id} (controller ${controller}): ${created.topics[0]?.errorMessage}`).toMatchObject({
          name,
          errorCode: 0,
          numPartitions: 2,
          replicationFactor: 3,
        });
        // Read-your-writes through the same node: its image holds the topic already.
        const configs = await c.request(
          32,
          4,
          DescribeConfigsRequest,
          { resources: [{ resourceType: 2, resourceName: name, configurationKeys: ["retention.ms"] }] },
          DescribeConfigsResponse,
        );
        expect(configs.results[0]?.configs.map((e) => [e.name, e.value])).toEqual([["retention.ms", "90000"]]);
        const acl = await c.request(
          30,
          3,
          CreateAclsRequest,
          {
            creations: [
              {
                resourceType: 2,
                resourceName: name,
                resourcePatternType: 3,
                principal: "User:x",
                host: "*",
                operation: 3,
                permissionType: 3,
              },
            ],
          },
          CreateAclsResponse,
        );
        expect(acl.results[0]?.errorCode).toBe(0);
        const acls = await c.request(
          29,
          3,
          DescribeAclsRequest,
          {
            resourceTypeFilter: 2,
            resourceNameFilter: name,
            patternTypeFilter: 3,
            principalFilter: null,
            hostFilter: null,
            operation: 1,
            permissionType: 1,
          },
          DescribeAclsResponse,
        );
        expect(acls.resources.map((r) => r.resourceName)).toEqual([name]);
        const deleted = await c.request(
          20,
          6,
          DeleteTopicsRequest,
          { topics: [{ name, topicId: Buffer.alloc(16) }], timeoutMs: 10_000 },
          DeleteTopicsResponse,
        );
        expect(deleted.responses[0]?.errorCode).toBe(0);
      } finally {
        c.close();
      }
    }
  }, 90_000);

  it("DescribeCluster lists every node's Kafka address", async () => {
    const c = await RawKafka.connect(`127.0.0.1:${kafkaPorts.get(2)}`);
    try {
      const res = await c.request(60, 1, DescribeClusterRequest, {}, DescribeClusterResponse);
      expect(res.errorCode).toBe(0);
      expect(res.brokers.map((b) => [b.brokerId, b.host, b.port])).toEqual([1, 2, 3].map((id) => [id, "127.0.0.1", kafkaPorts.get(id)]));
    } finally {
      c.close();
    }
  }, 30_000);
});
