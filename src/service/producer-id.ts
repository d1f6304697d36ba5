/**
 * InitProducerId: issues an idempotent producer id, or bumps the epoch of one a producer already
 * holds, durably in the metadata log. Only the active controller commits it; forwarding the
 * request there is the adapter's business (it checks the request first, so a bad request is
 * refused where it arrives).
 */
import { rillError } from "../base/errors.ts";
import type { ReplicaManager } from "../replication/replica-manager.ts";

/** Largest producer epoch (Kafka's int16 epochs). */
export const PRODUCER_EPOCH_MAX = 0x7fff;

/** What a producer asks for. */
export interface InitProducerIdInput {
  readonly transactionalId: string;
  /** The id the producer holds (its epoch is bumped); undefined: issue a new one. */
  readonly producerId: bigint | undefined;
  readonly producerEpoch: number;
}

/** The producer id and epoch to write with. */
export interface ProducerIdentity {
  readonly producerId: number;
  readonly producerEpoch: number;
}

/** Throws INVALID_REQUEST for an epoch outside [0, PRODUCER_EPOCH_MAX]. */
export function checkInitProducerId(input: InitProducerIdInput): void {
  if (input.producerEpoch < 0 || input.producerEpoch > PRODUCER_EPOCH_MAX)
    throw rillError("INVALID_REQUEST", `producer_epoch: ${input.producerEpoch} is not in [0, ${PRODUCER_EPOCH_MAX}]`);
}

/** Checks the request and commits the new id or epoch (on the active controller). */
export async function initProducerId(rm: ReplicaManager, input: InitProducerIdInput): Promise<ProducerIdentity> {
  checkInitProducerId(input);
  return rm.initProducerId({
    transactionalId: input.transactionalId,
    producerId: input.producerId === undefined ? undefined : Number(input.producerId),
    producerEpoch: input.producerEpoch,
  });
}
