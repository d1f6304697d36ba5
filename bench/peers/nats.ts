/**
 * NATS JetStream (Debian nats-server 2.9, `-js`): publishes `--records` records of
 * `--record-size` bytes to a file-storage stream with the npm `nats` client, 1,000 publishes in
 * flight, each PubAck awaited. Durability: JetStream's default — acknowledged once written to
 * the file store, fsync every 2 minutes (`sync_interval`), so acknowledged before fsync.
 *
 *   bun bench/peers/nats.ts [--records 1000000] [--record-size 100] [--runs 3] [--json FILE]
 */
import { connect, type NatsConnection } from "nats";
import { freePort, freshDir, peerMain, startServer, value, waitForPort } from "./_common.ts";

const IN_FLIGHT = 1000;

await peerMain(
  import.meta.url,
  {
    peer: "NATS JetStream",
    server: "nats-server 2.9",
    mode: "JetStream async publish, 1,000 in flight",
    durability: "JetStream default: file store, ack before fsync (sync every 2 min)",
    bin: "nats-server",
  },
  async (o, measure) => {
    const port = await freePort();
    const dir = freshDir("nats");
    const server = startServer("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], dir);
    let nc: NatsConnection | null = null;
    try {
      await waitForPort(port, 15_000);
      nc = await connect({ servers: `127.0.0.1:${port}` });
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({ name: "BENCH", subjects: ["bench"] });
      const js = nc.jetstream();
      const values = Array.from({ length: 1000 }, (_, i) => value(i, o.recordSize));
      const r = await measure(server.pid, async () => {
        let sent = 0;
        let acked = 0;
        await new Promise<void>((resolve, reject) => {
          const pump = (): void => {
            while (sent < o.records && sent - acked < IN_FLIGHT) {
              const i = sent++;
              js.publish("bench", values[i % values.length]!).then(() => {
                if (++acked === o.records) resolve();
                else pump();
              }, reject);
            }
          };
          pump();
        });
        return acked;
      });
      const info = await jsm.streams.info("BENCH");
      if (info.state.messages !== o.records) throw new Error(`stream holds ${info.state.messages}, expected ${o.records}`);
      return r;
    } finally {
      await nc?.close();
      await server.stop();
    }
  },
);
