/** Runs the `rill` command line (bin/rill, under the package's Bun) for integration tests. */
import { spawn } from "node:child_process";
import * as path from "node:path";

const ROOT = path.resolve(".");
const RILL = path.join(ROOT, "bin/rill");

/** What a `rill` run printed and how it exited (null: killed). */
export interface RillRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `bin/rill args` with `env` added (RILL_RUNTIME removed), killed after `timeoutMs`. */
export function runRill(args: readonly string[], timeoutMs = 90_000, env: Record<string, string> = {}): Promise<RillRun> {
  return new Promise((resolve, reject) => {
    const all: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete all["RILL_RUNTIME"];
    const proc = spawn(RILL, args, { cwd: ROOT, env: all, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
    proc.on("error", reject);
    proc.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
