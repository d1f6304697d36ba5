/**
 * Transactions (issue 17) wired into the broker: the `TxnRuntime` (coordinator shards on
 * `__transaction_state`) over the replica manager, with its ports to the controller and to other
 * brokers over the internal gRPC clients, the `TxnService` the adapters call, and the timers
 * that keep the shards in step with leadership and abort timed-out transactions.
 */
import { systemTimers } from "../base/timers.ts";
import { TxnRuntime } from "../coordinator/transactions/txn-runtime.ts";
import type { GroupRuntime } from "../coordinator/group-runtime.ts";
import type { MetadataChange } from "../metadata/store.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { ControllerRoute } from "../rpc/forward.ts";
import type { InternalClients } from "../rpc/internal-clients.ts";
import { controllerProducerIds, type TxnInternalDeps, txnPeers } from "../rpc/txn-rpc.ts";
import { localMarker, TxnService, txnMarkerRouter } from "../service/txn-service.ts";
import type { Clock } from "../base/clock.ts";
import type { BrokerConfig } from "../config/schema.ts";
import type { BrokerLog } from "./log.ts";

/** How often the shards follow leadership (also while no metadata change says so, e.g. after a restart's hold). */
const SYNC_INTERVAL_MS = 200;

/** The broker's transactions. */
export interface Transactions {
  readonly runtime: TxnRuntime;
  readonly service: TxnService;
  readonly internal: TxnInternalDeps;
}

/** Starts the transaction coordinator of this broker; stops with the replica manager. */
export function startTransactions(
  { config, clock, log }: { readonly config: BrokerConfig; readonly clock: Clock; readonly log: BrokerLog },
  rm: ReplicaManager,
  groups: GroupRuntime,
  onMetadataChange: (fn: (c: MetadataChange) => void) => unknown,
  route: ControllerRoute,
  clients: InternalClients,
): Transactions {
  const peers = txnPeers(rm, clients);
  const issue = controllerProducerIds(rm, route, clients);
  const offsetsMarker = groupsOffsetsMarker(groups);
  const runtime = new TxnRuntime(
    rm,
    clock,
    systemTimers,
    config.nodeId,
    { issueProducerId: issue, writeMarker: txnMarkerRouter(rm, config.nodeId, peers, offsetsMarker) },
    {
      maxTimeoutMs: config.transactionMaxTimeoutMs,
      expirationMs: config.transactionalIdExpirationMs,
      onEvent: (e) => {
        if (e.kind === "marker-retry")
          log.warn({ transactionalId: e.transactionalId, tp: e.tp, err: e.error }, "transaction marker retried");
        else if (e.kind === "timed-out") log.info({ transactionalId: e.transactionalId }, "transaction timed out: aborting");
      },
    },
  );
  const service = new TxnService({
    runtime,
    rm,
    remote: peers,
    groups,
    requestTopic: (id) => issue(id, 0),
    sleep: (ms) => new Promise((r) => systemTimers.setTimeout(r, ms)),
  });
  onMetadataChange(() => runtime.syncShards());
  runtime.syncShards();
  let lastTick = 0;
  const timer = setInterval(() => {
    runtime.syncShards();
    const now = clock.nowMs();
    if (now - lastTick < config.transactionAbortTimedOutTransactionCleanupIntervalMs) return;
    lastTick = now;
    try {
      runtime.tick();
    } catch (e) {
      log.error({ err: e }, "transaction coordinator tick failed");
    }
  }, SYNC_INTERVAL_MS);
  timer.unref?.();
  rm.onClose(() => {
    clearInterval(timer);
    runtime.close();
  });
  return {
    runtime,
    service,
    internal: { gate: service.hereGate, writeLocalMarker: (tp, marker) => localMarker(rm, offsetsMarker, tp, marker) },
  };
}

/** A marker for a `__consumer_offsets` partition: the group coordinator commits or drops the producer's pending offsets. */
function groupsOffsetsMarker(groups: GroupRuntime): (partition: number, marker: { producerId: number; commit: boolean }) => Promise<void> {
  return (partition, marker) => groups.completeTxnOffsets(partition, marker.producerId, marker.commit);
}
