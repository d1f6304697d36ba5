import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { Acks, type ProduceRequest, ProduceRequestSchema, type ProduceResponse } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { ForwardingFileSystem, forwardFile, type LogFile, MemoryFileSystem } from "../../src/storage/fs.ts";
import { PartitionLog } from "../../src/storage/partition-log.ts";
import { defaultTopicConfig } from "../../src/config/schema.ts";
import { ManualClock } from "../../src/base/clock.ts";
import { call, clients } from "./rpc-helpers.ts";

describe("durability", () => {
  it("flush.messages=1 answers a produce only after its fsync; the default does not wait", async () => {
    const fs = new MemoryFileSystem();
    const b = await Broker.start({ dataDir: "/data", listen: "127.0.0.1:0", fs });
    const c = clients(b.address);
    try {
      await call(
        c.admin,
        "createTopics",
        create(CreateTopicsRequestSchema, {
          topics: [
            { name: "lazy", partitions: 1 },
            { name: "strict", partitions: 1, configs: { "flush.messages": "1" } },
          ],
        }),
      );
      const produce = (topic: string) =>
        call(
          c.produce,
          "produce",
          create(ProduceRequestSchema, { topic, acks: Acks.ALL, records: [{ value: new TextEncoder().encode(`to-${topic}`) }] }),
        );
      let before = fs.syncCount;
      await produce("lazy");
      expect(fs.syncCount).toBe(before);
      before = fs.syncCount;
      await produce("strict");
      expect(fs.syncCount).toBeGreaterThan(before);
      // power loss right after the acknowledgement: the strict record survives, the lazy one not
      fs.crash();
      const open = (dir: string) =>
        PartitionLog.open({ fs, dir, clock: new ManualClock(), config: defaultTopicConfig, tailCacheBytes: 0, recover: true });
      expect(open("/data/strict-0").logEndOffset).toBe(1);
      expect(open("/data/lazy-0").logEndOffset).toBe(0);
    } finally {
      c.close();
      await b.close().catch(() => {});
    }
  });

  it("a broker halts at its disk's first failure (onDiskFailure) and writes nothing more, even once space is back", async () => {
    /** fsyncs fail with ENOSPC while `full`. */
    class FullDisk extends ForwardingFileSystem {
      full = false;
      open(path: string, create: boolean): LogFile {
        const f = this.inner.open(path, create);
        return forwardFile(f, {
          sync: () =>
            this.full ? Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" })) : f.sync(),
        });
      }
    }
    const mem = new MemoryFileSystem();
    const fs = new FullDisk(mem);
    const failures: Error[] = [];
    const b = await Broker.start({ dataDir: "/data", listen: "127.0.0.1:0", fs, onDiskFailure: (e) => failures.push(e) });
    const c = clients(b.address);
    try {
      await call(
        c.admin,
        "createTopics",
        create(CreateTopicsRequestSchema, {
          topics: [
            { name: "strict", partitions: 1, configs: { "flush.messages": "1" } },
            { name: "other", partitions: 1 },
          ],
        }),
      );
      const produce = (value: string, topic = "strict") =>
        call<ProduceRequest, ProduceResponse>(
          c.produce,
          "produce",
          create(ProduceRequestSchema, { topic, acks: Acks.ALL, records: [{ value: new TextEncoder().encode(value) }] }),
        );
      await produce("a");
      await produce("a", "other");
      expect(failures).toEqual([]);
      fs.full = true;
      await expect(produce("b")).rejects.toThrow(/ENOSPC/);
      expect(failures.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(["ENOSPC"]);
      fs.full = false;
      const before = mem.syncCount;
      const c2 = await produce("c");
      expect(c2.partitions[0]?.error?.name).toBe("KAFKA_STORAGE_ERROR");
      expect(c2.partitions[0]?.baseOffset).toBe(-1n);
      // Nor to any other partition of the data directory.
      const d = await produce("d", "other");
      expect(d.partitions[0]?.error?.message).toMatch(/ENOSPC/);
      expect(d.partitions[0]?.baseOffset).toBe(-1n);
      expect(mem.syncCount).toBe(before);
      expect(failures).toHaveLength(1);
    } finally {
      c.close();
      await b.close().catch(() => {});
    }
  });
});
