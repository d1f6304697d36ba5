import { execFile } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const BUF = path.resolve("node_modules/.bin/buf");
let dir: string;
let broker: Broker;

function bufCurl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  dir = tmpDir();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
});

afterAll(async () => {
  await broker.close();
  rmTmp(dir);
});

describe("server reflection and health", () => {
  it("buf curl lists the services through reflection, without the .proto files", async () => {
    const r = await bufCurl(["--list-methods", `http://${broker.address}`]);
    expect(r.stderr).toBe("");
    const methods = r.stdout.trim().split("\n");
    for (const m of [
      "rill.v1.AdminService/CreateTopics",
      "rill.v1.ProduceService/Produce",
      "rill.v1.ProduceService/ProduceStream",
      "rill.v1.FetchService/Fetch",
      "rill.v1.FetchService/ListOffsets",
    ]) {
      expect(methods).toContain(m);
    }
  });

  it("buf curl calls CreateTopics and Produce with JSON, and the answers follow the proto", async () => {
    const created = await bufCurl([
      "-d",
      JSON.stringify({ topics: [{ name: "curl", partitions: 2 }] }),
      `http://${broker.address}/rill.v1.AdminService/CreateTopics`,
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(JSON.parse(created.stdout)).toEqual({ topics: [{ name: "curl", partitions: 2, replicationFactor: 1 }] });
    const value = Buffer.from("hello").toString("base64");
    const produced = await bufCurl([
      "-d",
      JSON.stringify({ topic: "curl", partition: 1, records: [{ value }] }),
      `http://${broker.address}/rill.v1.ProduceService/Produce`,
    ]);
    expect(produced.code, produced.stderr).toBe(0);
    const body = JSON.parse(produced.stdout) as { records: Array<{ partition: number; offset?: string }> };
    expect(body.records).toEqual([{ partition: 1 }]); // offset 0 is the default, so JSON leaves it out
    const bad = await bufCurl([
      "-d",
      JSON.stringify({ topic: "nope", records: [{ value }] }),
      `http://${broker.address}/rill.v1.ProduceService/Produce`,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/not_found|NotFound|not found/i);
  });

  it("lists grpc.health.v1.Health in reflection, so buf curl calls Check without --schema", async () => {
    const list = await bufCurl(["--list-methods", `http://${broker.address}`]);
    expect(list.stdout.trim().split("\n")).toEqual(expect.arrayContaining(["grpc.health.v1.Health/Check", "grpc.health.v1.Health/Watch"]));
    const check = await bufCurl(["-d", "{}", `http://${broker.address}/grpc.health.v1.Health/Check`]);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toEqual({ status: "SERVING" });
    const one = await bufCurl([
      "-d",
      JSON.stringify({ service: "rill.v1.FetchService" }),
      `http://${broker.address}/grpc.health.v1.Health/Check`,
    ]);
    expect(JSON.parse(one.stdout)).toEqual({ status: "SERVING" });
  });

  it("answers grpc.health.v1.Health/Check with SERVING", async () => {
    const client = new grpc.Client(broker.address, grpc.credentials.createInsecure());
    const check = (service: string): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const req = Buffer.concat([Buffer.from([0x0a, service.length]), Buffer.from(service)]);
        client.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          (b: Buffer) => b,
          (b: Buffer) => b,
          service ? req : Buffer.alloc(0),
          (e, r) => (e ? reject(e) : resolve(r!)),
        );
      });
    expect([...(await check(""))]).toEqual([0x08, 0x01]); // status: SERVING
    expect([...(await check("rill.v1.ProduceService"))]).toEqual([0x08, 0x01]);
    client.close();
  });
});
