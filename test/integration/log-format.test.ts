/**
 * `log.format` and `log.level` of a broker process (`rill broker start`, under Bun): pretty lines
 * from pino-pretty, JSON lines otherwise (stdout is a pipe here, so `auto` means JSON), and the
 * least severe level written.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");

/**
 * Runs a broker with `sets` until its output matches `until`, then stops it (SIGTERM: it may
 * come before the broker installs its handlers, so the exit code is not asserted here) and
 * returns all it wrote.
 */
async function runUntil(sets: readonly string[], until: RegExp): Promise<string> {
  const dir = tmpDir();
  const proc = spawn(
    path.join(ROOT, "node_modules/.bin/bun"),
    ["src/cli/main.ts", "broker", "start", "--data-dir", dir, "--listen", "127.0.0.1:0", ...sets.flatMap((s) => ["--set", s])],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", resolve));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${until} within 30 s; output: ${out.slice(-2000)}`)), 30_000);
      const check = (): void => {
        if (until.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout.on("data", check);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`broker exited; output: ${out.slice(-2000)}`));
      });
    });
    proc.kill("SIGTERM");
    await exited;
    return out;
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
    rmTmp(dir);
  }
}

describe("broker logs", () => {
  it("log.format=pretty writes one human-readable line per entry, with the fields", async () => {
    const out = await runUntil(["log.format=pretty"], /broker started/);
    const line = out.split("\n").find((l) => l.includes("topic created"))!;
    expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: topic created .*"topic":"__consumer_offsets"/);
    expect(out).not.toMatch(/^\{"level"/m);
  }, 60_000);

  it("JSON by default on a pipe; log.level=warn drops the info lines", async () => {
    const json = await runUntil([], /"broker started"/);
    const created = json.split("\n").find((l) => l.includes('"topic created"'))!;
    expect(JSON.parse(created)).toMatchObject({ level: 30, msg: "topic created", topic: "__consumer_offsets", node: 1 });
    const quiet = await runUntil(["log.level=warn", "metrics.port=0"], /metrics\.port is deprecated/);
    expect(quiet).not.toMatch(/"level":30/);
    expect(quiet).toMatch(/"level":40.*metrics\.port is deprecated/);
  }, 90_000);
});
