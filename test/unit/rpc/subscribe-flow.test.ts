import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { openMemoryLogs } from "../storage/helpers.ts";
import { create } from "@bufbuild/protobuf";
import { systemTimers } from "../../../src/base/timers.ts";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { SeededRandom } from "../../../src/base/random.ts";
import { RecordFormat } from "../../../src/gen/rill/v1/common_pb.ts";
import { SubscribeRequestSchema } from "../../../src/gen/rill/v1/fetch_service_pb.ts";
import { decideCreateTopic } from "../../../src/metadata/controller.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import { SUBSCRIBE_QUEUED_BYTES_MAX, fetchService } from "../../../src/rpc/fetch-service.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import { encodeBatch } from "../../../src/protocol/record-batch.ts";

/** A server-streaming call whose send buffer is always full until the test emits 'drain'. */
class SlowCall extends EventEmitter {
  /** The call's headers and peer, as the requester of the call is read from them. */
  readonly metadata = new grpc.Metadata();
  getPeer(): string {
    return "127.0.0.1:1";
  }
  writes = 0;
  ended = false;
  constructor(readonly request: unknown) {
    super();
  }
  write(): boolean {
    this.writes++;
    return false;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.ended = true;
  }
}

/** A call whose writes are taken at once but never sent until the test calls their callbacks. */
class UnsentCall extends EventEmitter {
  /** The call's headers and peer, as the requester of the call is read from them. */
  readonly metadata = new grpc.Metadata();
  getPeer(): string {
    return "127.0.0.1:1";
  }
  readonly callbacks: Array<() => void> = [];
  ended = false;
  constructor(readonly request: unknown) {
    super();
  }
  write(_msg: unknown, cb: () => void): boolean {
    this.callbacks.push(cb);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.ended = true;
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

async function brokerWith(batches: number, valueBytes: number): Promise<{ rm: ReplicaManager; close: () => Promise<void> }> {
  const fs = new MemoryFileSystem();
  const clock = new ManualClock();
  const logs = openMemoryLogs(fs, clock);
  const store = LocalMetadataStore.open(fs, "/d", clock);
  const timers = systemTimers;
  const rm = new ReplicaManager(logs, store, clock, timers, 1);
  await store.commit((img) =>
    decideCreateTopic(
      img,
      { name: "t", partitions: 1, replicationFactor: 1, configs: {} },
      { partitions: 1, brokers: [1], random: new SeededRandom(1) },
    ),
  );
  for (let i = 0; i < batches; i++) rm.append("t", 0, encodeBatch([{ value: "x".repeat(valueBytes) }], { nowMs: 1 }), "leader");
  return {
    rm,
    close: async () => {
      rm.close();
      await logs.close();
      await store.close();
    },
  };
}

describe("Subscribe flow control", () => {
  it("a client that does not read holds the broker to one message in flight", async () => {
    const fs = new MemoryFileSystem();
    const clock = new ManualClock();
    const logs = openMemoryLogs(fs, clock);
    const store = LocalMetadataStore.open(fs, "/d", clock);
    const timers = systemTimers;
    const rm = new ReplicaManager(logs, store, clock, timers, 1);
    await store.commit((img) =>
      decideCreateTopic(
        img,
        { name: "t", partitions: 1, replicationFactor: 1, configs: {} },
        { partitions: 1, brokers: [1], random: new SeededRandom(1) },
      ),
    );
    // 200 batches of 1 KiB, each bigger than the request's max_bytes: one batch per message
    for (let i = 0; i < 200; i++) rm.append("t", 0, encodeBatch([{ value: "x".repeat(1000) }], { nowMs: 1 }), "leader");
    const call = new SlowCall(
      create(SubscribeRequestSchema, { partitions: [{ topic: "t", partition: 0, offset: 0n, maxBytes: 1 }], format: RecordFormat.BATCHES }),
    );
    const svc = fetchService(rm) as unknown as { subscribe(c: SlowCall): void };
    svc.subscribe(call);
    for (let i = 0; i < 10; i++) await tick();
    expect(call.writes).toBe(1); // waiting for 'drain', not reading ahead
    call.emit("drain");
    for (let i = 0; i < 5; i++) await tick();
    expect(call.writes).toBe(2);
    call.emit("cancelled");
    for (let i = 0; i < 3; i++) await tick();
    expect(call.ended).toBe(true);
    rm.close();
    await logs.close();
    await store.close();
  });

  it("reads no more while SUBSCRIBE_QUEUED_BYTES_MAX bytes wait to be sent", async () => {
    const mib = 1 << 20;
    const b = await brokerWith(20, mib); // one batch of just over 1 MiB per message
    const call = new UnsentCall(
      create(SubscribeRequestSchema, { partitions: [{ topic: "t", partition: 0, offset: 0n, maxBytes: 1 }], format: RecordFormat.BATCHES }),
    );
    (fetchService(b.rm) as unknown as { subscribe(c: UnsentCall): void }).subscribe(call);
    for (let i = 0; i < 5; i++) await tick();
    const batchBytes = encodeBatch([{ value: "x".repeat(mib) }], { nowMs: 1 }).length;
    const bound = Math.ceil(SUBSCRIBE_QUEUED_BYTES_MAX / batchBytes);
    expect(call.callbacks.length).toBe(bound);
    call.callbacks[0]!(); // the first message left: room for one more
    for (let i = 0; i < 3; i++) await tick();
    expect(call.callbacks.length).toBe(bound + 1);
    for (let i = 1; i < call.callbacks.length; i++) call.callbacks[i]!();
    for (let i = 0; i < 3; i++) await tick();
    expect(call.callbacks.length).toBe(Math.min(20, 2 * bound + 1));
    call.emit("cancelled");
    for (let i = 0; i < 3; i++) await tick();
    expect(call.ended).toBe(true);
    await b.close();
  });

  it("hands grpc-js one message per event-loop turn, so other calls and a cancellation get in between", async () => {
    // 50 small messages fit the queue many times over: without a turn between messages the
    // stream wrote them all in microtasks before any I/O (issue 14's soak: 1.1-1.5 s stalls).
    const b = await brokerWith(50, 1000);
    const call = new UnsentCall(
      create(SubscribeRequestSchema, { partitions: [{ topic: "t", partition: 0, offset: 0n, maxBytes: 1 }], format: RecordFormat.RECORDS }),
    );
    (fetchService(b.rm) as unknown as { subscribe(c: UnsentCall): void }).subscribe(call);
    const perTurn: number[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise<void>((r) => setImmediate(r));
      perTurn.push(call.callbacks.length);
    }
    call.emit("cancelled");
    for (let i = 0; i < 3; i++) await tick();
    expect(call.ended).toBe(true);
    perTurn.forEach((n, i) => expect(n).toBeLessThanOrEqual(i + 1));
    expect(call.callbacks.length).toBeLessThanOrEqual(6);
    await b.close();
  });
});
