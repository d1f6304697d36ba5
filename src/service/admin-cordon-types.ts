/**
 * The domain types of cordoned brokers (issue 21): AlterBrokerCordons as every protocol's adapter
 * gives and takes it (src/service/admin-cordon.ts handles it).
 */
import type { RillError } from "../base/errors.ts";

/** AlterBrokerCordons: brokers to cordon (no new replicas go there) or uncordon. */
export interface AlterBrokerCordonsInput {
  readonly brokerIds: readonly number[];
  readonly cordoned: boolean;
}

/** The outcome for one broker: no error when it is now cordoned (or uncordoned) as asked. */
export interface BrokerCordonOutcome {
  readonly brokerId: number;
  readonly error?: RillError;
}

/** Answer of AlterBrokerCordons: one outcome per broker, in the request's order. */
export interface AlterBrokerCordonsResult {
  readonly results: readonly BrokerCordonOutcome[];
}

/** The cordon request, which changes metadata, with its input and result. */
export interface CordonChanges {
  alterBrokerCordons: { input: AlterBrokerCordonsInput; result: AlterBrokerCordonsResult };
}
