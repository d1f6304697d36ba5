/**
 * The service objects the Kafka data APIs share per listener, built once from `KafkaDeps` (the
 * same dependencies the gRPC services are built from): the admin handlers with a way to the
 * active controller for a Kafka request (Metadata's auto-creation), Kafka's ProduceHandler and
 * InitProducerId's way to the controller.
 *
 * Kafka's produce never forwards: a partition led elsewhere is answered NOT_LEADER_OR_FOLLOWER
 * and the client re-reads Metadata, so this handler has no `LeaderForwarder` and every request
 * is handed to it as one this node appends itself (`produce(input, true)`).
 */
import type { Requester } from "../security/requester.ts";
import { adminHandlers, requesterControllerPorts } from "../rpc/admin-service.ts";
import { initProducerIdFor } from "../rpc/produce-service.ts";
import type { AdminHandlers } from "../service/admin.ts";
import type { ControllerPort } from "../service/admin-ports.ts";
import { PRODUCE_CHECKS_DEFAULT, PRODUCER_METADATA_WAIT_MS_DEFAULT, ProduceHandler } from "../service/produce.ts";
import type { KafkaDeps } from "./deps.ts";

/** What the data APIs of one listener share. */
export interface KafkaDataServices {
  readonly admin: AdminHandlers;
  /** The way to the active controller for one request of `requester`, bounded by `timeoutMs`. */
  readonly controller: (requester: Requester, timeoutMs: number) => ControllerPort;
  readonly produce: ProduceHandler;
  /** InitProducerId, committed here on the active controller or passed there. */
  readonly initProducerId: ReturnType<typeof initProducerIdFor>;
}

const built = new WeakMap<KafkaDeps, KafkaDataServices>();

/** The services of the listener `deps` belongs to (built on first use). */
export function dataServices(deps: KafkaDeps): KafkaDataServices {
  let s = built.get(deps);
  if (s === undefined) {
    const d = deps.services;
    s = {
      admin: adminHandlers({ ...d.admin, ...(deps.clients ? { clients: deps.clients } : {}) }),
      controller: requesterControllerPorts(d.admin.route, deps.clients),
      produce: new ProduceHandler(
        d.replicas,
        null,
        d.produceChecks ?? PRODUCE_CHECKS_DEFAULT,
        d.producerIdMetadataWaitMs ?? PRODUCER_METADATA_WAIT_MS_DEFAULT,
        // Transactions (issue 17): a transactional batch waits for the coordinator's gate.
        d.transactions?.service ?? null,
      ),
      initProducerId: initProducerIdFor(d.replicas, d.route, deps.clients),
    };
    built.set(deps, s);
  }
  return s;
}
