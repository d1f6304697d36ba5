import { describe, expect, it } from "vitest";
import { AdminService } from "../../../src/gen/rill/v1/admin_service_pb.ts";
import { FetchService } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { GroupService } from "../../../src/gen/rill/v1/group_service_pb.ts";
import { ProduceService } from "../../../src/gen/rill/v1/produce_service_pb.ts";
import { SUPPORTED_OPERATIONS } from "../../../src/security/acl.ts";
import { RPC_ACCESS, type Requirement } from "../../../src/security/operations.ts";

describe("the RPC operation table", () => {
  it("has one row per method of the public services, and no other", () => {
    const methods = [AdminService, ProduceService, FetchService, GroupService].flatMap((s) => s.methods.map((m) => `${s.name}/${m.name}`));
    expect(Object.keys(RPC_ACCESS).sort()).toEqual(methods.sort());
  });

  it("names only operations a binding may grant on that resource type", () => {
    for (const [rpc, row] of Object.entries(RPC_ACCESS)) {
      const reqs: Requirement[] = [...row.all, ...("oneOf" in row ? row.oneOf.flat() : [])];
      for (const r of reqs) {
        if (r.on === "cluster") expect(SUPPORTED_OPERATIONS.CLUSTER, rpc).toContain(r.op);
        if (r.on === "each" || r.on === "filter") expect(SUPPORTED_OPERATIONS[r.type], rpc).toContain(r.op);
        if (r.on === "each" && r.orCluster) expect(SUPPORTED_OPERATIONS.CLUSTER, rpc).toContain(r.orCluster);
      }
    }
  });

  it("keeps the rows people get wrong as Kafka has them", () => {
    expect(RPC_ACCESS["ProduceService/Produce"].all).toEqual([{ on: "each", type: "TOPIC", op: "WRITE" }]);
    expect(RPC_ACCESS["ProduceService/InitProducerId"].oneOf).toEqual([
      [{ on: "cluster", op: "IDEMPOTENT_WRITE" }],
      [{ on: "anyTopic", op: "WRITE" }],
    ]);
    expect(RPC_ACCESS["AdminService/DescribeCluster"].all).toEqual([{ on: "authenticated" }]);
    expect(RPC_ACCESS["GroupService/FetchOffsets"].all[0]).toEqual({ on: "each", type: "GROUP", op: "DESCRIBE" });
    expect(RPC_ACCESS["GroupService/DeleteGroups"].all).toEqual([{ on: "each", type: "GROUP", op: "DELETE" }]);
    expect(RPC_ACCESS["AdminService/CreatePartitions"].all).toEqual([{ on: "each", type: "TOPIC", op: "ALTER" }]);
    expect(RPC_ACCESS["AdminService/CreateTopics"].all).toEqual([{ on: "each", type: "TOPIC", op: "CREATE", orCluster: "CREATE" }]);
  });
});
