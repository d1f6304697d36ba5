/**
 * One-way cuts between the clients and a node (settings.clientCuts): for a while the clients
 * reach node N but do not hear it — their requests arrive and are handled, the answers are lost —
 * or hear it but do not reach it (their requests are lost). Every client is on one host
 * (`CLIENT_ID`), so a cut holds for all of them at once. One cut at a time, during the faults
 * only; the network's heal (a fault of the node schedule, or the end of the faults) ends it too.
 *
 * What it exercises: a client whose answer was lost times out and retries. An idempotent
 * producer retries the same batch with the same sequence, possibly at the same leader that
 * wrote it: the retry must be answered as a duplicate, not written again (idempotent-duplicate).
 * An acks=all write whose answer was lost is not acknowledged (no check holds the log to it),
 * but may be in the log; the next write of a producer without idempotence is a new value, so
 * each of its values is still written at most once per request handled (write-copies).
 */
import type { SeededRandom } from "../../../src/base/random.ts";
import { CLIENT_ID, type SimNet, type World } from "./world.ts";

/** What the client cut schedule needs from the run. */
export interface ClientCutEnv {
  readonly world: World;
  readonly net: SimNet;
  /** The schedule's own randomness (forked from the run's only when the cuts are on). */
  readonly random: SeededRandom;
  readonly ids: readonly number[];
  readonly faultMs: number;
  readonly trace: (line: string) => void;
  /** Told of each cut made. */
  readonly onCut: () => void;
}

/** Cuts a client link now and then until `faultMs`: 0.3-4 s each, one at a time, 0.5-3 s apart. */
export function scheduleClientCuts(env: ClientCutEnv): void {
  const { world, net, random, ids } = env;
  const step = (): void => {
    if (world.now >= env.faultMs) return;
    const node = ids[random.int(ids.length)]!;
    const answers = random.int(2) === 0;
    const [from, to] = answers ? [node, CLIENT_ID] : [CLIENT_ID, node];
    const forMs = 300 + random.int(3700);
    env.onCut();
    env.trace(
      `fault: client cut: ${answers ? `node ${node}'s answers to clients are lost` : `clients' requests to node ${node} are lost`} for ${forMs} ms`,
    );
    net.cutLink(from, to);
    world.schedule(
      forMs,
      () => {
        net.restoreLink(from, to);
        env.trace(`fault: client cut of node ${node} ends`);
        world.schedule(500 + random.int(2500), step, null);
      },
      null,
    );
  };
  world.schedule(1000 + random.int(2000), step, null);
}
