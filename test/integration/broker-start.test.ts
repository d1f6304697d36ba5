/**
 * Broker.start in stages: a start that fails part way closes what its earlier stages opened, so
 * the same data directory starts again at once in the same process; the address is the bound
 * one; close() is safe to call twice.
 */
import { afterAll, describe, expect, it } from "vitest";
import { RillError } from "../../src/base/errors.ts";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const dirs: string[] = [];
const newDir = (): string => {
  const d = tmpDir("rill-start-");
  dirs.push(d);
  return d;
};

afterAll(() => {
  for (const d of dirs) rmTmp(d);
});

describe("Broker.start", () => {
  it("a start that cannot bind its port fails with INVALID_CONFIG and releases the data directory", async () => {
    const first = await Broker.start({ dataDir: newDir(), listen: "127.0.0.1:0" });
    const dataDir = newDir();
    try {
      const taken = Broker.start({ dataDir, listen: first.address });
      await expect(taken).rejects.toThrow(RillError);
      await expect(taken).rejects.toThrow(/listen: cannot listen on/);
      // Storage, the metadata log and the controller opened before the bind were closed again:
      // the directory's lock is free and the same directory starts at once.
      const again = await Broker.start({ dataDir, listen: "127.0.0.1:0" });
      expect(again.address).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(again.address).not.toBe("127.0.0.1:0");
      await again.close();
      await again.close();
    } finally {
      await first.close();
    }
  });
});
