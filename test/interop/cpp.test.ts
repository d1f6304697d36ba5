/**
 * Interop: the C++ order client (examples/cpp/orders.cpp), built at test time from stubs that Debian's
 * protoc and grpc_cpp_plugin generate from proto/, runs the seed's consumer-group
 * scenario (orders-scenario.ts): every member a process of its own, one killed with SIGKILL.
 *
 * Missing C++ packages FAIL the suite (never skip): run scripts/install-test-deps.sh.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { rmTmp, tmpDir } from "../integration/rpc-helpers.ts";
import { type Built, buildCpp } from "./polyglot-env.ts";
import { runOrdersScenario } from "./orders-scenario.ts";

const children: ChildProcess[] = [];
const dirs: string[] = [];
let broker: Broker | undefined;
let built: Built | undefined;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await broker?.close();
  for (const d of dirs) rmTmp(d);
});

describe("interop: a C++ client generated from proto/ in the seed's consumer-group scenario", () => {
  it("generates the stubs and builds examples/cpp/orders.cpp", async () => {
    built = await buildCpp();
    console.log(`c++ interop: built examples/cpp/orders.cpp in ${built.ms} ms (${built.how})`);
  }, 300_000);

  it("produces orders, two groups read every record, a SIGKILLed member's partitions resume from the committed offsets", async () => {
    expect(built, "the build failed (see the test before)").toBeDefined();
    const dataDir = tmpDir("rill-interop-cpp-");
    dirs.push(dataDir);
    broker = await Broker.start({ dataDir, listen: "127.0.0.1:0", shutdownGraceMs: 1000 });
    const t0 = performance.now();
    const f = await runOrdersScenario(built!.bin, "orders-cpp", broker.address, children);
    console.log(
      `c++ interop: ${f.produced} orders; the victim's partitions [${f.victimPartitions}] taken over ${f.takeoverMs} ms after SIGKILL; ` +
        `${f.duplicates} uncommitted records delivered twice, nothing else; scenario ${Math.round(performance.now() - t0)} ms`,
    );
  }, 150_000);
});
