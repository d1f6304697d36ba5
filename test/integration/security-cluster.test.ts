/**
 * Authorization across a 3-node cluster started the documented way (`rill cluster start`, bin/rill,
 * members authenticated by the secret it writes) with auth.methods=password, authorizer.enable,
 * super.users=User:admin and users from auth.bootstrap.users.file, over plaintext test listeners
 * on 127.0.0.1 (auth.allow.plaintext.passwords=true):
 * - the launcher, given `--user admin --password-file`, reports the cluster ready;
 * - ACLs are made by the super user with `rill acl add` (its --user/--password-file are sent);
 * - a user with WRITE on topic A only, producing through a node that leads neither A nor B:
 *   succeeds on A (the leader accepts the forwarded call as that user) and is refused on B with
 *   TOPIC_AUTHORIZATION_FAILED, B unchanged; a user with READ on A fetches A through that node,
 *   the writer does not;
 * - the super user creates a topic through a node that is not the controller (the forwarded
 *   admin call keeps the principal), and the writer, through the same node, is refused.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchClientCodecs, produceClientCodecs } from "../../src/client/wire-codec.ts";
import {
  AdminService,
  CreateTopicsRequestSchema,
  type CreateTopicsResponse,
  DescribeTopicsRequestSchema,
  type DescribeTopicsResponse,
} from "../../src/gen/rill/v1/admin_service_pb.ts";
import { RecordFormat } from "../../src/gen/rill/v1/common_pb.ts";
import { FetchRequestSchema, type FetchResponse, FetchService } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceRequestSchema, type ProduceResponse, ProduceService } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";
import { freePortRun } from "./cluster-harness.ts";

const RILL = path.resolve("bin/rill");
const PASSWORDS = { admin: "adm1n-pw", alice: "al1ce-pw", carol: "car0l-pw" } as const;
type User = keyof typeof PASSWORDS;

let dir: string;
let launcher: { proc: ChildProcess; out: { stdout: string; stderr: string }; exited: Promise<number | null> };
let base: number;
const addr = (id: number): string => `127.0.0.1:${base + id - 1}`;
const pwFile = (u: User): string => path.join(dir, `${u}.pw`);

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  for (const k of ["RILL_RUNTIME", "RILL_BOOTSTRAP", "RILL_USER", "RILL_PASSWORD"]) delete e[k];
  return e;
}

/** Runs `bin/rill args` to completion (killed after 20 s). */
function rill(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(RILL, args, { env: env(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** `rill` as `user` against node `id`. */
const rillAs = (user: User, id: number, args: readonly string[]) =>
  rill(["--user", user, "--password-file", pwFile(user), "--bootstrap", addr(id), ...args]);

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function authOf(user: User): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Basic ${Buffer.from(`${user}:${PASSWORDS[user]}`).toString("base64")}`);
  return md;
}

const grpcClients: grpc.Client[] = [];
function clientOf<C extends grpc.Client>(
  make: (address: string, creds: grpc.ChannelCredentials, o: grpc.ClientOptions) => C,
  id: number,
): C {
  const c = make(addr(id), grpc.credentials.createInsecure(), clientChannelOptions());
  grpcClients.push(c);
  return c;
}
const AdminClient = clientConstructor(AdminService);
const ProduceClient = clientConstructor(ProduceService, produceClientCodecs);
const FetchClient = clientConstructor(FetchService, fetchClientCodecs);
const admin = (id: number) => clientOf((a, c, o) => new AdminClient(a, c, o), id);
const producer = (id: number) => clientOf((a, c, o) => new ProduceClient(a, c, o), id);
const fetcher = (id: number) => clientOf((a, c, o) => new FetchClient(a, c, o), id);

type Method = (r: unknown, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => void;
function unary<T>(client: grpc.Client, method: string, req: unknown, user: User): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = (client as unknown as Record<string, Method>)[method]!;
    fn.call(client, req, authOf(user), { deadline: Date.now() + 15_000 }, (e, r) => (e ? reject(e) : resolve(r as T)));
  });
}

/** The gRPC status and catalog name of a call that must fail. */
async function refusal(p: Promise<unknown>): Promise<{ status: number; name: string | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as grpc.ServiceError;
    if (typeof err.code !== "number") throw e;
    return { status: err.code, name: err.metadata?.get("rill-error-name")[0]?.toString() };
  }
  throw new Error("the call succeeded");
}

/** Partition 0's leader and high watermark of `topic`, as node `id` describes it to the super user. */
async function partition0(topic: string, id = 1): Promise<{ leader: number; highWatermark: bigint }> {
  const r = await unary<DescribeTopicsResponse>(
    admin(id),
    "describeTopics",
    create(DescribeTopicsRequestSchema, { topics: [topic] }),
    "admin",
  );
  const p = r.topics[0]?.partitions[0];
  if (!p) throw new Error(`no partition 0 of ${topic}: ${JSON.stringify(r.topics[0]?.error)}`);
  return { leader: p.leader, highWatermark: p.highWatermark };
}

let controller: number;

beforeAll(async () => {
  dir = tmpDir("rill-sec-cluster-");
  for (const [u, pw] of Object.entries(PASSWORDS)) nodeFs.writeFileSync(path.join(dir, `${u}.pw`), `${pw}\n`, { mode: 0o600 });
  const usersFile = path.join(dir, "users");
  nodeFs.writeFileSync(
    usersFile,
    Object.entries(PASSWORDS)
      .map(([u, pw]) => `${u}:${pw}\n`)
      .join(""),
    { mode: 0o600 },
  );
  base = await freePortRun(13); // client ports base.., internal ports base+10..
  const args = [
    "--user",
    "admin",
    "--password-file",
    pwFile("admin"),
    "cluster",
    "start",
    "--nodes",
    "3",
    "--data-dir",
    path.join(dir, "c"),
    "--base-port",
    String(base),
    ...["auth.methods=password", "authorizer.enable=true", "auth.allow.plaintext.passwords=true", "super.users=User:admin"].flatMap((s) => [
      "--set",
      s,
    ]),
    "--set",
    `auth.bootstrap.users.file=${usersFile}`,
  ];
  const proc = spawn(RILL, args, { env: env(), stdio: ["ignore", "pipe", "pipe"] });
  const out = { stdout: "", stderr: "" };
  proc.stdout!.on("data", (d: Buffer) => (out.stdout += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out.stderr += d.toString()));
  launcher = { proc, out, exited: new Promise((resolve) => proc.on("close", (code) => resolve(code))) };
  // The launcher asks as --user admin: with authentication on, an anonymous ask would never see it ready.
  await until("the launcher's ready line", 60_000, async () =>
    /^Cluster ready in \S+ s: cluster id \S+, controller \d, 3 brokers unfenced\.$/m.test(out.stdout) ? true : undefined,
  );
  const status = await until("cluster status as admin", 20_000, async () => {
    const r = await rillAs("admin", 1, ["cluster", "status", "--json"]);
    return r.code === 0 ? (JSON.parse(r.stdout) as { controllerId: number; nodes: { reachable: boolean }[] }) : undefined;
  });
  expect(status.nodes.every((n) => n.reachable)).toBe(true);
  controller = status.controllerId;
}, 90_000);

afterAll(async () => {
  for (const c of grpcClients) c.close();
  if (launcher && launcher.proc.exitCode === null && launcher.proc.signalCode === null) {
    launcher.proc.kill("SIGTERM");
    const timer = setTimeout(() => launcher.proc.kill("SIGKILL"), 30_000);
    await launcher.exited;
    clearTimeout(timer);
  }
  if (dir) rmTmp(dir);
}, 45_000);

describe("authorization on a 3-node cluster", () => {
  it("the super user creates topics through a node that is not the controller; a user without CREATE is refused there", async () => {
    const follower = [1, 2, 3].find((id) => id !== controller)!;
    const res = await unary<CreateTopicsResponse>(
      admin(follower),
      "createTopics",
      create(CreateTopicsRequestSchema, {
        topics: [
          { name: "orders", partitions: 1, replicationFactor: 3 },
          { name: "payments", partitions: 1, replicationFactor: 3 },
        ],
      }),
      "admin",
    );
    expect(res.topics.map((t) => [t.name, t.error?.name ?? "ok"])).toEqual([
      ["orders", "ok"],
      ["payments", "ok"],
    ]);
    // The forwarded call is authorized as alice, not as the forwarding member.
    expect(
      await refusal(
        unary(
          admin(follower),
          "createTopics",
          create(CreateTopicsRequestSchema, { topics: [{ name: "alice-made", partitions: 1, replicationFactor: 3 }] }),
          "alice",
        ),
      ),
    ).toEqual({ status: grpc.status.PERMISSION_DENIED, name: "TOPIC_AUTHORIZATION_FAILED" });
    // ACLs by the super user through the CLI, sent to a node that is not the controller either.
    const write = await rillAs("admin", follower, [
      "acl",
      "add",
      "--allow-principal",
      "User:alice",
      "--operation",
      "WRITE",
      "--topic",
      "orders",
    ]);
    expect(write).toMatchObject({ code: 0, stdout: "Added ACL: ALLOW User:alice WRITE TOPIC:orders from *\n", stderr: "" });
    const read = await rillAs("admin", follower, [
      "acl",
      "add",
      "--allow-principal",
      "User:carol",
      "--operation",
      "READ",
      "--topic",
      "orders",
    ]);
    expect(read).toMatchObject({ code: 0, stdout: "Added ACL: ALLOW User:carol READ TOPIC:orders from *\n", stderr: "" });
    // Every node has both topics and both ACLs before the next test routes through any of them.
    for (const id of [1, 2, 3]) {
      await until(`node ${id} to know the topics and ACLs`, 15_000, async () => {
        const r = await rillAs("admin", id, ["acl", "list", "--json"]);
        const topics = await rillAs("admin", id, ["topic", "list"]);
        const ok =
          r.code === 0 &&
          (JSON.parse(r.stdout) as unknown[]).length === 2 &&
          /^orders$/m.test(topics.stdout) &&
          /^payments$/m.test(topics.stdout);
        return ok ? true : undefined;
      });
    }
    const aliceMade = await unary<DescribeTopicsResponse>(
      admin(controller),
      "describeTopics",
      create(DescribeTopicsRequestSchema, { topics: ["alice-made"] }),
      "admin",
    );
    expect(aliceMade.topics.map((t) => t.error?.name)).toEqual(["UNKNOWN_TOPIC_OR_PARTITION"]);
  }, 60_000);

  it("a user with WRITE on A only, through a node that leads neither A nor B, writes A and is refused on B; READ on A fetches A there", async () => {
    const a = await partition0("orders");
    const b = await partition0("payments");
    const via = [1, 2, 3].find((id) => id !== a.leader && id !== b.leader)!;
    expect(via).toBeDefined();
    const p = producer(via);

    const ok = await unary<ProduceResponse>(
      p,
      "produce",
      create(ProduceRequestSchema, { topic: "orders", partition: 0, records: [{ value: Buffer.from("from-alice") }] }),
      "alice",
    );
    expect(ok.partitions.map((r) => [r.partition, r.error?.name ?? "ok"])).toEqual([[0, "ok"]]);
    const written = ok.partitions[0]!.baseOffset;

    const refused = await refusal(
      unary(
        p,
        "produce",
        create(ProduceRequestSchema, { topic: "payments", partition: 0, records: [{ value: Buffer.from("nope") }] }),
        "alice",
      ),
    );
    expect(refused).toEqual({ status: grpc.status.PERMISSION_DENIED, name: "TOPIC_AUTHORIZATION_FAILED" });
    expect((await partition0("payments", b.leader)).highWatermark).toBe(b.highWatermark);

    // READ is carol's, not alice's: each Fetch through the same non-leader is answered for its caller.
    const fetchReq = create(FetchRequestSchema, {
      partitions: [{ topic: "orders", partition: 0, offset: written }],
      maxWaitMs: 2000,
      minBytes: 1,
      format: RecordFormat.RECORDS,
    });
    const f = fetcher(via);
    const byCarol = await unary<FetchResponse>(f, "fetch", fetchReq, "carol");
    expect(byCarol.partitions.map((r) => r.error?.name ?? "ok")).toEqual(["ok"]);
    expect(byCarol.partitions[0]!.records.map((r) => Buffer.from(r.value ?? new Uint8Array()).toString())).toEqual(["from-alice"]);
    const byAlice = await unary<FetchResponse>(f, "fetch", fetchReq, "alice");
    expect(byAlice.partitions.map((r) => r.error?.name)).toEqual(["TOPIC_AUTHORIZATION_FAILED"]);
    expect(byAlice.partitions[0]!.records).toEqual([]);
    // And carol, who may read A, may not write it through that node.
    expect(
      await refusal(
        unary(
          p,
          "produce",
          create(ProduceRequestSchema, { topic: "orders", partition: 0, records: [{ value: Buffer.from("c") }] }),
          "carol",
        ),
      ),
    ).toEqual({ status: grpc.status.PERMISSION_DENIED, name: "TOPIC_AUTHORIZATION_FAILED" });
    expect((await partition0("orders", a.leader)).highWatermark).toBe(written + 1n);
  }, 60_000);

  it("the CLI through a non-leader: alice's produce to A succeeds, to B fails with one error line", async () => {
    const a = await partition0("orders");
    const via = [1, 2, 3].find((id) => id !== a.leader)!;
    const produce = (topic: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const proc = spawn(RILL, ["--user", "alice", "--password-file", pwFile("alice"), "--bootstrap", addr(via), "produce", topic], {
          env: env(),
          stdio: ["pipe", "pipe", "pipe"],
        });
        let stderr = "";
        proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
        proc.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, stderr });
        });
        proc.stdin.end("line-1\n");
      });
    expect(await produce("orders")).toEqual({ code: 0, stderr: "" });
    expect(await produce("payments")).toEqual({ code: 1, stderr: 'rill: DescribeTopics: User:alice may not DESCRIBE topic "payments"\n' });
  }, 60_000);
});
