import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  collectableBytes,
  GcPacer,
  JSC_EDEN_RATIO_ENV,
  JSC_GENERATIONAL_ENV,
  limitV8HeapGrowth,
  type ProcessImage,
  restartWithCollectorOptions,
  BUN_GC_TIMER_DISABLE_ENV,
  BUN_GC_TIMER_INTERVAL_ENV,
  runtimeCollector,
  startGcPacer,
} from "../../../src/broker/gc-pacer.ts";

const MiB = 1024 * 1024;

/** Buffer memory the test moves by hand; a collection frees what `garbage` says is dead. */
function world() {
  const w = {
    live: 100 * MiB,
    garbage: 0,
    collections: 0,
    read: () => w.live + w.garbage,
    collect: () => {
      w.garbage = 0;
      w.collections++;
    },
  };
  return w;
}

describe("GcPacer", () => {
  it("collects once buffer memory has grown by the step since the last collection, not before", () => {
    const w = world();
    const pacer = new GcPacer({ stepBytes: 64 * MiB, read: w.read, collect: w.collect });
    w.garbage = 63 * MiB;
    expect(pacer.check()).toBe(false);
    w.garbage = 64 * MiB;
    expect(pacer.check()).toBe(true);
    expect(w.collections).toBe(1);
    expect(w.garbage).toBe(0);
    // The mark is what the collection left: another 64 MiB of garbage is needed.
    w.garbage = 40 * MiB;
    expect(pacer.check()).toBe(false);
    w.garbage = 64 * MiB;
    expect(pacer.check()).toBe(true);
    expect(pacer.collections).toBe(2);
  });

  it("bounds dead buffers by the step whatever the traffic: 10 GiB written in 0.9 MiB requests", () => {
    const w = world();
    const pacer = new GcPacer({ stepBytes: 64 * MiB, read: w.read, collect: w.collect });
    let peak = 0;
    for (let i = 0; i < 10 * 1024; i++) {
      w.garbage += 0.9 * MiB * 3; // received frames, the joined message, the batch built from it
      peak = Math.max(peak, w.read());
      pacer.check();
    }
    expect(peak - w.live).toBeLessThanOrEqual(64 * MiB + 3 * 0.9 * MiB);
    expect(w.collections).toBeGreaterThan(400);
  });

  it("follows memory down (a collection by the runtime itself) and counts growth from the lowest point", () => {
    const w = world();
    w.garbage = 50 * MiB;
    const pacer = new GcPacer({ stepBytes: 64 * MiB, read: w.read, collect: w.collect });
    w.garbage = 0; // the runtime collected on its own
    expect(pacer.check()).toBe(false);
    w.garbage = 64 * MiB; // 64 above the low point, 14 above the first reading
    expect(pacer.check()).toBe(true);
  });

  it("live growth costs one collection per step and raises the mark", () => {
    const w = world();
    const pacer = new GcPacer({ stepBytes: 64 * MiB, read: w.read, collect: w.collect });
    w.live += 64 * MiB; // a tail cache filling: nothing to free
    expect(pacer.check()).toBe(true);
    expect(pacer.check()).toBe(false);
    expect(pacer.check()).toBe(false);
    expect(w.collections).toBe(1);
  });

  /** A pacer of a 64 MiB step with a soft limit of 240 MiB (8 MiB step above it, 1 s apart) on a manual clock. */
  function softPacer(w: ReturnType<typeof world>, clock: { ms: number }) {
    return new GcPacer({
      stepBytes: 64 * MiB,
      read: w.read,
      collect: w.collect,
      softLimitBytes: 240 * MiB,
      softIntervalMs: 1000,
      nowMs: () => clock.ms,
    });
  }

  it("below the soft limit it changes nothing: only the step collects", () => {
    const w = world(); // 100 MiB live
    const clock = { ms: 0 };
    const pacer = softPacer(w, clock);
    w.garbage = 63 * MiB; // 163 MiB: far above the soft step, below the limit
    clock.ms += 5000;
    expect(pacer.check()).toBe(false);
    w.garbage = 64 * MiB;
    expect(pacer.check()).toBe(true);
    expect(pacer.softCollections).toBe(0);
  });

  it("at the soft limit it collects after an eighth of the step, at most once per interval", () => {
    const w = world();
    w.live = 236 * MiB;
    const clock = { ms: 0 };
    const pacer = softPacer(w, clock);
    w.garbage = 4 * MiB; // at the limit (240), 4 above the mark: not yet
    expect(pacer.check()).toBe(false);
    w.garbage = 8 * MiB; // 8 above the mark and above the limit
    expect(pacer.check()).toBe(true);
    expect(w.garbage).toBe(0);
    expect(pacer.softCollections).toBe(1);
    // 16 MiB more within the interval: it waits, then collects.
    w.garbage = 16 * MiB;
    clock.ms += 999;
    expect(pacer.check()).toBe(false);
    clock.ms += 1;
    expect(pacer.check()).toBe(true);
    expect(pacer.softCollections).toBe(2);
    // The step is not subject to the interval.
    w.garbage = 64 * MiB;
    expect(pacer.check()).toBe(true);
    expect(pacer.collections).toBe(3);
    expect(pacer.softCollections).toBe(2);
  });

  it("does not thrash when live memory sits above the soft limit: a collection only per soft step of growth", () => {
    const w = world();
    w.live = 280 * MiB; // above the limit and nothing to free
    const clock = { ms: 0 };
    const pacer = softPacer(w, clock);
    for (let i = 0; i < 1200; i++) {
      clock.ms += 50;
      pacer.check();
    }
    expect(w.collections).toBe(0);
    // Live growth above the limit: one collection per 8 MiB, however often it is checked.
    for (let i = 0; i < 1200; i++) {
      clock.ms += 50;
      w.live += (33 * MiB) / 1200;
      pacer.check();
    }
    expect(w.collections).toBe(4);
  });

  it("bounds the sawtooth near the limit: garbage at 40 MiB/s over a 210 MiB floor, 60 s", () => {
    const run = (softLimitBytes: number) => {
      const w = world();
      w.live = 210 * MiB;
      const clock = { ms: 0 };
      const pacer = new GcPacer({
        stepBytes: 64 * MiB,
        read: w.read,
        collect: w.collect,
        softLimitBytes,
        softIntervalMs: 1000,
        nowMs: () => clock.ms,
      });
      let peak = 0;
      for (let i = 0; i < 1200; i++) {
        clock.ms += 50;
        w.garbage += 2 * MiB; // 40 MiB/s between two checks 50 ms apart
        peak = Math.max(peak, w.read());
        pacer.check();
      }
      return { peak: peak / MiB, collections: w.collections };
    };
    const without = run(0);
    const withLimit = run(240 * MiB);
    // The step alone: the floor plus 64.
    expect(without.peak).toBe(274);
    expect(without.collections).toBe(37);
    // With the limit: the floor plus what the interval lets grow (40 MiB), under the limit plus a step.
    expect(withLimit.peak).toBe(250);
    // Once a second at most: 60 in 60 s.
    expect(withLimit.collections).toBe(60);
  });

  it("backs off when soft collections free little (live memory in flight) and comes back when one frees a soft step", () => {
    const w = world();
    w.live = 250 * MiB; // above the limit
    const clock = { ms: 0 };
    const pacer = softPacer(w, clock);
    const times: number[] = [];
    // Requests in flight swing the live memory 0-16 MiB every 100 ms: nothing for a collection to free.
    for (let i = 0; i < 1000; i++) {
      clock.ms += 50;
      w.live = 250 * MiB + (i % 2) * 16 * MiB;
      if (pacer.check()) times.push(clock.ms);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps).toEqual([2000, 4000, 8000, 16000, 16000]);
    expect(pacer.softIntervalNowMs).toBe(16000);
    // Garbage again: the next soft collection frees it, and the interval is 1 s again.
    w.live = 250 * MiB;
    w.garbage = 20 * MiB;
    clock.ms += 16000;
    expect(pacer.check()).toBe(true);
    expect(pacer.softIntervalNowMs).toBe(1000);
  });

  it("a soft limit needs a clock", () => {
    const w = world();
    expect(() => new GcPacer({ stepBytes: 64 * MiB, read: w.read, collect: w.collect, softLimitBytes: 240 * MiB })).toThrow(/clock/);
  });

  it("starts only with a step and a collector; under Node there is none (V8 paces itself)", () => {
    expect(startGcPacer(0, { collect: () => {} })).toBeNull();
    expect(startGcPacer(64 * MiB, { collect: null })).toBeNull();
    const running = startGcPacer(64 * MiB, { collect: () => {} });
    expect(running).not.toBeNull();
    running!.stop();
    const bun = (globalThis as { Bun?: unknown }).Bun;
    expect(runtimeCollector() === null).toBe(bun === undefined);
  });

  it("reads the JavaScript heap besides the buffers (what a full collection can give back)", () => {
    const before = process.memoryUsage();
    const read = collectableBytes();
    expect(read).toBeGreaterThan(before.arrayBuffers);
    expect(read).toBeGreaterThanOrEqual(before.heapTotal);
  });

  it("counts buffers under both runtimes: 32 MiB of live buffers raise the reading by at least 24 MiB", () => {
    // Bun 1.4 reports `arrayBuffers` as 0 and half of the buffers' bytes in `heapUsed` (the
    // reading was `arrayBuffers + heapTotal`: it grew ~0 under Bun); Node counts them in
    // `arrayBuffers`. The same script runs under both; each prints how much the reading grew.
    const script = [
      `import { collectableBytes } from ${JSON.stringify(path.resolve("src/broker/gc-pacer.ts"))};`,
      "const before = collectableBytes();",
      "const keep = [];",
      "for (let i = 0; i < 256; i++) keep.push(Buffer.alloc(128 * 1024, i));",
      "for (let i = 0; i < 32; i++) await new Promise((r) => setTimeout(r, 1));",
      "console.log(JSON.stringify({ grew: collectableBytes() - before, kept: keep.length }));",
    ].join("\n");
    const runtimes: Record<string, string[]> = {
      bun: [path.resolve("node_modules/.bin/bun"), "-e", script],
      node: [process.execPath, "--import", "tsx", "--input-type=module", "-e", script],
    };
    for (const [name, [cmd, ...args]] of Object.entries(runtimes)) {
      const r = spawnSync(cmd!, args, { encoding: "utf8", timeout: 30_000 });
      expect(r.status, `${name}: ${r.stderr}`).toBe(0);
      const { grew, kept } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { grew: number; kept: number };
      expect(kept).toBe(256);
      expect(grew, `${name}: the reading grew ${(grew / MiB).toFixed(1)} MiB`).toBeGreaterThanOrEqual(24 * MiB);
    }
  });

  it("sets V8's heap growing factor under Node only, and not for 0", () => {
    const bun = (globalThis as { Bun?: unknown }).Bun;
    expect(limitV8HeapGrowth(0)).toBe(false);
    expect(limitV8HeapGrowth(50)).toBe(bun === undefined);
  });
});

describe("restartWithCollectorOptions (gc.bun.eden.ratio, gc.bun.generational)", () => {
  /** A process image whose execve records its call instead of replacing anything. */
  function image(over: Partial<ProcessImage> = {}) {
    const calls: { file: string; args: string[]; env: NodeJS.ProcessEnv }[] = [];
    const img: ProcessImage = {
      bun: true,
      env: { PATH: "/usr/bin", RILL_DATA_DIR: "/var/rill" },
      execPath: "/opt/bun",
      execArgv: ["--smol"],
      argv: ["/opt/bun", "/app/src/cli/main.ts", "broker", "start", "--set", "a=b"],
      execve: (file, args, env) => {
        calls.push({ file, args, env });
      },
      ...over,
    };
    return { img, calls };
  }
  const defaults = { edenRatio: 0.9, generational: true };

  it("under Bun restarts the same command line with the runtime's flags and the variables added to the environment", () => {
    const { img, calls } = image();
    expect(restartWithCollectorOptions(defaults, img)).toBe(true);
    expect(calls).toEqual([
      {
        file: "/opt/bun",
        args: ["/opt/bun", "--smol", "/app/src/cli/main.ts", "broker", "start", "--set", "a=b"],
        env: { PATH: "/usr/bin", RILL_DATA_DIR: "/var/rill", [JSC_EDEN_RATIO_ENV]: "0.9" },
      },
    ]);
    const off = image();
    expect(restartWithCollectorOptions({ edenRatio: 0, generational: false }, off.img)).toBe(true);
    expect(off.calls[0]!.env).toEqual({ PATH: "/usr/bin", RILL_DATA_DIR: "/var/rill", [JSC_GENERATIONAL_ENV]: "false" });
  });

  it("gc.bun.timer.interval.ms: 0 turns Bun's collection timer off, another period sets it, Bun's own 1000 sets nothing", () => {
    const off = image();
    expect(restartWithCollectorOptions({ edenRatio: 0, generational: true, timerIntervalMs: 0 }, off.img)).toBe(true);
    expect(off.calls[0]!.env).toEqual({ PATH: "/usr/bin", RILL_DATA_DIR: "/var/rill", [BUN_GC_TIMER_DISABLE_ENV]: "1" });
    const slow = image();
    expect(restartWithCollectorOptions({ ...defaults, timerIntervalMs: 10_000 }, slow.img)).toBe(true);
    expect(slow.calls[0]!.env).toEqual({
      PATH: "/usr/bin",
      RILL_DATA_DIR: "/var/rill",
      [JSC_EDEN_RATIO_ENV]: "0.9",
      [BUN_GC_TIMER_INTERVAL_ENV]: "10000",
    });
    const own = image();
    expect(restartWithCollectorOptions({ edenRatio: 0, generational: true, timerIntervalMs: 1000 }, own.img)).toBe(false);
    expect(own.calls).toEqual([]);
  });

  it("keeps a variable the operator set and adds only the missing one", () => {
    const { img, calls } = image({ env: { [JSC_EDEN_RATIO_ENV]: "0.5" } });
    expect(restartWithCollectorOptions({ edenRatio: 0.9, generational: false }, img)).toBe(true);
    expect(calls[0]!.env).toEqual({ [JSC_EDEN_RATIO_ENV]: "0.5", [JSC_GENERATIONAL_ENV]: "false" });
  });

  it("does nothing outside Bun, for JavaScriptCore's own options, once every variable is set (the restarted process), or without execve", () => {
    for (const [opts, over] of [
      [defaults, { bun: false }],
      [{ edenRatio: 0, generational: true }, {}],
      [defaults, { env: { [JSC_EDEN_RATIO_ENV]: "0.5" } }],
      [{ edenRatio: 0.9, generational: false }, { env: { [JSC_EDEN_RATIO_ENV]: "0.9", [JSC_GENERATIONAL_ENV]: "false" } }],
      [defaults, { execve: undefined }],
    ] as const) {
      const { img, calls } = image(over);
      expect(restartWithCollectorOptions(opts, img)).toBe(false);
      expect(calls).toEqual([]);
    }
  });
});
