/**
 * liblz4 through bun:ffi (src/protocol/lz4-liblz4.ts): off under Node (this process), on under
 * Bun, and there the LZ4 suites pass with it decoding: the frame view's tests (which compare its
 * output with lz4-napi's block decoder over seeded corruptions, golden lz4 CLI frames, linked
 * blocks, truncations), produce validation's, the codecs' and the record batch's. Needs
 * liblz4-1 (scripts/install-test-deps.sh). About 3-6 s: one `bun test` of four files.
 */
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { liblz4 } from "../../../src/protocol/lz4-liblz4.ts";

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");
const BUN = path.join(ROOT, "node_modules/.bin/bun");

describe("liblz4 under Bun", () => {
  it("is not used under Node: lz4-napi decodes", () => {
    expect(process.versions["bun"]).toBeUndefined();
    expect(liblz4()).toBeNull();
  });

  it("decodes under Bun (liblz4 found), and the LZ4 frame and produce-validation suites pass with it", () => {
    const probe = spawnSync(
      BUN,
      ["-e", 'import { liblz4 } from "./src/protocol/lz4-liblz4.ts"; const d = liblz4(); console.log(d === null ? "none" : d.version);'],
      { cwd: ROOT, encoding: "utf8", timeout: 30_000 },
    );
    expect(probe.status, probe.stderr).toBe(0);
    expect(probe.stdout.trim()).toMatch(/^1\.\d+\.\d+$/);
    const suites = ["lz4-frame-view", "produce-validation", "compression", "record-batch"].map((f) => `test/unit/protocol/${f}.test.ts`);
    const r = spawnSync(BUN, ["test", ...suites], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    // bun test reports on stderr: every test passed, none failed.
    expect(r.stderr).toMatch(/\b0 fail\b/);
    expect(r.stderr).toMatch(/\b[1-9]\d* pass\b/);
  }, 70_000);

  it("RILL_LZ4_DECODER=lz4-napi turns it off under Bun", () => {
    const probe = spawnSync(
      BUN,
      ["-e", 'import { liblz4 } from "./src/protocol/lz4-liblz4.ts"; console.log(liblz4() === null ? "none" : "liblz4");'],
      { cwd: ROOT, encoding: "utf8", timeout: 30_000, env: { ...process.env, RILL_LZ4_DECODER: "lz4-napi" } },
    );
    expect(probe.stdout.trim()).toBe("none");
  });
});
