import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { ManualTimers } from "../../../src/base/timers.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import { FetchedRecords } from "../../../src/service/fetched-records.ts";
import { QuotaThrottle, fetchResultBytes, throttled } from "../../../src/service/quota-throttle.ts";
import type { Requester } from "../../../src/security/requester.ts";

const who: Requester = { principal: "User:ANONYMOUS", host: "127.0.0.1", clientId: "app" };

/** An image with a producer quota of `rate` bytes/s on client id "app". */
function imageWithQuota(rate: number): MetadataImage {
  const img = new MetadataImage();
  img.apply({ type: "client-quota", v: 1, entity: { clientId: "app" }, key: "producer_byte_rate", value: rate }, 0);
  return img;
}

/** Lets every pending promise callback run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Moves clock and timers together, in 1 ms steps, letting promises run between them. */
async function advance(clock: ManualClock, timers: ManualTimers, ms: number): Promise<void> {
  await settle();
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    timers.advance(1);
    await settle();
  }
}

describe("QuotaThrottle", () => {
  it("holds a unary answer for the throttle time and makes the next request wait out the rest", async () => {
    const clock = new ManualClock(0);
    const timers = new ManualTimers();
    let img = imageWithQuota(1000);
    const t = new QuotaThrottle(() => img, clock, timers);
    let done: number | null = null;
    void throttled(
      t,
      () => who,
      "produce",
      async () => "answer",
      () => 3000,
    ).then((r) => {
      expect(r.answer).toBe("answer");
      done = r.throttleTimeMs;
    });
    await advance(clock, timers, 1999);
    expect(done).toBeNull();
    await advance(clock, timers, 2);
    expect(done).toBe(2000);
    // a stream over quota leaves a throttle: the next unary request waits it out before it runs
    // (7000 bytes over 2001 ms against 1000 B/s: (3498 − 1000) / 1000 × 2001 ms)
    const left = t.record(who, "produce", () => 4000);
    expect(left).toBe(4999);
    let ran = false;
    void throttled(
      t,
      () => who,
      "produce",
      async () => {
        ran = true;
      },
      () => 0,
    );
    await advance(clock, timers, left - 10);
    expect(ran).toBe(false);
    await advance(clock, timers, 20);
    expect(ran).toBe(true);
    // the quota is removed: nothing is held any more
    img = new MetadataImage();
    const free = await throttled(
      t,
      () => who,
      "produce",
      async () => 1,
      () => 1_000_000,
    );
    expect(free.throttleTimeMs).toBe(0);
  });

  it("without quotas wired, runs the request and never asks for the requester", async () => {
    const r = await throttled(
      undefined,
      () => {
        throw new Error("asked");
      },
      "consume",
      async () => 7,
      () => 1,
    );
    expect(r).toEqual({ answer: 7, throttleTimeMs: 0 });
  });

  it("pauses a stream until the latest throttle has run out", async () => {
    const clock = new ManualClock(0);
    const timers = new ManualTimers();
    const t = new QuotaThrottle(() => imageWithQuota(1000), clock, timers);
    const pause = t.streamPause();
    const events: string[] = [];
    pause.pause(
      100,
      () => events.push("stop"),
      () => events.push("go"),
    );
    await advance(clock, timers, 50);
    pause.pause(
      100,
      () => events.push("stop"),
      () => events.push("go"),
    );
    expect(pause.leftMs()).toBe(100);
    await advance(clock, timers, 99);
    expect(events).toEqual(["stop"]);
    await advance(clock, timers, 1);
    expect(events).toEqual(["stop", "go"]);
    expect(pause.paused).toBe(false);
  });

  it("counts a fetch answer's batches as stored and its records decoded", () => {
    const bytes = fetchResultBytes({
      partitions: [
        {
          topic: "t",
          partition: 0,
          highWatermark: 0,
          logStartOffset: 0,
          lastStableOffset: 0,
          nextOffset: 0,
          error: null,
          records: null,
          batches: [new Uint8Array(100), new Uint8Array(50)],
        },
        {
          topic: "t",
          partition: 1,
          highWatermark: 0,
          logStartOffset: 0,
          lastStableOffset: 0,
          nextOffset: 0,
          error: null,
          records: FetchedRecords.of([
            {
              offset: 0,
              timestampMs: 0,
              timestampType: 0,
              leaderEpoch: 0,
              key: new Uint8Array(3),
              value: null,
              headers: [{ key: "h", value: new Uint8Array(2) }],
            },
          ]),
          batches: null,
        },
      ],
    });
    expect(bytes).toBe(150 + 16 + 3 + 1 + 2);
  });
});
