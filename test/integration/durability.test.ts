import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { CreateTopicsRequestSchema } from "../../src/gen/rill/v1/admin_service_pb.ts";
import { Acks, ProduceRequestSchema } from "../../src/gen/rill/v1/produce_service_pb.ts";
import { MemoryFileSystem } from "../../src/storage/fs.ts";
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
});
