/**
 * Authentication and authorization on every public RPC (issue 13): a broker with
 * auth.methods=password, authorizer.enable=true, super.users=User:root, over a plaintext test
 * listener (auth.allow.plaintext.passwords=true). Users and ACLs are made through the admin RPCs
 * on the same data directory before the broker restarts with authentication on.
 *
 * The table calls each public RPC as {no credentials, wrong password, allowed principal (alice),
 * denied principal (bob), super user (root)} and asserts the status, the catalog code, and that
 * nothing changed when the call was refused.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { fetchClientCodecs, produceClientCodecs } from "../../src/client/wire-codec.ts";
import type { BrokerConfig } from "../../src/config/schema.ts";
import {
  AddRaftVoterRequestSchema,
  AdminService,
  AlterPartitionReassignmentsRequestSchema,
  AlterClientQuotasRequestSchema,
  AlterConfigsRequestSchema,
  ConfigOperation,
  ConfigResourceType,
  CreatePartitionsRequestSchema,
  CreateTopicsRequestSchema,
  DeleteRecordsRequestSchema,
  AbortTransactionRequestSchema,
  DescribeTransactionsRequestSchema,
  ListTransactionsRequestSchema,
  DeleteTopicsRequestSchema,
  DescribeClientQuotasRequestSchema,
  DescribeClusterRequestSchema,
  type DescribeClusterResponse,
  DescribeConfigsRequestSchema,
  DescribeTopicsRequestSchema,
  type DescribeTopicsResponse,
  ElectLeadersRequestSchema,
  ListTopicsRequestSchema,
  ListPartitionReassignmentsRequestSchema,
  AlterBrokerCordonsRequestSchema,
  type ListTopicsResponse,
  QuotaEntityType,
  RemoveRaftVoterRequestSchema,
} from "../../src/gen/rill/v1/admin_service_pb.ts";
import { OffsetSpec, RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import {
  FetchRequestSchema,
  type FetchResponse,
  FetchService,
  ListOffsetsRequestSchema,
  type ListOffsetsResponse,
  SubscribeRequestSchema,
} from "../../src/gen/rill/v1/fetch_service_pb.ts";
import {
  AutoOffsetReset,
  CommitOffsetsRequestSchema,
  ConsumeRequestSchema,
  DeleteGroupsRequestSchema,
  DeleteOffsetsRequestSchema,
  DescribeGroupsRequestSchema,
  FetchOffsetsRequestSchema,
  GroupService,
  HeartbeatRequestSchema,
  ListGroupsRequestSchema,
  type ListGroupsResponse,
  ResetOffsetsRequestSchema,
} from "../../src/gen/rill/v1/group_service_pb.ts";
import {
  InitProducerIdRequestSchema,
  type InitProducerIdResponse,
  EndTransactionRequestSchema,
  ProduceRequestSchema,
  ProduceService,
  ProduceStreamRequestSchema,
  type ProduceStreamResponse,
} from "../../src/gen/rill/v1/produce_service_pb.ts";
import {
  AclOperation,
  AclPatternType,
  AclPermission,
  AclResourceType,
  AlterUserScramCredentialsRequestSchema,
  CreateAclsRequestSchema,
  DeleteAclsRequestSchema,
  DescribeAclsRequestSchema,
  type DescribeAclsResponse,
  DescribeUserScramCredentialsRequestSchema,
  ScramMechanism,
} from "../../src/gen/rill/v1/security_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const S = grpc.status;
const AUTH_ON: Partial<BrokerConfig> = {
  authMethods: ["password"],
  authAllowPlaintextPasswords: true,
  authorizerEnable: true,
  superUsers: "User:root",
};

type Who = "none" | "wrong" | "alice" | "bob" | "root";
const PASSWORDS: Record<Exclude<Who, "none" | "wrong">, string> = { alice: "alice-pw", bob: "bob-pw", root: "root-pw" };

function metadataOf(who: Who): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("x-test-who", who);
  const cred = who === "none" ? null : who === "wrong" ? "alice:not-it" : `${who}:${PASSWORDS[who]}`;
  if (cred) md.set("authorization", `Basic ${Buffer.from(cred).toString("base64")}`);
  return md;
}

interface Clients {
  admin: grpc.Client;
  produce: grpc.Client;
  fetch: grpc.Client;
  group: grpc.Client;
  close(): void;
}

function clientsOf(address: string): Clients {
  const opts = clientChannelOptions();
  const creds = grpc.credentials.createInsecure();
  const admin = new (clientConstructor(AdminService))(address, creds, opts);
  const produce = new (clientConstructor(ProduceService, produceClientCodecs))(address, creds, opts);
  const fetch = new (clientConstructor(FetchService, fetchClientCodecs))(address, creds, opts);
  const group = new (clientConstructor(GroupService))(address, creds, opts);
  return {
    admin,
    produce,
    fetch,
    group,
    close() {
      for (const c of [admin, produce, fetch, group]) c.close();
    },
  };
}

type Method = (r: unknown, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;

function unary<T = unknown>(client: grpc.Client, method: string, req: unknown, md: grpc.Metadata): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Method>)[method]!;
    fn.call(client, req, md, { deadline: Date.now() + 10_000 }, (e, r) => (e ? reject(e) : resolve(r as T)));
  });
}

/** A refused call as the test sees it: the gRPC status and the catalog name in the trailers. */
interface Refusal {
  readonly status: number;
  readonly name: string | undefined;
}

function refusalOf(e: unknown): Refusal {
  const err = e as grpc.ServiceError;
  if (typeof err?.code !== "number") throw e;
  return { status: err.code, name: err.metadata?.get("rill-error-name")[0]?.toString() };
}

/** The first message of a server or bidi stream, or its refusal; the stream is then cancelled. */
function firstOf<T>(stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<unknown, T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`no message within 10 s (${(stream as unknown as { __who?: string }).__who ?? ""})`));
    }, 10_000);
    stream.once("data", (m: T) => {
      clearTimeout(timer);
      stream.cancel();
      resolve(m);
    });
    stream.once("error", (e: unknown) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

let dir: string;
let broker: Broker;
let c: Clients;
let seq = 0;
const fresh = (prefix: string) => `${prefix}-${++seq}`;

/** A transactional id initialized by root; `open`: with a transaction open on t-main (a record written in it). */
async function txnOf(id: string, open: boolean): Promise<{ id: string; pid: string; epoch: number }> {
  const r = await unary<InitProducerIdResponse>(
    c.produce,
    "initProducerId",
    create(InitProducerIdRequestSchema, { transactionalId: id }),
    root(),
  );
  if (open)
    await unary(
      c.produce,
      "produce",
      create(ProduceRequestSchema, {
        topic: "t-main",
        partition: 0,
        producerId: r.producerId,
        producerEpoch: r.producerEpoch,
        transactionalId: id,
        records: [{ value: Buffer.from("in-txn") }],
      }),
      root(),
    );
  return { id, pid: String(r.producerId), epoch: r.producerEpoch };
}

const root = () => metadataOf("root");
const binding = (principal: string, type: AclResourceType, name: string, op: AclOperation, pattern = AclPatternType.LITERAL) => ({
  principal,
  host: "*",
  resourceType: type,
  resourceName: name,
  patternType: pattern,
  operation: op,
  permission: AclPermission.ALLOW,
});

async function makeTopic(name: string): Promise<void> {
  await unary(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name, partitions: 1 }] }), root());
}

async function produceOne(topic: string, md: grpc.Metadata): Promise<unknown> {
  return unary(c.produce, "produce", create(ProduceRequestSchema, { topic, partition: 0, records: [{ value: Buffer.from("v") }] }), md);
}

/** What the refused calls must not change, read by the super user. */
async function snapshot(): Promise<unknown> {
  const topics = await unary<ListTopicsResponse>(
    c.admin,
    "listTopics",
    create(ListTopicsRequestSchema, { includeInternal: false }),
    root(),
  );
  const described = await unary<DescribeTopicsResponse>(c.admin, "describeTopics", create(DescribeTopicsRequestSchema, {}), root());
  const acls = await unary<DescribeAclsResponse>(c.admin, "describeAcls", create(DescribeAclsRequestSchema, {}), root());
  const users = await unary(c.admin, "describeUserScramCredentials", create(DescribeUserScramCredentialsRequestSchema, {}), root());
  const groups = await unary<ListGroupsResponse>(c.group, "listGroups", create(ListGroupsRequestSchema, {}), root());
  const quotas = await unary(c.admin, "describeClientQuotas", create(DescribeClientQuotasRequestSchema, {}), root());
  const offsets = await Promise.all(
    ["g-main", ...groups.groups.map((g) => g.groupId)].map((groupId) =>
      unary(c.group, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId }), root()),
    ),
  );
  return JSON.stringify(
    {
      topics,
      described: described.topics.map((t) => [t.name, t.configs, t.partitions.map((p) => [p.highWatermark, p.logStartOffset])]),
      acls,
      users,
      groups,
      quotas,
      offsets,
    },
    (_k, v) => (typeof v === "bigint" ? v.toString() : v),
  );
}

/**
 * One row per public RPC: how to call it as `who` (resources are made fresh for a call that
 * changes them), and what bob — authenticated, without ACLs on these resources — gets: a refusal
 * with its catalog code, or a filtered answer checked by `filtered`.
 */
interface Row {
  readonly rpc: string;
  /** Makes what the call acts on (before the "nothing changed" snapshot); its value goes to `call`. */
  readonly prepare?: () => Promise<string>;
  readonly call: (md: grpc.Metadata, prepared: string) => Promise<unknown>;
  readonly bob: string | ((res: unknown) => void);
}

/**
 * A call that passed authorization and was then refused for what it asks (the refusal `name`),
 * as the answer: this single-node broker is its quorum's only voter, so once allowed, adding node 2
 * (no such observer) gets VOTER_NOT_FOUND and removing node 1 (the last voter) INVALID_REQUEST.
 */
const pastAuthorization = (call: Promise<unknown>, name: string): Promise<unknown> =>
  call.catch((e: unknown) => {
    if (refusalOf(e).name === name) return { refused: name };
    throw e;
  });

const ROWS: Row[] = [
  {
    rpc: "AdminService/CreateTopics",
    call: (md) =>
      unary(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: fresh("t-new"), partitions: 1 }] }), md),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DeleteTopics",
    prepare: async () => {
      const name = fresh("t-del");
      await makeTopic(name);
      return name;
    },
    call: (md, name) => unary(c.admin, "deleteTopics", create(DeleteTopicsRequestSchema, { topics: [name] }), md),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DeleteRecords",
    prepare: async () => {
      const name = fresh("t-delrec");
      await makeTopic(name);
      await produceOne(name, root());
      return name;
    },
    call: (md, name) =>
      unary(c.admin, "deleteRecords", create(DeleteRecordsRequestSchema, { partitions: [{ topic: name, partition: 0, offset: -1n }] }), md),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/ListTopics",
    call: (md) => unary(c.admin, "listTopics", create(ListTopicsRequestSchema, {}), md),
    bob: (res) => expect((res as ListTopicsResponse).topics.map((t) => t.name)).toEqual(["b-visible"]),
  },
  {
    rpc: "AdminService/DescribeTopics",
    call: (md) => unary(c.admin, "describeTopics", create(DescribeTopicsRequestSchema, { topics: ["t-main"] }), md),
    bob: (res) => expect((res as DescribeTopicsResponse).topics[0]?.error?.name).toBe("TOPIC_AUTHORIZATION_FAILED"),
  },
  {
    rpc: "AdminService/CreatePartitions",
    prepare: async () => {
      const name = fresh("t-grow");
      await makeTopic(name);
      return name;
    },
    call: (md, name) => unary(c.admin, "createPartitions", create(CreatePartitionsRequestSchema, { topics: [{ name, count: 2 }] }), md),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeConfigs",
    call: (md) =>
      unary(
        c.admin,
        "describeConfigs",
        create(DescribeConfigsRequestSchema, { resources: [{ type: ConfigResourceType.TOPIC, name: "t-main" }] }),
        md,
      ),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/AlterConfigs",
    call: (md) =>
      unary(
        c.admin,
        "alterConfigs",
        create(AlterConfigsRequestSchema, {
          resources: [
            {
              resource: { type: ConfigResourceType.TOPIC, name: "t-main" },
              operations: [{ name: "retention.ms", operation: ConfigOperation.SET, value: String(86_400_000 + ++seq) }],
            },
          ],
        }),
        md,
      ),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeCluster",
    call: (md) => unary(c.admin, "describeCluster", create(DescribeClusterRequestSchema, {}), md),
    bob: (res) => {
      const r = res as DescribeClusterResponse;
      expect(r.brokers.map((b) => b.address)).toEqual([broker.address]);
      expect(r.node?.raftTerm).toBe(0n);
      expect(r.node?.raftRole).toBe("");
    },
  },
  {
    rpc: "AdminService/AddRaftVoter",
    call: (md) =>
      pastAuthorization(unary(c.admin, "addRaftVoter", create(AddRaftVoterRequestSchema, { nodeId: 2 }), md), "VOTER_NOT_FOUND"),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/RemoveRaftVoter",
    call: (md) =>
      pastAuthorization(unary(c.admin, "removeRaftVoter", create(RemoveRaftVoterRequestSchema, { nodeId: 1 }), md), "INVALID_REQUEST"),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  // partition reassignment (issue 21): a cancel of a partition not being moved changes nothing
  {
    rpc: "AdminService/AlterPartitionReassignments",
    call: async (md) => {
      const res = await unary(
        c.admin,
        "alterPartitionReassignments",
        create(AlterPartitionReassignmentsRequestSchema, { partitions: [{ topic: "t-main", partition: 0, cancel: true }] }),
        md,
      );
      expect((res as { results: { error?: { name: string } }[] }).results[0]?.error?.name).toBe("NO_REASSIGNMENT_IN_PROGRESS");
      return res;
    },
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    // cordoned brokers (issue 21): a node that never registered changes nothing
    rpc: "AdminService/AlterBrokerCordons",
    call: async (md) => {
      const res = await unary(
        c.admin,
        "alterBrokerCordons",
        create(AlterBrokerCordonsRequestSchema, { brokerIds: [999], cordoned: true }),
        md,
      );
      expect((res as { results: { error?: { name: string } }[] }).results[0]?.error?.name).toBe("BROKER_ID_NOT_REGISTERED");
      return res;
    },
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/ListPartitionReassignments",
    call: (md) => unary(c.admin, "listPartitionReassignments", create(ListPartitionReassignmentsRequestSchema, {}), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/ElectLeaders",
    call: (md) =>
      unary(c.admin, "electLeaders", create(ElectLeadersRequestSchema, { partitions: [{ topic: "t-main", partitions: [0] }] }), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/CreateAcls",
    call: (md) =>
      unary(
        c.admin,
        "createAcls",
        create(CreateAclsRequestSchema, { creations: [binding(`User:${fresh("u")}`, AclResourceType.TOPIC, "x", AclOperation.READ)] }),
        md,
      ),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeAcls",
    call: (md) => unary(c.admin, "describeAcls", create(DescribeAclsRequestSchema, {}), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DeleteAcls",
    call: (md) => unary(c.admin, "deleteAcls", create(DeleteAclsRequestSchema, { filters: [{ principal: "User:nobody-has-this" }] }), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/AlterUserScramCredentials",
    call: (md) =>
      unary(
        c.admin,
        "alterUserScramCredentials",
        create(AlterUserScramCredentialsRequestSchema, {
          upsertions: [{ name: fresh("user"), mechanism: ScramMechanism.SCRAM_SHA_256, password: "pw-pw-pw" }],
        }),
        md,
      ),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeUserScramCredentials",
    call: (md) => unary(c.admin, "describeUserScramCredentials", create(DescribeUserScramCredentialsRequestSchema, {}), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/AlterClientQuotas",
    call: (md) =>
      unary(
        c.admin,
        "alterClientQuotas",
        create(AlterClientQuotasRequestSchema, {
          entries: [
            {
              entity: { parts: [{ type: QuotaEntityType.CLIENT_ID, name: fresh("client") }] },
              ops: [{ key: "producer_byte_rate", value: 1_048_576 }],
            },
          ],
        }),
        md,
      ),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeClientQuotas",
    call: (md) => unary(c.admin, "describeClientQuotas", create(DescribeClientQuotasRequestSchema, {}), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "ProduceService/Produce",
    call: (md) => produceOne("t-main", md),
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "ProduceService/ProduceStream",
    call: async (md) => {
      const s = (
        c.produce as unknown as { produceStream(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, ProduceStreamResponse> }
      ).produceStream(md);
      s.write(
        create(ProduceStreamRequestSchema, {
          requestId: 1n,
          request: { topic: "t-main", partition: 0, records: [{ value: Buffer.from("s") }] },
        }),
      );
      const res = await firstOf(s);
      // A refused request of an open stream is answered in the stream, as a per-request error.
      if (res.result.case === "error")
        throw Object.assign(new Error(res.result.value.message), { code: -1, inStream: res.result.value.name });
      return res;
    },
    bob: "in-stream:TOPIC_AUTHORIZATION_FAILED",
  },
  // transactions (issue 17): a fresh transactional id per call, made by root
  {
    rpc: "ProduceService/EndTransaction",
    prepare: async () => JSON.stringify(await txnOf(fresh("tx-end"), false)),
    call: (md, p) => {
      const t = JSON.parse(p) as { id: string; pid: string; epoch: number };
      return unary(
        c.produce,
        "endTransaction",
        create(EndTransactionRequestSchema, { transactionalId: t.id, producerId: BigInt(t.pid), producerEpoch: t.epoch, commit: true }),
        md,
      );
    },
    bob: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/DescribeTransactions",
    prepare: async () => (await txnOf(fresh("tx-desc"), false)).id,
    call: (md, id) => unary(c.admin, "describeTransactions", create(DescribeTransactionsRequestSchema, { transactionalIds: [id] }), md),
    bob: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  },
  {
    rpc: "AdminService/ListTransactions",
    prepare: async () => (await txnOf(fresh("tx-list"), false)).id,
    call: (md) => unary(c.admin, "listTransactions", create(ListTransactionsRequestSchema, {}), md),
    bob: (res) => expect((res as { transactions: unknown[] }).transactions).toEqual([]),
  },
  {
    rpc: "AdminService/AbortTransaction",
    prepare: async () => (await txnOf(fresh("tx-abort"), true)).id,
    call: (md, id) => unary(c.admin, "abortTransaction", create(AbortTransactionRequestSchema, { transactionalId: id }), md),
    bob: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  },
  {
    rpc: "ProduceService/InitProducerId",
    call: (md) => unary(c.produce, "initProducerId", create(InitProducerIdRequestSchema, {}), md),
    bob: "CLUSTER_AUTHORIZATION_FAILED",
  },
  {
    rpc: "FetchService/Fetch",
    call: (md) =>
      unary(
        c.fetch,
        "fetch",
        create(FetchRequestSchema, { partitions: [{ topic: "t-main", partition: 0, offset: 0n }], maxWaitMs: 0, minBytes: 1 }),
        md,
      ),
    bob: (res) => expect((res as FetchResponse).partitions.map((p) => p.error?.name)).toEqual(["TOPIC_AUTHORIZATION_FAILED"]),
  },
  {
    rpc: "FetchService/Subscribe",
    call: (md) => {
      const req = create(SubscribeRequestSchema, {
        partitions: [{ topic: "t-main", partition: 0, offset: 0n }],
        format: RecordFormat.RECORDS,
      });
      return firstOf(
        (c.fetch as unknown as { subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<unknown> }).subscribe(req, md),
      );
    },
    bob: "TOPIC_AUTHORIZATION_FAILED",
  },
  {
    rpc: "FetchService/ListOffsets",
    call: (md) =>
      unary(
        c.fetch,
        "listOffsets",
        create(ListOffsetsRequestSchema, { partitions: [{ topic: "t-main", partition: 0, spec: OffsetSpec.LATEST }] }),
        md,
      ),
    bob: (res) => expect((res as ListOffsetsResponse).partitions.map((p) => p.error?.name)).toEqual(["TOPIC_AUTHORIZATION_FAILED"]),
  },
  {
    rpc: "GroupService/Heartbeat",
    call: async (md) => {
      const groupId = fresh("g-hb");
      const joined = await unary<{ memberId: string; memberEpoch: number }>(
        c.group,
        "heartbeat",
        create(HeartbeatRequestSchema, { groupId, memberId: "", memberEpoch: 0, topics: ["t-main"] }),
        md,
      );
      // Leave at once, so the group holds no live member.
      await unary(c.group, "heartbeat", create(HeartbeatRequestSchema, { groupId, memberId: joined.memberId, memberEpoch: -1 }), md);
      return joined;
    },
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/CommitOffsets",
    call: (md) =>
      unary(
        c.group,
        "commitOffsets",
        create(CommitOffsetsRequestSchema, {
          groupId: "g-main",
          memberId: "",
          memberEpoch: -1,
          offsets: [{ topic: "t-main", partition: 0, offset: 1n }],
        }),
        md,
      ),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/FetchOffsets",
    call: (md) => unary(c.group, "fetchOffsets", create(FetchOffsetsRequestSchema, { groupId: "g-main" }), md),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/ListGroups",
    call: (md) => unary(c.group, "listGroups", create(ListGroupsRequestSchema, {}), md),
    bob: (res) => expect((res as ListGroupsResponse).groups).toEqual([]),
  },
  {
    rpc: "GroupService/DescribeGroups",
    call: (md) => unary(c.group, "describeGroups", create(DescribeGroupsRequestSchema, { groupIds: ["g-main"] }), md),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/DeleteGroups",
    prepare: async () => {
      const groupId = fresh("g-del");
      await unary(
        c.group,
        "resetOffsets",
        create(ResetOffsetsRequestSchema, { groupId, partitions: [{ topic: "t-main" }], offset: 0n }),
        root(),
      );
      return groupId;
    },
    call: (md, groupId) => unary(c.group, "deleteGroups", create(DeleteGroupsRequestSchema, { groupIds: [groupId] }), md),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/ResetOffsets",
    call: (md) =>
      unary(
        c.group,
        "resetOffsets",
        create(ResetOffsetsRequestSchema, { groupId: "g-main", partitions: [{ topic: "t-main" }], offset: 0n }),
        md,
      ),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/DeleteOffsets",
    prepare: async () => {
      const groupId = fresh("g-deloff");
      await unary(
        c.group,
        "resetOffsets",
        create(ResetOffsetsRequestSchema, { groupId, partitions: [{ topic: "t-main" }], offset: 0n }),
        root(),
      );
      return groupId;
    },
    call: (md, groupId) =>
      unary(
        c.group,
        "deleteOffsets",
        create(DeleteOffsetsRequestSchema, { groupId, partitions: [{ topic: "t-main", partitions: [0] }] }),
        md,
      ),
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
  {
    rpc: "GroupService/Consume",
    call: (md) => {
      const s = (c.group as unknown as { consume(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }).consume(md);
      s.write(
        create(ConsumeRequestSchema, {
          kind: {
            case: "subscribe",
            value: { groupId: fresh("g-consume"), topics: ["t-main"], autoOffsetReset: AutoOffsetReset.EARLIEST },
          },
        }),
      );
      return firstOf(s);
    },
    bob: "GROUP_AUTHORIZATION_FAILED",
  },
];

beforeAll(async () => {
  dir = tmpDir("rill-authz-");
  // Users and ACLs are made with authentication off, then the broker restarts with it on.
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
  c = clientsOf(broker.address);
  const none = new grpc.Metadata();
  await unary(
    c.admin,
    "alterUserScramCredentials",
    create(AlterUserScramCredentialsRequestSchema, {
      upsertions: Object.entries(PASSWORDS).map(([name, password]) => ({ name, mechanism: ScramMechanism.SCRAM_SHA_256, password })),
    }),
    none,
  );
  const A = AclOperation;
  const alice = "User:alice";
  await unary(
    c.admin,
    "createAcls",
    create(CreateAclsRequestSchema, {
      creations: [
        binding(alice, AclResourceType.TOPIC, "t-", A.ALL, AclPatternType.PREFIXED),
        binding(alice, AclResourceType.GROUP, "g-", A.ALL, AclPatternType.PREFIXED),
        binding(alice, AclResourceType.CLUSTER, "kafka-cluster", A.ALL),
        binding(alice, AclResourceType.TRANSACTIONAL_ID, "tx-", A.ALL, AclPatternType.PREFIXED),
        binding("User:bob", AclResourceType.TOPIC, "b-visible", A.DESCRIBE),
      ],
    }),
    none,
  );
  for (const t of ["t-main", "b-visible"])
    await unary(c.admin, "createTopics", create(CreateTopicsRequestSchema, { topics: [{ name: t, partitions: 1 }] }), none);
  await produceOne("t-main", none);
  await unary(
    c.group,
    "resetOffsets",
    create(ResetOffsetsRequestSchema, { groupId: "g-main", partitions: [{ topic: "t-main" }], offset: 0n }),
    none,
  );
  c.close();
  await broker.close();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: AUTH_ON });
  c = clientsOf(broker.address);
}, 60_000);

afterAll(async () => {
  c?.close();
  await broker?.close();
  rmTmp(dir);
});

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

async function outcome(row: Row, who: Who, prepared: string): Promise<{ ok: true; value: unknown } | ({ ok: false } & Refusal)> {
  try {
    if (process.env.AUTHZ_DEBUG) console.log("call", row.rpc, who);
    return { ok: true, value: await row.call(metadataOf(who), prepared) };
  } catch (e) {
    const inStream = (e as { inStream?: string }).inStream;
    if (inStream !== undefined) return { ok: false, status: -1, name: `in-stream:${inStream}` };
    return { ok: false, ...refusalOf(e) };
  }
}

describe("every public RPC × {no credentials, wrong password, allowed, denied, super user}", () => {
  it("covers every RPC of the public services", () => {
    const methods = [AdminService, ProduceService, FetchService, GroupService].flatMap((s) => s.methods.map((m) => `${s.name}/${m.name}`));
    expect(ROWS.map((r) => r.rpc).sort()).toEqual(methods.sort());
  });

  for (const row of ROWS) {
    it(row.rpc, async () => {
      for (const who of ["none", "wrong"] as const) {
        const prepared = (await row.prepare?.()) ?? "";
        const before = await snapshot();
        const out = await outcome(row, who, prepared);
        expect(out, `${row.rpc} as ${who}`).toMatchObject({ ok: false, status: S.UNAUTHENTICATED, name: "SASL_AUTHENTICATION_FAILED" });
        expect(await snapshot(), `${row.rpc} as ${who} changed nothing`).toEqual(before);
      }
      const prepared = (await row.prepare?.()) ?? "";
      const before = await snapshot();
      const denied = await outcome(row, "bob", prepared);
      if (typeof row.bob === "string") {
        const [status, name] = row.bob.startsWith("in-stream:") ? [-1, row.bob] : [S.PERMISSION_DENIED, row.bob];
        expect(denied, `${row.rpc} as bob`).toMatchObject({ ok: false, status, name });
        expect(await snapshot(), `${row.rpc} as bob changed nothing`).toEqual(before);
      } else {
        expect(denied.ok, `${row.rpc} as bob: ${json(denied)}`).toBe(true);
        if (denied.ok) row.bob(denied.value);
      }
      for (const who of ["alice", "root"] as const) {
        const out = await outcome(row, who, (await row.prepare?.()) ?? "");
        expect(out.ok, `${row.rpc} as ${who}: ${json(out)}`).toBe(true);
      }
    }, 60_000);
  }
});

/** The status and catalog name a stream ends with (its messages are ignored). */
function endOf(stream: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>): Promise<Refusal> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the stream did not end within 10 s")), 10_000);
    stream.on("data", () => {});
    stream.once("error", (e: unknown) => {
      clearTimeout(timer);
      resolve(refusalOf(e));
    });
    stream.once("end", () => {
      clearTimeout(timer);
      reject(new Error("the stream ended without an error"));
    });
  });
}

async function refused(p: Promise<unknown>): Promise<Refusal> {
  try {
    await p;
  } catch (e) {
    return refusalOf(e);
  }
  throw new Error("the call succeeded");
}

const describeCluster = (md: grpc.Metadata) => unary(c.admin, "describeCluster", create(DescribeClusterRequestSchema, {}), md);

describe("per-partition answers", () => {
  it("a Fetch of an allowed and a denied topic reads the allowed one and answers TOPIC_AUTHORIZATION_FAILED for the other", async () => {
    const res = await unary<FetchResponse>(
      c.fetch,
      "fetch",
      create(FetchRequestSchema, {
        partitions: [
          { topic: "b-visible", partition: 0, offset: 0n },
          { topic: "t-main", partition: 0, offset: 0n },
        ],
        maxWaitMs: 0,
        minBytes: 1,
        format: RecordFormat.RECORDS,
      }),
      metadataOf("alice"),
    );
    expect(res.partitions.map((p) => [p.topic, p.error?.name ?? "ok"])).toEqual([
      ["b-visible", "TOPIC_AUTHORIZATION_FAILED"],
      ["t-main", "ok"],
    ]);
    expect(res.partitions[1]?.records.length).toBeGreaterThan(0);
  });
});

describe("credentials", () => {
  it.each([
    ["Bearer x", "UNSUPPORTED_AUTH_SCHEME"],
    ["Basic", "MALFORMED_CREDENTIALS"],
    ["Basic !!!!", "MALFORMED_CREDENTIALS"],
    [`Basic ${Buffer.from("no-colon").toString("base64")}`, "MALFORMED_CREDENTIALS"],
    [`Basic ${Buffer.from(":pw").toString("base64")}`, "MALFORMED_CREDENTIALS"],
  ])("authorization %j is refused with %s", async (value, name) => {
    const md = new grpc.Metadata();
    md.set("authorization", value);
    expect(await refused(describeCluster(md))).toEqual({ status: S.UNAUTHENTICATED, name });
  });

  it("an authorization header over HTTP/2's limit fails that call; the broker keeps serving", async () => {
    const md = new grpc.Metadata();
    md.set("authorization", `Basic ${"A".repeat(256 * 1024)}`);
    const failed = await describeCluster(md).then(
      () => null,
      (e: grpc.ServiceError) => e,
    );
    if (process.env.AUTHZ_DEBUG) console.log("oversized header:", failed?.code, failed?.details);
    // The HTTP/2 layer resets the stream (grpc-js: INTERNAL, RST_STREAM) before Rill reads a header.
    expect(failed?.code).toBe(S.INTERNAL);
    expect(failed?.details).toMatch(/RST_STREAM/);
    const other = clientsOf(broker.address);
    try {
      await unary(other.admin, "describeCluster", create(DescribeClusterRequestSchema, {}), metadataOf("alice"));
    } finally {
      other.close();
    }
    await describeCluster(metadataOf("alice"));
  });

  it("a rill-principal header sent by a client is ignored", async () => {
    const md = metadataOf("bob");
    md.set("rill-principal", "User:root");
    md.set("rill-client-host", "10.9.9.9");
    expect(await refused(unary(c.admin, "electLeaders", create(ElectLeadersRequestSchema, {}), md))).toEqual({
      status: S.PERMISSION_DENIED,
      name: "CLUSTER_AUTHORIZATION_FAILED",
    });
    const anon = new grpc.Metadata();
    anon.set("rill-principal", "User:root");
    expect(await refused(describeCluster(anon))).toEqual({ status: S.UNAUTHENTICATED, name: "SASL_AUTHENTICATION_FAILED" });
  });

  it("a password over a plaintext listener is refused unless auth.allow.plaintext.passwords", async () => {
    const d = tmpDir("rill-authz-plain-");
    const b = await Broker.start({ dataDir: d, listen: "127.0.0.1:0", config: { ...AUTH_ON, authAllowPlaintextPasswords: false } });
    const cl = clientsOf(b.address);
    try {
      const r = await refused(unary(cl.admin, "describeCluster", create(DescribeClusterRequestSchema, {}), metadataOf("alice")));
      expect(r).toEqual({ status: S.UNAUTHENTICATED, name: "PLAINTEXT_PASSWORD_REFUSED" });
    } finally {
      cl.close();
      await b.close();
      rmTmp(d);
    }
  });
});

describe("protected mode", () => {
  it("a listener on a non-loopback address without authentication refuses to start", async () => {
    const d = tmpDir("rill-authz-pm-");
    try {
      await expect(Broker.start({ dataDir: d, listen: "0.0.0.0:0" })).rejects.toThrow(
        /listen: 0\.0\.0\.0:0 is reachable from other machines but auth\.methods is empty.*allow\.anonymous\.remote=true/,
      );
    } finally {
      rmTmp(d);
    }
  });
});

describe("a permission removed from an open stream ends it with PERMISSION_DENIED", () => {
  const bobOn = (type: AclResourceType, name: string, op: AclOperation) => binding("User:bob", type, name, op);

  async function grant(...bindings: ReturnType<typeof bobOn>[]): Promise<void> {
    await unary(c.admin, "createAcls", create(CreateAclsRequestSchema, { creations: bindings }), root());
  }

  async function revoke(b: ReturnType<typeof bobOn>): Promise<void> {
    await unary(
      c.admin,
      "deleteAcls",
      create(DeleteAclsRequestSchema, {
        filters: [{ principal: b.principal, resourceType: b.resourceType, resourceName: b.resourceName, operation: b.operation }],
      }),
      root(),
    );
  }

  it("Subscribe", async () => {
    const read = bobOn(AclResourceType.TOPIC, "b-visible", AclOperation.READ);
    await grant(read);
    const req = create(SubscribeRequestSchema, { partitions: [{ topic: "b-visible", partition: 0, offset: 0n }] });
    const s = (c.fetch as unknown as { subscribe(r: unknown, md: grpc.Metadata): grpc.ClientReadableStream<unknown> }).subscribe(
      req,
      metadataOf("bob"),
    );
    const ended = endOf(s);
    await produceOne("b-visible", root());
    await revoke(read);
    expect(await ended).toEqual({ status: S.PERMISSION_DENIED, name: "TOPIC_AUTHORIZATION_FAILED" });
  });

  it("Consume", async () => {
    const group = bobOn(AclResourceType.GROUP, "bob-group", AclOperation.READ);
    const topic = bobOn(AclResourceType.TOPIC, "b-visible", AclOperation.READ);
    await grant(group, topic);
    const s = (c.group as unknown as { consume(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, unknown> }).consume(metadataOf("bob"));
    s.write(create(ConsumeRequestSchema, { kind: { case: "subscribe", value: { groupId: "bob-group", topics: ["b-visible"] } } }));
    const assigned = firstOfKeepOpen(s);
    const ended = endOf(s);
    await assigned;
    await revoke(group);
    expect(await ended).toEqual({ status: S.PERMISSION_DENIED, name: "GROUP_AUTHORIZATION_FAILED" });
    await revoke(topic);
  });

  it("ProduceStream", async () => {
    const write = bobOn(AclResourceType.TOPIC, "b-visible", AclOperation.WRITE);
    await grant(write);
    const s = (
      c.produce as unknown as { produceStream(md: grpc.Metadata): grpc.ClientDuplexStream<unknown, ProduceStreamResponse> }
    ).produceStream(metadataOf("bob"));
    const first = firstOfKeepOpen(s);
    const ended = endOf(s);
    s.write(
      create(ProduceStreamRequestSchema, {
        requestId: 1n,
        request: { topic: "b-visible", partition: 0, records: [{ value: Buffer.from("x") }] },
      }),
    );
    expect((await first).result.case).toBe("response");
    await revoke(write);
    expect(await ended).toEqual({ status: S.PERMISSION_DENIED, name: "TOPIC_AUTHORIZATION_FAILED" });
  });
});

/** The first message of a stream, leaving it open. */
function firstOfKeepOpen<T>(stream: grpc.ClientDuplexStream<unknown, T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message within 10 s")), 10_000);
    stream.once("data", (m: T) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
}
