import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  type TransportConfig,
  createServer,
  defaultTransportConfig,
  installHttp2Settings,
  serverOptions,
} from "../../../src/rpc/server-options.ts";
import { clientChannelOptions } from "../../../src/protocol/channel-options.ts";

const MiB = 1024 * 1024;
const identity = (b: Buffer): Buffer => b;

/** A server with one raw-bytes echo method answering the request's length as 4 bytes. */
function echoServer(server: grpc.Server): grpc.Server {
  const method: grpc.MethodDefinition<Buffer, Buffer> = {
    path: "/test.Echo/Size",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
  server.addService(
    { size: method },
    {
      size: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const out = Buffer.alloc(4);
        out.writeUInt32BE(call.request.length);
        cb(null, out);
      },
    },
  );
  return server;
}

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

async function listen(server: grpc.Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))),
  );
}

/** The windows a peer sees: the server's SETTINGS stream window and its connection window. */
async function windowsSeenByPeer(port: number): Promise<{ stream: number; connection: number }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await new Promise((resolve, reject) => {
      session.once("remoteSettings", resolve);
      session.once("error", reject);
    });
    // The WINDOW_UPDATE follows the server's SETTINGS; a ping round trip makes sure it arrived.
    await new Promise((resolve) => session.ping(resolve));
    return { stream: session.remoteSettings.initialWindowSize!, connection: session.state.remoteWindowSize! };
  } finally {
    session.close();
  }
}

describe("HTTP/2 window hook", () => {
  it("advertises 16 MiB stream and connection windows", async () => {
    const port = await listen(echoServer(createServer()));
    expect(await windowsSeenByPeer(port)).toEqual({ stream: 16 * MiB, connection: 16 * MiB });
  });

  it("is needed: a plain grpc-js Server keeps HTTP/2's 64 KiB defaults", async () => {
    const port = await listen(echoServer(new grpc.Server()));
    expect(await windowsSeenByPeer(port)).toEqual({ stream: 65_535, connection: 65_535 });
  });

  it("takes the window size from the config", async () => {
    const cfg: TransportConfig = { ...defaultTransportConfig, flowControlWindowBytes: 4 * MiB };
    const port = await listen(echoServer(createServer(cfg)));
    expect(await windowsSeenByPeer(port)).toEqual({ stream: 4 * MiB, connection: 4 * MiB });
  });

  it("refuses a second install and out-of-range windows", () => {
    const server = new grpc.Server();
    installHttp2Settings(server);
    expect(() => installHttp2Settings(server)).toThrow(/already installed/);
    const bad = { ...defaultTransportConfig, flowControlWindowBytes: 2 ** 31 };
    expect(() => installHttp2Settings(new grpc.Server(), bad)).toThrow(/flowControlWindowBytes/);
    expect(() => clientChannelOptions({ ...defaultTransportConfig, flowControlWindowBytes: 1000 })).toThrow(/flowControlWindowBytes/);
  });
});

describe("options", () => {
  it("puts limits and keepalive in the server and client options", () => {
    expect(serverOptions()).toMatchObject({
      "grpc.max_receive_message_length": 64 * MiB,
      "grpc.max_send_message_length": 64 * MiB,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.max_concurrent_streams": 1000,
    });
    expect(serverOptions().interceptors).toHaveLength(1);
    const extra: grpc.ServerInterceptor = (_m, call) => new grpc.ServerInterceptingCall(call);
    expect(serverOptions(defaultTransportConfig, [extra]).interceptors?.[0]).toBe(extra);
    expect(clientChannelOptions()).toMatchObject({
      "grpc-node.flow_control_window": 16 * MiB,
      "grpc.max_receive_message_length": 64 * MiB,
      "grpc.keepalive_permit_without_calls": 1,
    });
  });

  it("moves large messages and rejects messages over the limit with RESOURCE_EXHAUSTED", async () => {
    const cfg: TransportConfig = { ...defaultTransportConfig, receiveMessageBytesMax: 2 * MiB };
    const port = await listen(echoServer(createServer(cfg)));
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), clientChannelOptions());
    const call = (size: number): Promise<number> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest("/test.Echo/Size", identity, identity, Buffer.alloc(size), (err, res) =>
          err ? reject(err) : resolve(res!.readUInt32BE(0)),
        ),
      );
    expect(await call(2 * MiB)).toBe(2 * MiB);
    await expect(call(2 * MiB + 1)).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    client.close();
  });
});
