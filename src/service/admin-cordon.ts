/**
 * Cordoned brokers (issue 21, as Kafka's KIP-1066) for every protocol: AlterBrokerCordons runs on
 * the active controller (passed there like every metadata change, see admin.ts) and decides with
 * `decideAlterBrokerCordons` (src/metadata/cordon.ts). Each broker succeeds or fails on its own,
 * its failure a RillError in its result; a refused broker changes nothing. A malformed request as
 * a whole (no brokers, too many) throws. DescribeCluster names the cordoned brokers (admin.ts).
 */
import { rillError } from "../base/errors.ts";
import { decideAlterBrokerCordons } from "../metadata/cordon.ts";
import type { RillError } from "../base/errors.ts";
import type { MetadataStore } from "../metadata/store.ts";
import type { AlterBrokerCordonsInput, AlterBrokerCordonsResult } from "./admin-cordon-types.ts";
import type { ControllerPort } from "./admin-ports.ts";

/** Most brokers one request may name. */
export const CORDON_REQUEST_BROKERS_MAX = 10_000;

/** The protocol-neutral cordon request. */
export class CordonHandlers {
  constructor(private readonly d: { readonly store: MetadataStore }) {}

  /** AlterBrokerCordons: each broker is cordoned (or uncordoned), or refused, on its own. */
  async alterBrokerCordons(input: AlterBrokerCordonsInput, controller: ControllerPort): Promise<AlterBrokerCordonsResult> {
    if (!controller.isActive() && !controller.forwarded) return controller.forward("alterBrokerCordons", input);
    const n = input.brokerIds.length;
    if (n === 0) throw rillError("INVALID_REQUEST", "broker_ids: at least one is required");
    if (n > CORDON_REQUEST_BROKERS_MAX) throw rillError("INVALID_REQUEST", `broker_ids: ${n} items, at most ${CORDON_REQUEST_BROKERS_MAX}`);
    let errors: readonly (RillError | null)[] = [];
    await this.d.store.commit((img) => {
      const decision = decideAlterBrokerCordons(img, input.brokerIds, input.cordoned);
      errors = decision.errors;
      return decision.records;
    });
    controller.committedHere();
    return { results: input.brokerIds.map((brokerId, i) => ({ brokerId, ...(errors[i] ? { error: errors[i] } : {}) })) };
  }
}
