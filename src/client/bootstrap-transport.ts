/**
 * "Any broker": a Transport over the bootstrap addresses that fails over. Calls that any broker
 * answers — metadata (DescribeTopics, DescribeCluster), Admin calls (a broker forwards metadata
 * changes to the controller), InitProducerId — go through it.
 *
 * A call goes to the preferred address (the bootstrap address that last answered; at first the
 * first one). When it cannot reach that broker (a ConnectionError) it tries the next bootstrap
 * address at once, in list order, and the first one that answers becomes the preferred one.
 * When no bootstrap address answers, it tries the brokers learned from the cluster (`learn`, fed
 * by the metadata cache from DescribeCluster), as a last resort that never becomes preferred:
 * the application's addresses are the ones it chose (a proxy, a load balancer). Only when no
 * address can be reached does the call reject, with the last ConnectionError — the client's
 * retry policy (retry.ts) then decides whether to try again. A call that timed out rejects as it
 * is (its time is spent), but the next call starts at the next bootstrap address.
 *
 * Any other error (the broker answered) is the call's answer: no failover.
 */

import { Errors, RillError } from "../base/errors.ts";
import { ConnectionError } from "./errors.ts";
import type { TransportPool } from "./transport-pool.ts";
import type { CallOptions, ProduceStream, ProduceStreamListener, Transport, UnaryCall } from "./transport.ts";

/** A Transport that sends each call to the first reachable of several brokers. */
export class BootstrapTransport implements Transport {
  private readonly bootstrap: readonly string[];
  private learned: string[] = [];
  private preferred: string;

  /** @param pool where the transports of the addresses come from (closed by `close()`); @param addresses the bootstrap list, non-empty. */
  constructor(
    private readonly pool: TransportPool,
    addresses: readonly string[],
  ) {
    if (addresses.length === 0) throw new RangeError("bootstrap: no address");
    this.bootstrap = [...addresses];
    this.preferred = addresses[0]!;
  }

  /** The address the next call goes to first. */
  get address(): string {
    return this.preferred;
  }

  /** Addresses to try, in order: the preferred one, then the rest of the bootstrap list, then learned ones. */
  candidates(): string[] {
    return [...new Set([this.preferred, ...this.bootstrap, ...this.learned])];
  }

  /** Brokers of the cluster (from DescribeCluster), tried after the bootstrap addresses. */
  learn(addresses: readonly string[]): void {
    this.learned = addresses.filter((a) => !this.bootstrap.includes(a));
  }

  readonly createTopics: UnaryCall<"createTopics"> = (r, o) => this.call((t) => t.createTopics(r, o), o);
  readonly deleteTopics: UnaryCall<"deleteTopics"> = (r, o) => this.call((t) => t.deleteTopics(r, o), o);
  readonly listTopics: UnaryCall<"listTopics"> = (r, o) => this.call((t) => t.listTopics(r, o), o);
  readonly describeTopics: UnaryCall<"describeTopics"> = (r, o) => this.call((t) => t.describeTopics(r, o), o);
  readonly createPartitions: UnaryCall<"createPartitions"> = (r, o) => this.call((t) => t.createPartitions(r, o), o);
  readonly describeConfigs: UnaryCall<"describeConfigs"> = (r, o) => this.call((t) => t.describeConfigs(r, o), o);
  readonly alterConfigs: UnaryCall<"alterConfigs"> = (r, o) => this.call((t) => t.alterConfigs(r, o), o);
  readonly describeCluster: UnaryCall<"describeCluster"> = (r, o) => this.call((t) => t.describeCluster(r, o), o);
  // security (issue 13)
  readonly createAcls: UnaryCall<"createAcls"> = (r, o) => this.call((t) => t.createAcls(r, o), o);
  readonly describeAcls: UnaryCall<"describeAcls"> = (r, o) => this.call((t) => t.describeAcls(r, o), o);
  readonly deleteAcls: UnaryCall<"deleteAcls"> = (r, o) => this.call((t) => t.deleteAcls(r, o), o);
  readonly alterUserScramCredentials: UnaryCall<"alterUserScramCredentials"> = (r, o) =>
    this.call((t) => t.alterUserScramCredentials(r, o), o);
  readonly describeUserScramCredentials: UnaryCall<"describeUserScramCredentials"> = (r, o) =>
    this.call((t) => t.describeUserScramCredentials(r, o), o);
  // client quotas (issue 13)
  readonly alterClientQuotas: UnaryCall<"alterClientQuotas"> = (r, o) => this.call((t) => t.alterClientQuotas(r, o), o);
  readonly describeClientQuotas: UnaryCall<"describeClientQuotas"> = (r, o) => this.call((t) => t.describeClientQuotas(r, o), o);
  // delete records (issue 15)
  readonly deleteRecords: UnaryCall<"deleteRecords"> = (r, o) => this.call((t) => t.deleteRecords(r, o), o);
  // leader election (issue 18)
  readonly electLeaders: UnaryCall<"electLeaders"> = (r, o) => this.call((t) => t.electLeaders(r, o), o);
  readonly listTransactions: UnaryCall<"listTransactions"> = (r, o) => this.call((t) => t.listTransactions(r, o), o);
  readonly describeTransactions: UnaryCall<"describeTransactions"> = (r, o) => this.call((t) => t.describeTransactions(r, o), o);
  readonly abortTransaction: UnaryCall<"abortTransaction"> = (r, o) => this.call((t) => t.abortTransaction(r, o), o);
  // dynamic controller quorum (issue 21)
  readonly addRaftVoter: UnaryCall<"addRaftVoter"> = (r, o) => this.call((t) => t.addRaftVoter(r, o), o);
  readonly removeRaftVoter: UnaryCall<"removeRaftVoter"> = (r, o) => this.call((t) => t.removeRaftVoter(r, o), o);
  // partition reassignment (issue 21)
  readonly alterPartitionReassignments: UnaryCall<"alterPartitionReassignments"> = (r, o) =>
    this.call((t) => t.alterPartitionReassignments(r, o), o);
  readonly listPartitionReassignments: UnaryCall<"listPartitionReassignments"> = (r, o) =>
    this.call((t) => t.listPartitionReassignments(r, o), o);
  // cordoned brokers (issue 21)
  readonly alterBrokerCordons: UnaryCall<"alterBrokerCordons"> = (r, o) => this.call((t) => t.alterBrokerCordons(r, o), o);
  readonly fetch: UnaryCall<"fetch"> = (r, o) => this.call((t) => t.fetch(r, o), o);
  readonly listOffsets: UnaryCall<"listOffsets"> = (r, o) => this.call((t) => t.listOffsets(r, o), o);
  readonly initProducerId: UnaryCall<"initProducerId"> = (r, o) => this.call((t) => t.initProducerId(r, o), o);
  readonly endTransaction: UnaryCall<"endTransaction"> = (r, o) => this.call((t) => t.endTransaction(r, o), o);

  /** Opens a ProduceStream to the preferred broker (no failover: the stream's failure is the caller's). */
  openProduceStream(listener: ProduceStreamListener): ProduceStream {
    return this.pool.get(this.preferred).openProduceStream(listener);
  }

  /** Closes every connection of the pool. */
  close(): void {
    this.pool.close();
  }

  private async call<T>(attempt: (t: Transport) => Promise<T>, options: CallOptions | undefined): Promise<T> {
    let last: unknown = null;
    for (const address of this.candidates()) {
      try {
        const res = await attempt(this.pool.get(address));
        if (this.bootstrap.includes(address)) this.preferred = address;
        return res;
      } catch (e) {
        if (options?.signal?.aborted) throw e;
        if (e instanceof ConnectionError) {
          last = e;
          continue;
        }
        if (e instanceof RillError && e.kind === Errors.REQUEST_TIMED_OUT) this.skip(address);
        throw e;
      }
    }
    throw last;
  }

  /** Makes the bootstrap address after `address` the preferred one. */
  private skip(address: string): void {
    const i = this.bootstrap.indexOf(address);
    if (i >= 0) this.preferred = this.bootstrap[(i + 1) % this.bootstrap.length]!;
  }
}
