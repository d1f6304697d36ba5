/**
 * RabbitMQ Streams (Debian rabbitmq-server 3.10 with the rabbitmq_stream plugin): publishes
 * `--records` records of `--record-size` bytes to a stream over the stream protocol with the
 * npm `rabbitmq-stream-js-client` (chunks of up to 1,000 messages, up to 10,000 unconfirmed),
 * counting publish confirms. Durability: a single-node stream confirms once the chunk is written
 * to its segment file, without fsync (streams rely on replication for durability).
 *
 * The server runs as user `rabbitmq` in the foreground, with its own epmd, on free 127.0.0.1
 * ports and a fresh data dir (config per /work/shared/PEERS.md); both are stopped by PID.
 * The client's ExchangeCommandVersions call (RabbitMQ 3.11+; 3.10 closes the connection on it)
 * is skipped.
 *
 *   bun bench/peers/rabbitmq.ts [--records 1000000] [--record-size 100] [--runs 3] [--json FILE]
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import * as rabbit from "rabbitmq-stream-js-client";
import { Connection } from "rabbitmq-stream-js-client/dist/connection.js";
import { freePort, freshDir, peerMain, startServer, value, waitForPort, type Server } from "./_common.ts";

const CHUNK = 1000;
const UNCONFIRMED_MAX = 10_000;

// RabbitMQ 3.10 does not know ExchangeCommandVersions: skip it (the client then uses v1 commands).
(Connection.prototype as unknown as { exchangeCommandVersions: () => Promise<boolean> }).exchangeCommandVersions = async () => true;

await peerMain(
  import.meta.url,
  {
    peer: "RabbitMQ Streams",
    server: "rabbitmq-server 3.10",
    mode: "stream protocol, chunks of 1,000, 10,000 unconfirmed",
    durability: "single-node stream: confirm after write, no fsync",
    bin: "rabbitmq-server",
  },
  async (o, measure) => {
    const [amqp, stream, dist, epmdPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const dir = freshDir("rabbitmq");
    nodeFs.chmodSync(dir, 0o755);
    nodeFs.writeFileSync(
      path.join(dir, "rabbitmq.conf"),
      [
        `listeners.tcp.1 = 127.0.0.1:${amqp}`,
        `stream.listeners.tcp.1 = 127.0.0.1:${stream}`,
        `stream.advertised_host = 127.0.0.1`,
        `stream.advertised_port = ${stream}`,
        `distribution.listener.interface = 127.0.0.1`,
        `distribution.listener.port_range.min = ${dist}`,
        `distribution.listener.port_range.max = ${dist}`,
        ``,
      ].join("\n"),
    );
    nodeFs.writeFileSync(path.join(dir, "enabled_plugins"), "[rabbitmq_stream].\n");
    spawnSync("chown", ["-R", "rabbitmq:rabbitmq", dir]);
    const env = {
      ...process.env,
      HOME: dir,
      RABBITMQ_CONFIG_FILE: path.join(dir, "rabbitmq.conf"),
      RABBITMQ_ENABLED_PLUGINS_FILE: path.join(dir, "enabled_plugins"),
      RABBITMQ_MNESIA_BASE: path.join(dir, "mnesia"),
      RABBITMQ_LOG_BASE: path.join(dir, "log"),
      RABBITMQ_NODENAME: `rillbench${amqp}@localhost`,
      ERL_EPMD_ADDRESS: "127.0.0.1",
      ERL_EPMD_PORT: String(epmdPort),
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
    };
    const epmd: Server = startServer(
      "runuser",
      ["-u", "rabbitmq", "--", "epmd", "-port", String(epmdPort), "-address", "127.0.0.1"],
      freshDir("epmd"),
      { env },
    );
    let server: Server | null = null;
    let client: rabbit.Client | null = null;
    try {
      await waitForPort(epmdPort, 10_000);
      server = startServer("runuser", ["-u", "rabbitmq", "--", "/usr/lib/rabbitmq/bin/rabbitmq-server"], dir, { env, cwd: dir });
      const s = server as Server & { alive: boolean };
      process.stderr.write(`  waiting for rabbitmq-server (pid ${server.pid}) on 127.0.0.1:${stream} (~20 s)...\n`);
      await waitForPort(stream, 90_000, () => s.alive);
      client = await rabbit.connect({
        hostname: "127.0.0.1",
        port: stream,
        username: "guest",
        password: "guest",
        vhost: "/",
        heartbeat: 0,
      });
      await client.createStream({ stream: "bench", arguments: {} });
      const publisher = await client.declarePublisher({ stream: "bench", maxChunkLength: CHUNK } as never);
      const values = Array.from({ length: 1000 }, (_, i) => value(i, o.recordSize));
      // The broker's RSS: the beam.smp process under runuser/the start script (by its parent chain).
      const beam = findDescendant(server.pid, "beam.smp") ?? server.pid;
      return await measure(beam, async () => {
        let sent = 0;
        let confirmed = 0;
        let wake: (() => void) | null = null;
        let failure: Error | null = null;
        publisher.on("publish_confirm", (err, ids) => {
          if (err) failure ??= new Error(`publish_confirm error ${err}`);
          confirmed += ids.length;
          wake?.();
        });
        const waitFor = (cond: () => boolean): Promise<void> =>
          new Promise((resolve, reject) => {
            const check = (): void => {
              if (failure) return reject(failure);
              if (cond()) {
                wake = null;
                resolve();
              }
            };
            wake = check;
            check();
          });
        while (sent < o.records) {
          if (sent - confirmed >= UNCONFIRMED_MAX) await waitFor(() => sent - confirmed < UNCONFIRMED_MAX);
          await publisher.send(values[sent % values.length]!);
          sent++;
        }
        await publisher.flush();
        const deadline = setTimeout(() => (failure ??= new Error(`only ${confirmed} of ${o.records} confirmed after 60 s`)), 60_000);
        await waitFor(() => confirmed >= o.records);
        clearTimeout(deadline);
        return confirmed;
      });
    } finally {
      await client?.close().catch(() => {});
      await server?.stop(30_000);
      await epmd.stop();
    }
  },
);

/** The PID of a descendant of `pid` whose command name is `name` (via /proc), or null. */
function findDescendant(pid: number, name: string): number | null {
  const children = new Map<number, number[]>();
  for (const d of nodeFs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = nodeFs.readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* gone */
    }
  }
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    for (const c of children.get(p) ?? []) {
      try {
        if (nodeFs.readFileSync(`/proc/${c}/comm`, "utf8").trim() === name) return c;
      } catch {
        /* gone */
      }
      queue.push(c);
    }
  }
  return null;
}
