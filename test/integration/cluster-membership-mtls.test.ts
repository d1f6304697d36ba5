/**
 * Cluster membership by internal mutual TLS, without a secret (issue 13): three `rill broker
 * start` nodes (Bun), each with an internal listener on 127.0.0.1 serving mutual TLS with a
 * certificate of a test CA made here with openssl, named `localhost` (Bun's TLS refuses an IP
 * address as a server name, so the quorum and the registrations name the internal listeners by
 * DNS name). They elect a controller, register, and replicate a topic; a client without a
 * certificate of the cluster CA cannot reach the internal listener at all.
 */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControllerService, FetchMetadataRequestSchema } from "../../src/gen/rill/v1/controller_service_pb.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { type CertFiles, TestPki } from "../fixtures/test-pki.ts";
import { ClusterNode, FAST_CLUSTER_SETTINGS, freePort, unaryCall, until, viewOf } from "./cluster-harness.ts";

const root = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-mtls-members-"));
const nodes: ClusterNode[] = [];
const clients: grpc.Client[] = [];
let internalPorts: number[] = [];

beforeAll(async () => {
  const pki = new TestPki(path.join(root, "pki"));
  const ca = pki.ca("cluster-ca");
  const certs: CertFiles[] = [1, 2, 3].map((id) => pki.leaf(ca, { cn: `node-${id}`, san: "DNS:localhost", serial: 30 + id }));
  const ports = await Promise.all([1, 2, 3].map(() => freePort()));
  internalPorts = await Promise.all([1, 2, 3].map(() => freePort()));
  const voters = [1, 2, 3].map((id) => `${id}@localhost:${internalPorts[id - 1]}`).join(",");
  for (const id of [1, 2, 3]) {
    const settings = {
      ...FAST_CLUSTER_SETTINGS,
      "cluster.id": "mtls-members",
      "internal.listen": `127.0.0.1:${internalPorts[id - 1]}`,
      "internal.advertised.address": `localhost:${internalPorts[id - 1]}`,
      "internal.tls.cert.file": certs[id - 1]!.cert,
      "internal.tls.key.file": certs[id - 1]!.key,
      "internal.tls.ca.file": ca.cert,
    };
    const dataDir = path.join(root, `node-${id}`);
    const args = [
      "broker",
      "start",
      "--node-id",
      String(id),
      "--listen",
      `127.0.0.1:${ports[id - 1]}`,
      "--data-dir",
      dataDir,
      "--controller-quorum",
      voters,
      ...Object.entries(settings).flatMap(([k, v]) => ["--set", `${k}=${v}`]),
    ];
    nodes.push(new ClusterNode(id, ports[id - 1]!, dataDir, path.join(root, `node-${id}.log`), voters, args, "bun", 30_000));
  }
  await Promise.all(nodes.map((n) => n.start()));
}, 90_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(nodes.map((n) => n.kill().catch(() => {})));
  await Promise.all(nodes.map((n) => n.closeClients().catch(() => {})));
  nodeFs.rmSync(root, { recursive: true, force: true });
}, 60_000);

describe("membership by internal mutual TLS", () => {
  it("the nodes elect a controller, register with their internal addresses and replicate a topic", async () => {
    const v = await until(
      async () => {
        const view = viewOf(await nodes[0]!.describe());
        return view.controllerId > 0 && [1, 2, 3].every((id) => view.fenced.get(id) === false) ? view : undefined;
      },
      60_000,
      "a controller and 3 unfenced brokers",
    );
    expect(v.raftTerm).toBeGreaterThan(0);
    const admin = nodes[1]!.admin();
    await admin.createTopics([{ name: "over-mtls", partitions: 2, replicationFactor: 3 }]);
    const t = await until(
      async () => {
        const d = (await nodes[2]!.admin().describeTopics(["over-mtls"], { includeConfigs: false }))[0];
        return d?.partitions.every((p) => p.leader > 0 && p.isr.length === 3) ? d : undefined;
      },
      30_000,
      "a full ISR on every partition",
    );
    expect(t.partitions).toHaveLength(2);
  }, 90_000);

  it("refuses a client without a certificate of the cluster CA on the internal listener", async () => {
    const Plain = clientConstructor(ControllerService);
    const c = new Plain(`127.0.0.1:${internalPorts[0]}`, grpc.credentials.createInsecure());
    clients.push(c);
    const req = create(FetchMetadataRequestSchema, { clusterId: "mtls-members", nodeId: 4, afterOffset: -1n });
    const e = await unaryCall((o, cb) => c.fetchMetadata(req, new grpc.Metadata(), o, cb), 3000).catch(
      (x: unknown) => x as grpc.ServiceError,
    );
    expect(grpc.status[(e as grpc.ServiceError).code]).toBe("UNAVAILABLE");
  }, 30_000);
});
