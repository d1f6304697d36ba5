/** The CLI's option parsers and its usage-error path: every bad flag value is one line naming the flag, exit 2. */
import { PassThrough } from "node:stream";
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import type { Io } from "../../../src/cli/output.ts";
import { intIn, keyValue, oneOf, separator } from "../../../src/cli/parse.ts";
import { run } from "../../../src/cli/program.ts";

describe("keyValue", () => {
  it("collects repeated key=value pairs, splitting at the first '='", () => {
    const parse = keyValue("--config");
    const one = parse("retention.ms=600000");
    expect(parse("cleanup.policy=compact", one)).toEqual({ "retention.ms": "600000", "cleanup.policy": "compact" });
    expect(parse("a=b=c")).toEqual({ a: "b=c" });
    expect(parse("empty=")).toEqual({ empty: "" });
    expect(one).toEqual({ "retention.ms": "600000" }); // not mutated by the second call
  });

  it("refuses a pair without '=' or without a key, naming the flag and the form", () => {
    for (const bad of ["retention.ms", "=x", ""]) {
      expect(() => keyValue("--header")(bad)).toThrow(InvalidArgumentError);
      expect(() => keyValue("--header")(bad)).toThrow("expected --header key=value");
    }
  });

  it("keeps __proto__ as a plain key", () => {
    const out = keyValue("--header")("__proto__=x");
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(["__proto__"]);
  });
});

describe("the other parsers", () => {
  it("intIn, oneOf and separator accept good values and refuse bad ones", () => {
    expect(intIn(0, 10)("7")).toBe(7);
    for (const bad of ["", "11", "-1", "1.5", "x"]) expect(() => intIn(0, 10)(bad)).toThrow(InvalidArgumentError);
    expect(oneOf(["a", "b"] as const)("b")).toBe("b");
    expect(() => oneOf(["a", "b"] as const)("c")).toThrow("expected one of a, b");
    expect(separator("\\t")).toBe("\t");
    expect(() => separator("")).toThrow(InvalidArgumentError);
  });
});

/** Runs the CLI in-process with empty stdin; returns its exit code and what it printed. */
async function rill(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const stdin = new PassThrough();
  stdin.end();
  // No broker listens on port 9 (discard): a command that got past parsing would fail to connect.
  const io: Io = { stdout, stderr, stdin, env: {} };
  const outcome = await run(["node", "rill", "--bootstrap", "127.0.0.1:9", ...args], io);
  return { code: outcome.exitCode, stdout: out, stderr: err };
}

describe("usage errors", () => {
  it.each([
    [["topic", "create", "t", "--config", "retention.ms"], "--config", "retention.ms"],
    [["topic", "alter", "t", "--config", "segment.bytes"], "--config", "segment.bytes"],
    [["produce", "t", "--header", "foo"], "--header", "foo"],
  ])("rill %j prints one line naming the flag and key=value, exit 2", async (args, flag, value) => {
    const r = await rill(...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^rill: /);
    expect(lines[0]).toContain(`'${flag} <key=value>'`);
    expect(lines[0]).toContain(`'${value}'`);
    expect(lines[0]).toContain(`expected ${flag} key=value`);
  });

  it("--help prints the usage and exits 0", async () => {
    const r = await rill("topic", "create", "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: rill topic create/);
    expect(r.stdout).toContain("--config <key=value>");
    expect(r.stderr).toBe("");
  });
});
