/** The README's tour programs run against a real broker, so the README cannot drift from the SDK. */
import { execFile } from "node:child_process";
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionForKey } from "../../src/base/murmur2.ts";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

let dir: string;
let broker: Broker;

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

/** Each "sent order i to partition p" line must follow Kafka's murmur2 of key customer-(i % 3). */
function checkSent(out: string): void {
  const sent = [...out.matchAll(/sent order (\d+) to partition (\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  expect(sent.length).toBe(10);
  for (const [i, p] of sent) expect(p).toBe(partitionForKey(Buffer.from(`customer-${i! % 3}`), 6));
}

beforeAll(async () => {
  dir = tmpDir();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0" });
});

afterAll(async () => {
  await broker.close();
  rmTmp(dir);
});

describe("README tour", () => {
  it("examples/orders.ts produces and consumes keyed orders", async () => {
    const out = await run(path.resolve("node_modules/.bin/bun"), ["examples/orders.ts"], { RILL_BOOTSTRAP: broker.address });
    checkSent(out);
    expect(out.match(/^partition \d offset \d+ key customer-\d \{/gm)!.length).toBe(10);
  });

  it("examples/orders.py does the same through stubs generated from proto/", async () => {
    const gen = tmpDir("rill-pygen-");
    try {
      await run("/usr/bin/protoc", [
        "-Iproto",
        `--python_out=${gen}`,
        `--grpc_python_out=${gen}`,
        "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
        ...nodeFs.readdirSync("proto/rill/v1").map((f) => `proto/rill/v1/${f}`),
      ]);
      const out = await run("/usr/bin/python3", ["examples/orders.py", broker.address], { PYTHONPATH: gen, PYTHONNOUSERSITE: "1" });
      checkSent(out);
      expect(out.match(/^partition \d offset \d+ key customer-\d \{/gm)!.length).toBe(20); // TS's 10 and Python's 10
    } finally {
      rmTmp(gen);
    }
  });
});
