/**
 * The soak test in CI (issue 14): scripts/soak.ts on Node, the reference runtime, for 2 minutes
 * against one broker (about 2.2 minutes with the start and the read-back) and 1 minute against a
 * 3-node cluster (about 75 s). Each run must exit 0, and its JSON must show what the run covered:
 * restarts by SIGTERM and kill -9 with the idle connection reconnecting after each, every kind of
 * call cancelled, group members joining and leaving, topics created and deleted, every
 * acknowledged record read back, RSS and descriptors within the bounds and no error outside
 * the injected faults. The seeds are fixed (printed by the script) so a failure replays.
 * Needs `npm run build` (the brokers run dist/ under Node).
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SoakResult } from "./soak-run.ts";

/** What the script writes to soak-<runtime>-<mode>.json: the result without its samples. */
type Summary = Omit<SoakResult, "samples">;

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const out = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-soak-test-"));

afterAll(() => nodeFs.rmSync(out, { recursive: true, force: true }));

function soak(args: readonly string[], timeoutMs: number): Summary {
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/soak.ts", "--runtime", "node", "--out", out, ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: timeoutMs,
  });
  const cluster = args.includes("--cluster");
  const json = path.join(out, `soak-node-${cluster ? "cluster" : "single"}.json`);
  expect(r.status, `soak ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return JSON.parse(nodeFs.readFileSync(json, "utf8")) as Summary;
}

function expectCovered(r: Summary): void {
  const c = r.counts;
  expect(r.errors.filter((e) => !e.excused)).toEqual([]);
  expect(r.failures).toEqual([]);
  expect(r.readBack.missing).toBe(0);
  expect(r.readBack.wrong).toBe(0);
  expect(r.readBack.checked).toBe(r.produce.acked);
  expect(r.produce.acked).toBeGreaterThan(r.durationS * 100);
  expect(c["idle.reconnects"]).toBe(r.faults.length);
  // Every kind of call was started and ended cleanly; the long-lived ones were cancelled while
  // open. A Fetch of data at hand (fetch-load) often answers before its cancel arrives, more so
  // on a loaded machine, so for it either ending counts.
  for (const kind of ["fetch-wait", "subscribe", "consume", "produce-stream"]) expect(c[`cancel.${kind}`] ?? 0, kind).toBeGreaterThan(0);
  expect((c["cancel.fetch-load"] ?? 0) + (c["cancel.completed-first.fetch-load"] ?? 0), "fetch-load").toBeGreaterThan(0);
  expect(c["group.joins"] ?? 0).toBeGreaterThan(1);
  expect(c["group.leaves"] ?? 0).toBeGreaterThan(0);
  expect(c["topics.deleted"] ?? 0).toBeGreaterThan(0);
  for (const n of r.nodes) {
    expect(n.rssMiB.max).toBeLessThanOrEqual(r.options.bounds.rssMiBMax);
    expect(n.fds.max).toBeLessThanOrEqual(r.options.bounds.fdsMax);
  }
}

describe("soak on Node", () => {
  it("one broker, 2 minutes: restarts by SIGTERM and kill -9, load, cancellations, bounds", () => {
    const r = soak(["--minutes", "2", "--seed", "3"], 170_000);
    expect(new Set(r.faults.map((f) => f.kind))).toEqual(new Set(["sigterm", "kill9"]));
    expectCovered(r);
  }, 180_000);

  // The cluster case found issue 14's lagging-leader bug (a partition leader whose metadata had
  // not applied a producer id just issued answered a final UNKNOWN_PRODUCER_ID; the leader now
  // waits for it: test/integration/producer-id-lag.test.ts). About 75 s with the start and the read-back.
  it("three nodes, 1 minute: a node restarted, load, cancellations, bounds", () => {
    const r = soak(["--minutes", "1", "--cluster", "--seed", "3"], 160_000);
    expect(r.faults.length).toBe(1);
    expectCovered(r);
  }, 170_000);
});
