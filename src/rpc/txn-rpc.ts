/**
 * Transactions over gRPC (issue 17): the ports the transaction service needs to reach other
 * brokers, and the internal handlers that answer them.
 *
 * - `txnPeers`: a partition leader's way to the transaction coordinator (the produce gate,
 *   ReplicationService.TxnProduceGate) and the coordinator's way to partition leaders (markers,
 *   ReplicationService.WriteTxnMarkers). Both are internal calls, served only to authenticated
 *   cluster members (member-auth.ts), like ReplicaFetch.
 * - `controllerProducerIds`: the coordinator asks the active controller for its producer's id
 *   (InitProducerId with `epoch_at_least`, a forwarded call).
 * - `txnInternalHandlers`: the server side of the two internal calls.
 * - `TxnForwarding`: a client's transactional call that reached a broker which does not
 *   coordinate the id goes to the coordinator (marked forwarded, for the same caller).
 */
import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { RillError, rillError } from "../base/errors.ts";
import type { TxnMarkerSpec } from "../coordinator/transactions/txn-runtime.ts";
import type { TxnIdentity } from "../coordinator/transactions/txn-coordinator.ts";
import { InitProducerIdRequestSchema, type InitProducerIdResponse, ProduceService } from "../gen/rill/v1/produce_service_pb.ts";
import {
  ReplicationService,
  TxnProduceGateRequestSchema,
  type TxnProduceGateRequest,
  TxnProduceGateResponseSchema,
  type TxnProduceGateResponse,
  WriteTxnMarkersRequestSchema,
  type WriteTxnMarkersRequest,
  type WriteTxnMarkersResponse,
  WriteTxnMarkersResponseSchema,
} from "../gen/rill/v1/replication_service_pb.ts";
import { rillErrorFromDetail } from "../protocol/grpc-errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";
import type { Requester } from "../security/requester.ts";
import type { RemoteTxnCoordinator, TxnMarkerWriter, TxnProduceGate } from "../service/transactions.ts";
import { toErrorDetail, toServiceError } from "./errors.ts";
import { type ControllerRoute, Forwarder, LeaderClients, isForwarded } from "./forward.ts";
import type { InternalClients } from "./internal-clients.ts";

/** How long an internal transaction call may take. */
const TXN_CALL_TIMEOUT_MS = 30_000;

/** The inter-broker ports of the transaction service. */
export function txnPeers(rm: ReplicaManager, clients: InternalClients): RemoteTxnCoordinator & TxnMarkerWriter {
  const peers = new LeaderClients(ReplicationService, rm, clients);
  return {
    ensure: async (node, i) => {
      const req = create(TxnProduceGateRequestSchema, {
        transactionalId: i.transactionalId,
        producerId: BigInt(i.producerId),
        producerEpoch: i.producerEpoch,
        topic: i.topic,
        partition: i.partition,
        verifyOnly: i.mode === "verify",
      });
      await peers.call(node, "txnProduceGate", req, TXN_CALL_TIMEOUT_MS);
    },
    writeMarkers: async (node, markers) => {
      const req = create(WriteTxnMarkersRequestSchema, {
        markers: markers.map((m) => ({
          topic: m.topic,
          partition: m.partition,
          producerId: BigInt(m.marker.producerId),
          producerEpoch: m.marker.producerEpoch,
          commit: m.marker.commit,
          coordinatorEpoch: m.marker.coordinatorEpoch,
        })),
      });
      const res = await peers.call<WriteTxnMarkersResponse>(node, "writeTxnMarkers", req, TXN_CALL_TIMEOUT_MS);
      return markers.map((_, i) => {
        const d = res.results[i]?.error;
        return d ? rillErrorFromDetail(d) : null;
      });
    },
  };
}

/**
 * The active controller's producer id for a transactional id at an epoch of at least
 * `atLeastEpoch` (a fresh id past 32767): committed here when this node is the controller, else
 * asked of it (ProduceService.InitProducerId with `epoch_at_least`, forwarded).
 */
export function controllerProducerIds(
  rm: ReplicaManager,
  route: ControllerRoute,
  clients: InternalClients,
): (transactionalId: string, atLeastEpoch: number) => Promise<TxnIdentity> {
  const fwd = new Forwarder(ProduceService, route, clients);
  return async (transactionalId, atLeastEpoch) => {
    const epochAtLeast = Math.min(atLeastEpoch, 0x8000);
    if (route.isActive()) return rm.initProducerId({ transactionalId, producerEpoch: 0, epochAtLeast });
    const req = create(InitProducerIdRequestSchema, { transactionalId, producerEpoch: 0, epochAtLeast });
    const res = await fwd.forwardAs<InitProducerIdResponse>("initProducerId", req, undefined, Date.now() + TXN_CALL_TIMEOUT_MS);
    return { producerId: Number(res.producerId), producerEpoch: res.producerEpoch };
  };
}

/** What the internal handlers run on. */
export interface TxnInternalDeps {
  readonly gate: TxnProduceGate;
  /** Writes one marker into a partition this broker leads (txn-service.ts `localMarker`). */
  readonly writeLocalMarker: (tp: { topic: string; partition: number }, marker: TxnMarkerSpec) => Promise<void>;
}

/** ReplicationService.TxnProduceGate and WriteTxnMarkers (the deps getter may answer null: not served yet). */
export function txnInternalHandlers(deps: () => TxnInternalDeps | null): {
  txnProduceGate: grpc.handleUnaryCall<TxnProduceGateRequest, TxnProduceGateResponse>;
  writeTxnMarkers: grpc.handleUnaryCall<WriteTxnMarkersRequest, WriteTxnMarkersResponse>;
} {
  const need = (): TxnInternalDeps => {
    const d = deps();
    if (d === null) throw rillError("COORDINATOR_NOT_AVAILABLE", "transactions are not served by this broker yet");
    return d;
  };
  return {
    txnProduceGate: (call, cb) => {
      const r = call.request;
      Promise.resolve()
        .then(() =>
          need().gate.ensure({
            transactionalId: r.transactionalId,
            producerId: Number(r.producerId),
            producerEpoch: r.producerEpoch,
            topic: r.topic,
            partition: r.partition,
            mode: r.verifyOnly ? "verify" : "add",
          }),
        )
        .then(
          () => cb(null, create(TxnProduceGateResponseSchema, {})),
          (e: unknown) => cb(statusOf(e)),
        );
    },
    writeTxnMarkers: (call, cb) => {
      const d = (() => {
        try {
          return need();
        } catch (e) {
          cb(statusOf(e));
          return null;
        }
      })();
      if (d === null) return;
      Promise.all(
        call.request.markers.map((m) =>
          d
            .writeLocalMarker(
              { topic: m.topic, partition: m.partition },
              { producerId: Number(m.producerId), producerEpoch: m.producerEpoch, commit: m.commit, coordinatorEpoch: m.coordinatorEpoch },
            )
            .then(
              () => ({}),
              (e: unknown) => ({ error: toErrorDetail(e) }),
            ),
        ),
      ).then(
        (results) => cb(null, create(WriteTxnMarkersResponseSchema, { results })),
        (e: unknown) => cb(statusOf(e)),
      );
    },
  };
}

function statusOf(e: unknown): Partial<grpc.StatusObject> & Error {
  return toServiceError(e);
}

/**
 * Passes a client's transactional call to the coordinator of its transactional id (any broker
 * answers; a forwarded call is never forwarded again).
 */
export class TxnForwarding {
  private readonly produce: LeaderClients<typeof ProduceService>;

  constructor(rm: ReplicaManager, clients: InternalClients) {
    this.produce = new LeaderClients(ProduceService, rm, clients);
  }

  /** Whether `call` is run here: forwarded already, or this broker coordinates the id. */
  static runsHere(call: { metadata: grpc.Metadata }, local: boolean): boolean {
    return local || isForwarded(call);
  }

  /** Calls `method` of ProduceService on the coordinator `node` for `requester`. */
  call<Res>(node: number, method: "initProducerId" | "endTransaction", req: unknown, requester: Requester | undefined): Promise<Res> {
    return this.produce.call<Res>(node, method, req, TXN_CALL_TIMEOUT_MS, requester).catch((e: unknown) => {
      throw e instanceof RillError ? e : RillError.from(e);
    });
  }
}
