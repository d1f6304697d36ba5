/**
 * Transactions (issue 17) in a simulated node, wired as src/broker/transactions.ts wires them:
 * the real `TxnRuntime` (coordinator shards on `__transaction_state`, following its leaders) and
 * the real `TxnService`, with their ports over the simulator's network — producer ids from the
 * active controller (this node's while it leads, else the known leader's, as
 * src/rpc/txn-rpc.ts `controllerProducerIds` forwards), markers to partition leaders
 * (`txnMarkerRouter` with a `TxnMarkerWriter` over the network, answered by the leader's
 * `localMarker`, as ReplicationService.WriteTxnMarkers is) and the produce gate to the
 * coordinator on another node (ReplicationService.TxnProduceGate).
 */
import { RillError, rillError } from "../../../src/base/errors.ts";
import type { Timers } from "../../../src/base/timers.ts";
import type { Clock } from "../../../src/base/clock.ts";
import { defaultBrokerConfig } from "../../../src/config/schema.ts";
import type { GroupRuntime } from "../../../src/coordinator/group-runtime.ts";
import type { TxnIdentity } from "../../../src/coordinator/transactions/txn-coordinator.ts";
import { type TxnMarkerSpec, TxnRuntime } from "../../../src/coordinator/transactions/txn-runtime.ts";
import type { ObserverMetadataStore } from "../../../src/metadata/observer-store.ts";
import type { QuorumMetadataStore } from "../../../src/metadata/quorum-store.ts";
import type { ReplicaManager } from "../../../src/replication/replica-manager.ts";
import type { RemoteTxnCoordinator, TxnMarkerWriter } from "../../../src/service/transactions.ts";
import { localMarker, TxnService, txnMarkerRouter } from "../../../src/service/txn-service.ts";
import type { SimNode } from "./node.ts";
import type { Incarnation, SimNet } from "./world.ts";

/** How often the shards follow leadership (src/broker/transactions.ts SYNC_INTERVAL_MS). */
const SYNC_INTERVAL_MS = 200;
/** How long an internal transaction call may take here (the broker's is 30 s; a run heals in 15). */
export const SIM_TXN_CALL_TIMEOUT_MS = 5000;

/** A node's transactions. */
export interface SimTxn {
  readonly runtime: TxnRuntime;
  readonly service: TxnService;
  /** The leader side of WriteTxnMarkers: one marker into a partition this node leads. */
  readonly writeLocalMarker: (tp: { topic: string; partition: number }, marker: TxnMarkerSpec) => Promise<void>;
}

/** What the wiring needs of its node. */
export interface SimTxnEnv {
  readonly id: number;
  readonly inc: Incarnation;
  readonly net: SimNet;
  readonly nodes: ReadonlyMap<number, SimNode>;
  readonly voters: readonly number[];
  readonly rm: ReplicaManager;
  /** A voter's store, or a broker-only node's (an observer of the metadata log). */
  readonly store: QuorumMetadataStore | ObserverMetadataStore;
  readonly groups: GroupRuntime;
  readonly clock: Clock;
  readonly timers: Timers;
}

/** Starts the transaction coordinator of a node's process (its timers die with the process). */
export function startSimTransactions(e: SimTxnEnv): SimTxn {
  const d = defaultBrokerConfig;
  const peers = simTxnPeers(e);
  const issue = simControllerProducerIds(e);
  const offsetsMarker = (partition: number, m: { producerId: number; commit: boolean }): Promise<void> =>
    e.groups.completeTxnOffsets(partition, m.producerId, m.commit);
  const runtime = new TxnRuntime(
    e.rm,
    e.clock,
    e.timers,
    e.id,
    { issueProducerId: issue, writeMarker: txnMarkerRouter(e.rm, e.id, peers, offsetsMarker) },
    { maxTimeoutMs: d.transactionMaxTimeoutMs, expirationMs: d.transactionalIdExpirationMs },
  );
  const service = new TxnService({
    runtime,
    rm: e.rm,
    remote: peers,
    groups: e.groups,
    requestTopic: (id) => issue(id, 0),
    sleep: (ms) => new Promise((r) => e.timers.setTimeout(r, ms)),
  });
  e.store.onChange(() => runtime.syncShards());
  runtime.syncShards();
  let lastTick = 0;
  e.timers.setInterval(() => {
    runtime.syncShards();
    const now = e.clock.nowMs();
    if (now - lastTick < d.transactionAbortTimedOutTransactionCleanupIntervalMs) return;
    lastTick = now;
    runtime.tick();
  }, SYNC_INTERVAL_MS);
  return { runtime, service, writeLocalMarker: (tp, marker) => localMarker(e.rm, offsetsMarker, tp, marker) };
}

/** The other node's transactions, or a refusal (down, or not started). */
function txnOf(e: SimTxnEnv, node: number): SimTxn {
  const t = e.nodes.get(node)?.running?.txn;
  if (!t) throw rillError("COORDINATOR_NOT_AVAILABLE", `transactions are not served by node ${node} yet`);
  return t;
}

/** The inter-broker ports (src/rpc/txn-rpc.ts `txnPeers`) over the simulated network. */
function simTxnPeers(e: SimTxnEnv): RemoteTxnCoordinator & TxnMarkerWriter {
  const call = <T>(node: number, fn: (t: SimTxn) => Promise<T>): Promise<T> => {
    const target = e.nodes.get(node)!;
    return e.net
      .call(e.id, node, target.current, () => fn(txnOf(e, node)), e.inc, SIM_TXN_CALL_TIMEOUT_MS)
      .catch((err: unknown) => {
        throw err instanceof RillError ? err : rillError("REQUEST_TIMED_OUT", `node ${node}: ${(err as Error).message}`);
      });
  };
  return {
    ensure: (node, i) => {
      const copy = { ...i };
      return call(node, (t) => t.service.ensureHere(copy));
    },
    writeMarkers: (node, markers) => {
      const copy = markers.map((m) => ({ topic: m.topic, partition: m.partition, marker: { ...m.marker } }));
      return call(node, (t) =>
        Promise.all(
          copy.map((m) =>
            t.writeLocalMarker({ topic: m.topic, partition: m.partition }, m.marker).then(
              () => null,
              (err: unknown) => (err instanceof RillError ? err : RillError.from(err)),
            ),
          ),
        ),
      );
    },
  };
}

/**
 * The active controller's producer id for a transactional id (src/rpc/txn-rpc.ts
 * `controllerProducerIds`): committed here while this node's controller leads, else asked of the
 * known leader (NOT_CONTROLLER when there is none, or it no longer leads).
 */
function simControllerProducerIds(e: SimTxnEnv): (transactionalId: string, atLeastEpoch: number) => Promise<TxnIdentity> {
  return async (transactionalId, atLeastEpoch) => {
    const epochAtLeast = Math.min(atLeastEpoch, 0x8000);
    const req = { transactionalId, producerEpoch: 0, epochAtLeast };
    if (e.store.isLeader) return e.rm.initProducerId(req);
    const to = e.store.leader;
    if (!e.voters.includes(to)) throw rillError("NOT_CONTROLLER", "no known active controller");
    const target = e.nodes.get(to)!;
    try {
      return await e.net.call(
        e.id,
        to,
        target.current,
        () => {
          const r = target.running;
          if (!r?.store.isLeader) return Promise.reject(rillError("NOT_CONTROLLER", `node ${to} is not the active controller`));
          return r.rm.initProducerId({ ...req });
        },
        e.inc,
        SIM_TXN_CALL_TIMEOUT_MS,
      );
    } catch (err) {
      if (err instanceof RillError) throw err;
      throw rillError("NOT_CONTROLLER", `cannot reach controller ${to}: ${(err as Error).message}`);
    }
  };
}
