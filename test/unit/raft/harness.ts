/**
 * A synchronous test cluster of RaftNodes over MemoryStorage: Readies are handled at once
 * (persist, send, apply, advance), messages queue FIFO, and an `intercept` hook drops or
 * rewrites messages to stage exact scenarios.
 */
import { SeededRandom } from "../../../src/base/random.ts";
import { RaftNode } from "../../../src/raft/node.ts";
import type { RaftConfig } from "../../../src/raft/raft.ts";
import { MemoryStorage } from "../../../src/raft/storage.ts";
import type { Entry, Message, NodeId } from "../../../src/raft/types.ts";

/** Options for every node of a TestCluster. */
export interface ClusterOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTicks?: number;
  heartbeatTicks?: number;
  msgBytesMax?: number;
  seed?: number;
}

/** One member: its node, its disk and what it applied. */
export interface Member {
  raft: RaftNode;
  storage: MemoryStorage;
  applied: Entry[];
  config: RaftConfig;
}

/** Bytes of a string, for proposals. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** The string in an entry's data. */
export function text(e: Entry): string {
  return new TextDecoder().decode(e.data);
}

/** A cluster whose Readies are handled synchronously. */
export class TestCluster {
  readonly members = new Map<NodeId, Member>();
  readonly queue: Message[] = [];
  /** Every message sent, for assertions. */
  readonly sent: Message[] = [];
  /** Return null to drop a message, or a (possibly rewritten) message to deliver. */
  intercept: (m: Message) => Message | null = (m) => m;
  private readonly down = new Set<NodeId>();

  constructor(ids: readonly NodeId[], opts: ClusterOptions = {}, storages?: Map<NodeId, MemoryStorage>) {
    const random = new SeededRandom(opts.seed ?? 1);
    for (const id of ids) {
      const storage = storages?.get(id) ?? new MemoryStorage(ids);
      const config: RaftConfig = {
        id,
        storage,
        random: random.fork(),
        electionTicks: opts.electionTicks ?? 10,
        heartbeatTicks: opts.heartbeatTicks ?? 1,
        preVote: opts.preVote ?? true,
        checkQuorum: opts.checkQuorum ?? true,
        msgBytesMax: opts.msgBytesMax ?? 1 << 20,
      };
      this.members.set(id, { raft: new RaftNode(config), storage, applied: [], config });
    }
  }

  node(id: NodeId): RaftNode {
    return this.members.get(id)!.raft;
  }

  member(id: NodeId): Member {
    return this.members.get(id)!;
  }

  /** Handles every pending Ready: persist, queue messages, apply, advance. */
  flush(): void {
    for (let again = true; again; ) {
      again = false;
      for (const [id, m] of this.members) {
        if (this.down.has(id)) continue;
        const rd = m.raft.ready();
        if (rd === null) continue;
        again = true;
        if (rd.snapshot !== null) m.storage.applySnapshot(rd.snapshot);
        m.storage.append(rd.entries);
        if (rd.hardState !== null) m.storage.setHardState(rd.hardState);
        for (const msg of rd.messages) {
          this.sent.push(msg);
          this.queue.push(msg);
        }
        for (const e of rd.committedEntries) m.applied.push(e);
        m.raft.advance(rd);
      }
    }
  }

  /** Delivers messages (and handles Readies) until nothing is left to do. */
  deliverAll(maxMessages = 100_000): void {
    this.flush();
    let n = 0;
    while (this.queue.length > 0) {
      if (++n > maxMessages) throw new Error("deliverAll: no quiescence");
      const m = this.intercept(this.queue.shift()!);
      if (m !== null && !this.down.has(m.to) && !this.down.has(m.from)) this.node(m.to).step(m);
      this.flush();
    }
  }

  /** Ticks `ids` (default: all) `n` times, delivering after each tick. */
  tick(n: number, ids: readonly NodeId[] = [...this.members.keys()]): void {
    for (let k = 0; k < n; k++) {
      for (const id of ids) if (!this.down.has(id)) this.node(id).tick();
      this.deliverAll();
    }
  }

  /** Makes `id` campaign and runs the election to quiescence. */
  elect(id: NodeId): void {
    this.node(id).campaign();
    this.deliverAll();
  }

  /** Proposes at `id` and delivers; returns the result. */
  propose(id: NodeId, data: string): ReturnType<RaftNode["propose"]> {
    const r = this.node(id).propose(bytes(data));
    this.deliverAll();
    return r;
  }

  /** Cuts `id` off: it neither sends nor receives (its clock still runs if ticked). */
  isolate(id: NodeId): void {
    this.intercept = (m) => (m.from === id || m.to === id ? null : m);
  }

  /** Restores normal delivery. */
  heal(): void {
    this.intercept = (m) => m;
  }

  /** Stops (crashes) a node: no Ready handling, no delivery, no ticks until `start`. */
  stop(id: NodeId): void {
    this.down.add(id);
  }

  /** Restarts a stopped node from its storage, as after a crash (memory state is lost). */
  start(id: NodeId): void {
    this.down.delete(id);
    const m = this.member(id);
    const last = m.applied[m.applied.length - 1];
    const applied = Math.max(last?.index ?? 0, m.storage.firstIndex() - 1);
    m.config = { ...m.config, applied };
    m.raft = new RaftNode(m.config);
    this.queue.splice(0, this.queue.length, ...this.queue.filter((q) => q.to !== id));
  }

  /** The terms of a node's durable log from firstIndex on. */
  logTerms(id: NodeId): number[] {
    const s = this.member(id).storage;
    const out: number[] = [];
    for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i)!);
    return out;
  }

  /** The id of the node that currently believes it leads, if exactly one does. */
  leader(): NodeId | undefined {
    const ls = [...this.members.keys()].filter((id) => this.node(id).status().role === "leader");
    return ls.length === 1 ? ls[0] : undefined;
  }
}

/** A storage whose log holds entries with the given terms (index 1 on), at term `term`. */
export function storageWithTerms(voters: readonly NodeId[], terms: readonly number[], term: number): MemoryStorage {
  const s = new MemoryStorage(voters);
  s.append(terms.map((t, k) => ({ index: k + 1, term: t, kind: "data" as const, data: bytes(`e${k + 1}t${t}`) })));
  s.setHardState({ term, vote: 0, commit: 0 });
  return s;
}
