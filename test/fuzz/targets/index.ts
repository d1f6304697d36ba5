/** Every fuzz target, by name, in the order `npm run fuzz` runs them. */
import type { AnyTarget } from "../lib/harness.ts";
import { batchTarget } from "./batch.ts";
import { consumeTarget } from "./consume.ts";
import { produceTarget } from "./produce.ts";
import { raftTarget } from "./raft.ts";
import { wireTarget } from "./wire.ts";

/** The targets: batch, produce, wire, raft, consume. */
export const TARGETS: readonly AnyTarget[] = [batchTarget, produceTarget, wireTarget, raftTarget, consumeTarget];

/** The target called `name`, or undefined. */
export function targetNamed(name: string): AnyTarget | undefined {
  return TARGETS.find((t) => t.name === name);
}
