/**
 * TxnService's produce gate across brokers: a broker that does not coordinate a transactional id
 * passes a produce's gate to the coordinator its metadata names (`ensure`), but a gate another
 * broker passed here is answered here and never passed on again (`ensureHere`, what the
 * inter-broker TxnProduceGate handler runs). Before, the handler ran `ensure`: two brokers whose
 * metadata each named the other as the coordinator passed the request back and forth until its
 * deadline (cluster simulator seed 110, where duplicated messages doubled it at every hop).
 */
import { afterEach, describe, expect, it } from "vitest";
import { TXN_PARTITIONS, TXN_TOPIC, TXN_TOPIC_CONFIGS, TxnRuntime } from "../../../src/coordinator/transactions/txn-runtime.ts";
import type { RemoteTxnCoordinator, TxnProduceGateInput } from "../../../src/service/transactions.ts";
import { TxnService } from "../../../src/service/txn-service.ts";
import { type Core, HERE, openCore } from "./helpers.ts";

const OTHER = 2;

const cores: Core[] = [];
const runtimes: TxnRuntime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) r.close();
  for (const c of cores.splice(0)) await c.close();
});

/** Broker 1 whose metadata says broker 2 leads every `__transaction_state` partition; `remote` notes what it is asked. */
async function serviceWhereOtherCoordinates(): Promise<{ service: TxnService; asked: number[] }> {
  const core = openCore();
  cores.push(core);
  await core.topic(
    TXN_TOPIC,
    Array.from({ length: TXN_PARTITIONS }, () => OTHER),
    TXN_TOPIC_CONFIGS,
  );
  await core.topic("t", [HERE]);
  const runtime = new TxnRuntime(
    core.rm,
    core.clock,
    core.timers,
    HERE,
    {
      issueProducerId: () => Promise.reject(new Error("not used")),
      writeMarker: () => Promise.reject(new Error("not used")),
    },
    { maxTimeoutMs: 900_000, expirationMs: 7 * 24 * 3_600_000 },
  );
  runtimes.push(runtime);
  const asked: number[] = [];
  const remote: RemoteTxnCoordinator = {
    ensure: async (node) => {
      asked.push(node);
    },
  };
  return { service: new TxnService({ runtime, rm: core.rm, remote }), asked };
}

const gate: TxnProduceGateInput = { transactionalId: "tx-a", producerId: 7, producerEpoch: 0, topic: "t", partition: 0, mode: "add" };

describe("TxnService produce gate", () => {
  it("ensure passes the gate to the coordinator the metadata names", async () => {
    const { service, asked } = await serviceWhereOtherCoordinates();
    await service.ensure(gate);
    expect(asked).toEqual([OTHER]);
  });

  it("a gate passed here by another broker is answered here (NOT_COORDINATOR naming the coordinator), never passed on", async () => {
    const { service, asked } = await serviceWhereOtherCoordinates();
    await expect(service.ensureHere(gate)).rejects.toMatchObject({ kind: { name: "NOT_COORDINATOR" } });
    await expect(service.hereGate.ensure(gate)).rejects.toThrow(/broker 2/);
    expect(asked).toEqual([]);
  });
});
