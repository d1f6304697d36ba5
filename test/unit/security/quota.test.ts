import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { type ClientQuotaState, quotaEntityKey } from "../../../src/metadata/client-quotas.ts";
import type { QuotaEntity, QuotaValues } from "../../../src/metadata/security-types.ts";
import { ClientQuotas, RateSensor, quotaCandidates, quotaOf } from "../../../src/security/quota.ts";
import type { Requester } from "../../../src/security/requester.ts";

const MiB = 1024 * 1024;
const KiB = 1024;

function quotaMap(entries: Array<[QuotaEntity, QuotaValues]>): Map<string, ClientQuotaState> {
  return new Map(entries.map(([entity, values]) => [quotaEntityKey(entity), { entity, values }]));
}

function who(user: string, clientId = ""): Requester {
  return { principal: `User:${user}`, host: "127.0.0.1", clientId };
}

function quotasOver(map: Map<string, ClientQuotaState>, clock: ManualClock): ClientQuotas {
  return new ClientQuotas({ quotas: () => map, keyOf: quotaEntityKey }, clock);
}

describe("RateSensor", () => {
  it("answers Kafka's throttle time (rate − quota) / quota × window, over a window of at least one sample", () => {
    const clock = new ManualClock(0);
    const s = new RateSensor({ samples: 11, sampleMs: 1000 });
    s.record(3000, clock.nowMs());
    expect(s.rate(0)).toBe(3000);
    expect(s.throttleMs(1000, 0)).toBe(2000);
    expect(s.throttleMs(3000, 0)).toBe(0);
    clock.advance(3000);
    // 3000 bytes over 3 s: exactly at the quota
    expect(s.rate(clock.nowMs())).toBe(1000);
    expect(s.throttleMs(1000, clock.nowMs())).toBe(0);
  });

  it("drops samples older than the window, and caps the throttle at the whole window", () => {
    const s = new RateSensor({ samples: 11, sampleMs: 1000 });
    s.record(1_000_000, 0);
    expect(s.throttleMs(1, 0)).toBe(11_000);
    s.record(10, 5000);
    expect(s.rate(5000)).toBeCloseTo(1_000_010 / 5, 6);
    // at 11 s the first sample (started at 0) is out of the window; the one of 5 s is left,
    // spanning 6 s
    expect(s.rate(11_000)).toBeCloseTo(10 / 6, 6);
    expect(s.rate(16_000)).toBe(0);
  });
});

describe("quota precedence (Kafka's order)", () => {
  const all: Array<[QuotaEntity, number]> = [
    [{ user: "alice", clientId: "app" }, 1],
    [{ user: "alice", clientId: null }, 2],
    [{ user: "alice" }, 3],
    [{ user: null, clientId: "app" }, 4],
    [{ user: null, clientId: null }, 5],
    [{ user: null }, 6],
    [{ clientId: "app" }, 7],
    [{ clientId: null }, 8],
  ];

  it("lists the eight candidate entities most specific first", () => {
    expect(quotaCandidates("alice", "app").map(quotaEntityKey)).toEqual(all.map(([e]) => quotaEntityKey(e)));
  });

  it("takes the most specific entity that sets the key; removing it falls back to the next", () => {
    for (let first = 0; first < all.length; first++) {
      const map = quotaMap(all.slice(first).map(([e, v]) => [e, { producerByteRate: v }]));
      const q = quotaOf(map, "alice", "app", "produce", quotaEntityKey);
      expect(q?.limit).toBe(first + 1);
      expect(quotaOf(map, "alice", "app", "consume", quotaEntityKey)).toBeNull();
    }
  });

  it("matches names exactly: another user or client id falls to the defaults", () => {
    const map = quotaMap([
      [{ user: "alice" }, { producerByteRate: 100 }],
      [{ clientId: "app" }, { producerByteRate: 200 }],
      [{ clientId: null }, { producerByteRate: 300 }],
    ]);
    expect(quotaOf(map, "bob", "app", "produce", quotaEntityKey)?.limit).toBe(200);
    expect(quotaOf(map, "bob", "other", "produce", quotaEntityKey)?.limit).toBe(300);
    expect(quotaOf(map, "alice", "other", "produce", quotaEntityKey)?.limit).toBe(100);
  });
});

describe("ClientQuotas", () => {
  it("shares a user's quota across its client ids, and gives each user its own sensor under the default", () => {
    const clock = new ManualClock(0);
    const map = quotaMap([
      [{ user: "alice" }, { producerByteRate: 1000 }],
      [{ user: null }, { producerByteRate: 1000 }],
    ]);
    const q = quotasOver(map, clock);
    expect(q.record(who("alice", "a"), "produce", 1000)).toBe(0);
    // alice's second client id shares her sensor: 2000 bytes in 1 s
    expect(q.record(who("alice", "b"), "produce", 1000)).toBe(1000);
    expect(q.pendingMs(who("alice", "c"), "produce")).toBe(1000);
    // bob and carol fall under the default user: a sensor each
    expect(q.record(who("bob"), "produce", 1000)).toBe(0);
    expect(q.record(who("carol"), "produce", 1000)).toBe(0);
    expect(q.sensorCount).toBe(3);
    // consuming is another quota (none set)
    expect(q.record(who("alice"), "consume", 10 * MiB)).toBe(0);
  });

  it("no quota, or a removed one, never throttles", () => {
    const clock = new ManualClock(0);
    const map = quotaMap([[{ clientId: null }, { consumerByteRate: 100 }]]);
    const q = quotasOver(map, clock);
    expect(q.record(who("x", "app"), "consume", 1000)).toBe(9000);
    expect(q.pendingMs(who("x", "app"), "consume")).toBe(9000);
    map.clear();
    expect(q.pendingMs(who("x", "app"), "consume")).toBe(0);
    expect(q.record(who("x", "app"), "consume", 10 * MiB)).toBe(0);
  });

  it("drops sensors idle for a whole window", () => {
    const clock = new ManualClock(0);
    const map = quotaMap([[{ user: null }, { producerByteRate: 1000 }]]);
    const q = quotasOver(map, clock);
    for (let i = 0; i < 50; i++) q.record(who(`u${i}`), "produce", 10);
    expect(q.sensorCount).toBe(50);
    clock.advance(11_000);
    q.record(who("late"), "produce", 10);
    expect(q.sensorCount).toBe(1);
  });

  /**
   * A producer as fast as the broker lets it: `inFlight` requests of 64 KiB at a time, each
   * admitted once the earlier throttle has run out and answered after its own. Bytes written
   * between 2 s and 12 s stay within 10 % of 1 MiB/s.
   */
  function simulate(inFlight: number, processMs: number): { rate: number; throttled: number } {
    const clock = new ManualClock(0);
    const map = quotaMap([[{ user: null }, { producerByteRate: MiB }]]);
    const q = quotasOver(map, clock);
    const w = who("ANONYMOUS");
    let inWindow = 0;
    let throttled = 0;
    while (clock.nowMs() < 12_000) {
      clock.advance(q.pendingMs(w, "produce"));
      let held = 0;
      for (let i = 0; i < inFlight; i++) {
        const t = q.record(w, "produce", 64 * KiB);
        if (clock.nowMs() >= 2000 && clock.nowMs() < 12_000) inWindow += 64 * KiB;
        if (t > 0) throttled++;
        held = Math.max(held, t);
      }
      clock.advance(processMs + held);
    }
    return { rate: inWindow / 10, throttled };
  }

  it("keeps a greedy producer within 10 % of its quota, pipelined or not", () => {
    for (const inFlight of [1, 4, 16]) {
      for (const processMs of [0, 1, 5]) {
        const { rate, throttled } = simulate(inFlight, processMs);
        expect(rate, `inFlight ${inFlight}, ${processMs} ms per request`).toBeLessThanOrEqual(1.1 * MiB);
        expect(rate, `inFlight ${inFlight}, ${processMs} ms per request`).toBeGreaterThanOrEqual(0.85 * MiB);
        expect(throttled).toBeGreaterThan(0);
      }
    }
  });
});
