/**
 * Assertions crash at the edge: an AssertionError that reaches a handler, `toErrorDetail`,
 * `toServiceError` or a response serializer stops the process with status 70 and the stack on
 * stderr — the client is never answered. Each case runs in a child process
 * (fixtures/crash-child.ts, under tsx) that serves one such handler and calls itself.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BUG_EXIT_CODE } from "../../../src/rpc/errors.ts";

const ROOT = path.resolve(".");
const TSX = path.join(ROOT, "node_modules/.bin/tsx");
const CHILD = path.join(ROOT, "test/unit/rpc/fixtures/crash-child.ts");

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runChild(mode: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(TSX, [CHILD, mode], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`crash-child ${mode} did not exit within 25 s:\n${stdout}\n${stderr}`));
    }, 25_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function expectCrash(o: Outcome, message: string): void {
  expect(o.stdout).not.toContain("answered");
  expect(o.code).toBe(BUG_EXIT_CODE);
  expect(o.stderr).toContain(`AssertionError: ${message}`);
  expect(o.stderr).toMatch(/\n\s+at /); // the stack
}

describe("crashOnBug at the RPC edge", () => {
  it("a unary handler that asserts stops the process with status 70 instead of answering", async () => {
    expectCrash(await runChild("unary"), "crash-child: the handler's invariant broke");
  });

  it("an AssertionError turned into an ErrorDetail stops the process", async () => {
    expectCrash(await runChild("detail"), "crash-child: an invariant broke while building a per-partition result");
  });

  it("a response serializer that asserts stops the process (grpc-js would answer INTERNAL)", async () => {
    expectCrash(await runChild("serialize"), "crash-child: the codec wrote fewer bytes than it planned");
  });

  it("a streaming handler ending its call with toServiceError of a bug stops the process", async () => {
    expectCrash(await runChild("stream"), "crash-child: the stream's invariant broke");
  });

  it("a catalog error is still answered (the control)", async () => {
    const o = await runChild("condition");
    expect(o.stdout).toBe('answered: 5 topics: topic "x" does not exist\n');
    expect(o.code).toBe(0);
  });
});
