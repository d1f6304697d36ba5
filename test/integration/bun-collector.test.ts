/**
 * `gc.bun.eden.ratio` and `gc.bun.generational` on a real `rill broker start` under Bun: the
 * process restarts itself in place (execve, same pid) with JavaScriptCore's options in its
 * environment before it serves,
 * and serves; `--set gc.bun.eden.ratio=0` leaves the environment alone, and so does a value the
 * operator set already (theirs wins).
 */
import { spawn } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  BUN_GC_TIMER_DISABLE_ENV,
  BUN_GC_TIMER_INTERVAL_ENV,
  JSC_EDEN_RATIO_ENV,
  JSC_GENERATIONAL_ENV,
} from "../../src/broker/gc-pacer.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmTmp(d);
});

/** Starts `bun src/cli/main.ts broker start`; resolves with the environment of its pid once it has registered, then stops it. */
async function environmentOfBroker(extra: string[], env: NodeJS.ProcessEnv = {}): Promise<Map<string, string>> {
  const dataDir = tmpDir("rill-bun-gc-");
  dirs.push(dataDir);
  const proc = spawn(
    path.join(ROOT, "node_modules/.bin/bun"),
    ["src/cli/main.ts", "broker", "start", "--data-dir", dataDir, "--listen", "127.0.0.1:0", "--set", "http.listen=", ...extra],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, [JSC_EDEN_RATIO_ENV]: undefined, [JSC_GENERATIONAL_ENV]: undefined, ...env },
    },
  );
  let out = "";
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "registered" within 30 s: ${out}`)), 30_000);
      const onData = (b: Buffer): void => {
        out += b.toString();
        if (out.includes("registered with the controller")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout!.on("data", onData);
      proc.stderr!.on("data", onData);
      proc.on("exit", (code) => reject(new Error(`broker exited with ${code}: ${out}`)));
    });
    // The pid spawned is the pid serving: execve keeps it, and /proc shows the environment it was exec'd with.
    const environ = nodeFs.readFileSync(`/proc/${proc.pid}/environ`, "utf8").split("\0");
    return new Map(environ.filter((kv) => kv.includes("=")).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => proc.once("exit", r));
  }
}

describe("rill broker start under Bun: gc.bun.eden.ratio, gc.bun.generational", () => {
  it("restarts itself in place with JavaScriptCore's minEdenToOldGenerationRatio (default 0.9) and serves", async () => {
    const env = await environmentOfBroker([]);
    expect(env.get(JSC_EDEN_RATIO_ENV)).toBe("0.9");
    expect(env.has(JSC_GENERATIONAL_ENV)).toBe(false);
    expect(env.has(BUN_GC_TIMER_INTERVAL_ENV)).toBe(false); // gc.bun.timer.interval.ms's default is Bun's own 1000
    const slow = await environmentOfBroker(["--set", "gc.bun.timer.interval.ms=10000"]);
    expect(slow.get(BUN_GC_TIMER_INTERVAL_ENV)).toBe("10000");
    const off = await environmentOfBroker(["--set", "gc.bun.timer.interval.ms=0"]);
    expect(off.get(BUN_GC_TIMER_DISABLE_ENV)).toBe("1");
    expect(off.has(BUN_GC_TIMER_INTERVAL_ENV)).toBe(false);
    const set = await environmentOfBroker(["--set", "gc.bun.eden.ratio=0.75", "--set", "gc.bun.generational=false"]);
    expect(set.get(JSC_EDEN_RATIO_ENV)).toBe("0.75");
    expect(set.get(JSC_GENERATIONAL_ENV)).toBe("false");
  }, 60_000);

  it("0 leaves the runtime's own; a value already in the environment wins", async () => {
    const off = await environmentOfBroker(["--set", "gc.bun.eden.ratio=0"]);
    expect(off.has(JSC_EDEN_RATIO_ENV)).toBe(false);
    const operator = await environmentOfBroker([], { [JSC_EDEN_RATIO_ENV]: "0.5" });
    expect(operator.get(JSC_EDEN_RATIO_ENV)).toBe("0.5");
  }, 60_000);
});
