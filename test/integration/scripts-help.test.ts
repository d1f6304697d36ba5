/**
 * Every script a developer runs by hand — scripts/*.ts and *.sh, bench/*.ts, bench/peers/*.ts,
 * test/faults/run.ts — answers `--help` with its usage and exit 0, and refuses an unknown option
 * with one line and exit 2 (scripts/lib/command-line.ts). The scripts are found by listing the
 * folders, so a new script joins the test by itself; only the libraries beside them are left out.
 * The shell scripts must also parse (`bash -n`): a syntax error in a branch a machine with
 * everything installed never reaches (install-peers.sh's stray `fi`) fails here.
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(".");
const BUN = path.join(ROOT, "node_modules/.bin/bun");

/** Files in those folders that are imported, not run. */
const LIBRARIES = new Set([
  "bench/lib.ts",
  "bench/runtime.ts",
  "bench/peers/_common.ts",
  "bench/kafka-producer.ts",
  "bench/progress.ts",
  "bench/sweep-load.ts",
  "bench/sweep-chart.ts",
  "bench/suite-sweep.ts",
]);

function filesIn(dir: string, ext: string): string[] {
  return nodeFs
    .readdirSync(path.join(ROOT, dir))
    .filter((f) => f.endsWith(ext))
    .map((f) => `${dir}/${f}`)
    .filter((f) => !LIBRARIES.has(f));
}

const tsScripts = [...filesIn("scripts", ".ts"), ...filesIn("bench", ".ts"), ...filesIn("bench/peers", ".ts"), "test/faults/run.ts"];
const shellScripts = filesIn("scripts", ".sh");

function run(cmd: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("scripts answer --help", () => {
  it("finds the scripts", () => {
    expect(tsScripts).toEqual(expect.arrayContaining(["scripts/sim.ts", "test/faults/run.ts", "bench/suite.ts", "bench/peers/redis.ts"]));
    expect(shellScripts).toEqual(expect.arrayContaining(["scripts/install-peers.sh", "scripts/test.sh"]));
  });

  it.each(tsScripts)("%s --help prints its usage and exits 0; an unknown option exits 2", (script) => {
    const help = run(BUN, [script, "--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^Usage: ${script.replace(/[.]/g, "\\.")} \\[options\\]\\n\\n\\S`));
    expect(help.stdout).toContain("-h, --help");
    const bad = run(BUN, [script, "--no-such-option", "1"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`${script}: unknown option '--no-such-option' (see --help)\n`);
  });

  it.each(shellScripts)("%s parses, and --help prints its usage and exits 0", (script) => {
    const syntax = run("bash", ["-n", script]);
    expect(syntax.code, syntax.stderr).toBe(0);
    const help = run("bash", [script, "--help"]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/\S/);
    expect(help.stdout).toMatch(/^Usage: bash scripts\//m);
  });
});
