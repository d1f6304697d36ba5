/**
 * The wire-contract guard (proto/README.md): proto/ passes `buf breaking` against the checked-in
 * baseline image, and the guard really fires — a copy of proto/ with one field renamed, or with a
 * generated client's file option changed, fails it naming the change.
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const ROOT = path.resolve(".");
const BUF = path.join(ROOT, "node_modules/.bin/buf");
const BASELINE = path.join(ROOT, "proto/baseline.binpb");
const made: string[] = [];

afterAll(() => {
  for (const d of made) rmTmp(d);
});

function breaking(cwd: string): { code: number | null; out: string } {
  const r = spawnSync(BUF, ["breaking", "--against", BASELINE], { cwd, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A copy of the buf workspace (buf.yaml and proto/) with `edit` applied to one .proto file. */
function editedCopy(file: string, edit: (text: string) => string): string {
  const dir = tmpDir("rill-proto-");
  made.push(dir);
  nodeFs.copyFileSync(path.join(ROOT, "buf.yaml"), path.join(dir, "buf.yaml"));
  nodeFs.cpSync(path.join(ROOT, "proto"), path.join(dir, "proto"), { recursive: true });
  const target = path.join(dir, "proto/rill/v1", file);
  const before = nodeFs.readFileSync(target, "utf8");
  const after = edit(before);
  expect(after).not.toBe(before);
  nodeFs.writeFileSync(target, after);
  return dir;
}

describe("buf breaking against proto/baseline.binpb", () => {
  it("the contract as it is passes", () => {
    const r = breaking(ROOT);
    expect(r.code, r.out).toBe(0);
  });

  it("an untouched copy passes, so the failures below come from the edits alone", () => {
    const r = breaking(editedCopy("common.proto", (t) => `${t}\n`));
    expect(r.code, r.out).toBe(0);
  });

  it("renaming a field fails, naming it", () => {
    const r = breaking(editedCopy("common.proto", (t) => t.replace("  string name = 2;", "  string error_name = 2;")));
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('changed name from "name" to "error_name"');
  });

  it("changing a generated client's file option fails, naming it", () => {
    const r = breaking(
      editedCopy("fetch_service.proto", (t) => t.replace('java_package = "io.github.rill.v1"', 'java_package = "io.rill.v1"')),
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('File option "java_package" changed');
  });
});
