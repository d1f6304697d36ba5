/**
 * 1 MiB calls over loopback: HTTP/2 windows (64 KiB defaults vs 16 MiB, client side and the
 * server hook) and codecs (protobuf-es vs wire-codec.ts). The server runs in a child process
 * of the same runtime. Not a test; run with:
 *
 *   npx tsx test/unit/rpc/bench/transport.bench.ts
 *   node_modules/.bin/bun test/unit/rpc/bench/transport.bench.ts
 *
 * LATENCY_MS=5 puts a proxy that delays every chunk by 5 ms each way between client and server:
 * then throughput is bounded by window / round trip, which shows the windows' effect even on a
 * machine too busy for clean loopback numbers.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as net from "node:net";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { FetchService } from "../../src/gen/rill/v1/fetch_service_pb.ts";
import { ProduceService } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { addService } from "../../src/rpc/grpc-service.ts";
import { clientConstructor } from "../../src/protocol/grpc-service.ts";
import { defaultTransportConfig, installHttp2Settings, serverOptions } from "../../src/rpc/server-options.ts";
import { clientChannelOptions } from "../../src/protocol/channel-options.ts";
import { fetchServiceCodecs, produceServiceCodecs } from "../../src/rpc/wire-codec.ts";
import { fetchClientCodecs, produceClientCodecs } from "../../src/client/wire-codec.ts";

const MiB = 2 ** 20;
const SECONDS = Number(process.env.SECONDS ?? 2);
const REPEAT = Number(process.env.REPEAT ?? 3);
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 0);
const runtime = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : `node ${process.version}`;

interface Setup {
  readonly serverWindow: boolean;
  readonly clientWindow: boolean;
  readonly codecs: boolean;
}

async function serve(setup: Setup): Promise<void> {
  const server = new grpc.Server(serverOptions());
  if (setup.serverWindow) installHttp2Settings(server);
  const produceCodecs = setup.codecs ? produceServiceCodecs : {};
  const fetchCodecs = setup.codecs ? fetchServiceCodecs : {};
  addService(
    server,
    ProduceService,
    {
      produce: (call, cb) =>
        cb(
          null,
          create(ProduceService.method.produce.output, {
            topic: call.request.topic,
            partitions: [{ baseOffset: BigInt(call.request.recordBatch.length) }],
          }),
        ),
      produceStream: (call) => call.end(),
      initProducerId: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      endTransaction: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    },
    produceCodecs,
  );
  const batch = Buffer.alloc(MiB, 7);
  const message = create(FetchService.method.subscribe.output, { partitions: [{ topic: "t", recordBatches: batch, highWatermark: 1n }] });
  addService(
    server,
    FetchService,
    {
      fetch: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
      subscribe: (call) => {
        let stop = false;
        call.on("cancelled", () => (stop = true));
        const pump = (): void => {
          while (!stop && call.write(message));
          if (!stop) call.once("drain", pump);
        };
        pump();
      },
      listOffsets: (_call, cb) => cb({ code: grpc.status.UNIMPLEMENTED }),
    },
    fetchCodecs,
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  process.stdout.write(`${port}\n`);
}

/** [Produce unary MiB/s, Subscribe stream MiB/s] of one run against a fresh server process. */
async function measure(setup: Setup): Promise<[number, number]> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, "serve", JSON.stringify(setup)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  const serverPort = Number(line.toString().trim());
  const proxy = LATENCY_MS > 0 ? await delayingProxy(serverPort, LATENCY_MS) : undefined;
  const address = `127.0.0.1:${proxy ? (proxy.address() as net.AddressInfo).port : serverPort}`;
  const options = setup.clientWindow
    ? clientChannelOptions()
    : { "grpc.max_receive_message_length": 64 * MiB, "grpc.max_send_message_length": 64 * MiB };
  try {
    return [await unaryMiBs(address, options, setup.codecs), await streamMiBs(address, options, setup.codecs)];
  } finally {
    proxy?.close();
    child.kill();
  }
}

/** A TCP proxy to 127.0.0.1:`port` that delays every chunk by `ms`, in both directions. */
async function delayingProxy(port: number, ms: number): Promise<net.Server> {
  const pipe = (from: net.Socket, to: net.Socket): void => {
    from.on("data", (chunk) => setTimeout(() => to.destroyed || to.write(chunk), ms));
    from.on("close", () => setTimeout(() => to.destroy(), ms));
    from.on("error", () => {});
  };
  const proxy = net.createServer((client) => {
    const server = net.connect(port, "127.0.0.1");
    pipe(client, server);
    pipe(server, client);
  });
  proxy.listen(0, "127.0.0.1");
  await once(proxy, "listening");
  return proxy;
}

/** Sequential 1 MiB Produce calls for SECONDS; MiB/s. */
async function unaryMiBs(address: string, options: grpc.ChannelOptions, codecs: boolean): Promise<number> {
  const Client = clientConstructor(ProduceService, codecs ? produceClientCodecs : {});
  const client = new Client(address, grpc.credentials.createInsecure(), options);
  const request = create(ProduceService.method.produce.input, { topic: "t", partition: 0, recordBatch: Buffer.alloc(MiB, 1) });
  const call = (): Promise<unknown> => new Promise((resolve, reject) => client.produce(request, (e, r) => (e ? reject(e) : resolve(r))));
  for (let i = 0; i < 20; i++) await call();
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    await call();
    n++;
  }
  client.close();
  return n / ((performance.now() - start) / 1000);
}

/** Subscribe stream of 1 MiB messages for SECONDS; MiB/s. */
async function streamMiBs(address: string, options: grpc.ChannelOptions, codecs: boolean): Promise<number> {
  const Client = clientConstructor(FetchService, codecs ? fetchClientCodecs : {});
  const client = new Client(address, grpc.credentials.createInsecure(), options);
  const stream = client.subscribe(create(FetchService.method.subscribe.input, {}));
  let bytes = 0;
  let start = 0;
  let warm = 0;
  const done = new Promise<number>((resolve) => {
    stream.on("data", (m: { partitions: { recordBatches: Uint8Array }[] }) => {
      if (++warm === 20) start = performance.now();
      if (start === 0) return;
      bytes += m.partitions[0]!.recordBatches.length;
      const elapsed = performance.now() - start;
      if (elapsed >= SECONDS * 1000) {
        stream.cancel();
        resolve(bytes / MiB / (elapsed / 1000));
      }
    });
    stream.on("error", () => {});
  });
  const result = await done;
  client.close();
  return result;
}

if (process.argv[2] === "serve") {
  await serve(JSON.parse(process.argv[3]!) as Setup);
} else {
  console.log(
    `1 MiB calls over 127.0.0.1${LATENCY_MS ? ` + ${LATENCY_MS} ms each way` : ""}, ${runtime}, ${SECONDS} s per run, median of ${REPEAT} runs (setups in rotation), window ${defaultTransportConfig.flowControlWindowBytes / MiB} MiB`,
  );
  console.log(
    "| server window | client window | codec | Produce unary MiB/s | Subscribe stream MiB/s | runs (unary/stream) |\n|---|---|---|---|---|---|",
  );
  const setups: Setup[] = [
    { serverWindow: false, clientWindow: false, codecs: false },
    { serverWindow: false, clientWindow: true, codecs: false },
    { serverWindow: true, clientWindow: true, codecs: false },
    { serverWindow: true, clientWindow: true, codecs: true },
  ];
  const runs: Array<Array<[number, number]>> = setups.map(() => []);
  for (let r = 0; r < REPEAT; r++) {
    for (let i = 0; i < setups.length; i++) runs[i]!.push(await measure(setups[i]!));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  setups.forEach((setup, i) => {
    const unary = median(runs[i]!.map((x) => x[0]));
    const stream = median(runs[i]!.map((x) => x[1]));
    const all = runs[i]!.map((x) => `${x[0].toFixed(0)}/${x[1].toFixed(0)}`).join(" ");
    console.log(
      `| ${setup.serverWindow ? "16 MiB" : "64 KiB"} | ${setup.clientWindow ? "16 MiB" : "64 KiB"} | ${setup.codecs ? "wire-codec" : "protobuf-es"} | ${unary.toFixed(0)} | ${stream.toFixed(0)} | ${all} |`,
    );
  });
}
