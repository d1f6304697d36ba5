/** FileHandlePool over the real disk: idle files hold no descriptor, pinned ones do, contents survive reopening. */
import * as nodeFs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { FileHandlePool, NodeFileSystem } from "../../../src/storage/fs.ts";

const dir = nodeFs.mkdtempSync(path.join(os.tmpdir(), "rill-pool-"));
afterAll(() => nodeFs.rmSync(dir, { recursive: true, force: true }));
const openFds = (): number => nodeFs.readdirSync("/proc/self/fd").length;

describe("FileHandlePool", () => {
  it.runIf(process.platform === "linux")(
    "keeps at most max idle descriptors (+ pinned) over 200 files, and reads back every one",
    async () => {
      const pool = new FileHandlePool(new NodeFileSystem(), 8);
      const before = openFds();
      const files = Array.from({ length: 200 }, (_, i) => {
        const f = pool.open(path.join(dir, `f${i}`), true);
        f.write(Buffer.from(`file ${i}`), 0);
        return f;
      });
      files[0]!.setPinned?.(true);
      files[1]!.setPinned?.(true);
      expect(pool.openCount).toBeLessThanOrEqual(8 + 2 + 1);
      expect(openFds() - before).toBeLessThanOrEqual(8 + 2 + 1);
      for (let i = 0; i < 200; i++) {
        const buf = Buffer.alloc(16);
        const n = files[i]!.read(buf, 0, 16, 0);
        expect(buf.subarray(0, n).toString()).toBe(`file ${i}`);
        expect(files[i]!.size()).toBe(`file ${i}`.length);
      }
      await Promise.all(files.slice(0, 50).map((f) => f.sync()));
      expect(pool.reopenCount).toBeGreaterThan(150);
      expect(openFds() - before).toBeLessThanOrEqual(8 + 2 + 1);
      for (const f of files) f.close();
      expect(pool.openCount).toBe(0);
      expect(openFds()).toBe(before);
    },
  );
});
