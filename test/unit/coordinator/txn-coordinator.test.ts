/**
 * The pure transaction coordinator (src/coordinator/transactions): handlers return records and
 * change nothing; `replay` is the only writer; a coordinator rebuilt by replaying the records
 * (a failover) — or only the latest record per key (what compaction keeps) — has the same state.
 */
import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import { TXN_EPOCH_MAX, TxnCoordinator, type TxnResult } from "../../../src/coordinator/transactions/txn-coordinator.ts";
import { type TxnRecord, txnFromKeyValue, txnToKeyValue } from "../../../src/coordinator/transactions/txn-records.ts";

const OPTS = { maxTimeoutMs: 60_000, expirationMs: 1_000_000 };

/** A coordinator and the log of every record it wrote (replayed through the compacted-topic codec). */
class Harness {
  readonly c = new TxnCoordinator(OPTS);
  readonly log: TxnRecord[] = [];
  now = 1_000;
  /** Issued ids: a controller that binds ids to transactional ids. */
  private nextId = 100;
  private readonly issued = new Map<string, { producerId: number; producerEpoch: number }>();

  apply<T>(r: TxnResult<T>): T {
    for (const rec of r.records) {
      const kv = txnToKeyValue(rec);
      const back = txnFromKeyValue(kv.key, kv.value);
      this.log.push(back);
      this.c.replay(back);
    }
    return r.response;
  }

  controller(id: string, atLeast: number): { producerId: number; producerEpoch: number } {
    const cur = this.issued.get(id);
    const epoch = cur === undefined ? TXN_EPOCH_MAX + 1 : Math.max(cur.producerEpoch + 1, atLeast);
    const next =
      epoch > TXN_EPOCH_MAX ? { producerId: this.nextId++, producerEpoch: 0 } : { producerId: cur!.producerId, producerEpoch: epoch };
    this.issued.set(id, next);
    return next;
  }

  init(id: string, timeoutMs = 10_000, producerId = -1, producerEpoch = -1): { producerId: number; producerEpoch: number } {
    const req = { transactionalId: id, transactionTimeoutMs: timeoutMs, producerId, producerEpoch };
    for (;;) {
      const plan = this.c.beginInit(req, this.now);
      if (plan.kind === "fence") {
        const completion = this.apply(plan.result);
        expect(completion.commit).toBe(false);
        this.apply(this.c.complete(id, this.now));
        continue;
      }
      return this.apply(this.c.completeInit(req, this.controller(id, plan.atLeastEpoch), this.now));
    }
  }

  end(id: string, p: { producerId: number; producerEpoch: number }, commit: boolean) {
    const req = { transactionalId: id, ...p, commit, bumpEpoch: true };
    const plan = this.c.planEnd(req);
    const fresh = plan.kind === "end" && plan.freshId ? this.controller(id, TXN_EPOCH_MAX + 1) : null;
    const res = this.apply(this.c.endTxn(req, fresh, this.now));
    if (res.completion) this.apply(this.c.complete(id, this.now));
    return res;
  }

  rebuilt(compacted: boolean): TxnCoordinator {
    const c = new TxnCoordinator(OPTS);
    const records = compacted ? [...new Map(this.log.map((r) => [r.transactionalId, r])).values()] : this.log;
    for (const r of records) c.replay(r);
    return c;
  }
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof RillError) return e.kind.name;
    throw e;
  }
  throw new Error("expected a RillError");
}

const gate = (
  id: string,
  p: { producerId: number; producerEpoch: number },
  topic: string,
  partition: number,
  mode: "add" | "verify" = "add",
) => ({
  transactionalId: id,
  ...p,
  topic,
  partition,
  mode,
});

describe("TxnCoordinator", () => {
  it("runs Empty → Ongoing → PrepareCommit → CompleteCommit; handlers change nothing until replayed", () => {
    const h = new Harness();
    const p = h.init("t");
    expect(h.c.get("t")!.state).toBe("Empty");
    const res = h.c.gate(gate("t", p, "a", 0), h.now);
    expect(h.c.get("t")!.state).toBe("Empty"); // not replayed yet
    h.apply(res);
    h.apply(h.c.gate(gate("t", p, "b", 1), h.now));
    expect(h.c.gate(gate("t", p, "a", 0), h.now).records).toEqual([]); // already in
    expect(h.c.get("t")!.partitions).toEqual([
      { topic: "a", partition: 0 },
      { topic: "b", partition: 1 },
    ]);
    const end = h.apply(h.c.endTxn({ transactionalId: "t", ...p, commit: true, bumpEpoch: true }, null, h.now));
    expect(end.completion).toEqual({
      transactionalId: "t",
      producerId: p.producerId,
      producerEpoch: p.producerEpoch + 1,
      commit: true,
      partitions: h.c.get("t")!.partitions,
    });
    expect(h.c.get("t")!.state).toBe("PrepareCommit");
    expect(h.c.pendingCompletions()).toHaveLength(1);
    // while the markers are written: the next produce waits (retriable)
    expect(code(() => h.c.gate(gate("t", end.identity, "a", 0), h.now))).toBe("CONCURRENT_TRANSACTIONS");
    h.apply(h.c.complete("t", h.now));
    expect(h.c.get("t")!.state).toBe("CompleteCommit");
    expect(h.c.get("t")!.producerEpoch).toBe(p.producerEpoch + 1);
    expect(h.c.pendingCompletions()).toHaveLength(0);
  });

  it("fences: an older epoch is PRODUCER_FENCED, a newer one INVALID_PRODUCER_EPOCH, another id INVALID_PRODUCER_ID_MAPPING", () => {
    const h = new Harness();
    const a = h.init("t");
    h.apply(h.c.gate(gate("t", a, "a", 0), h.now));
    const b = h.init("t"); // aborts a's open transaction at a bumped epoch, then a newer epoch
    expect(b.producerId).toBe(a.producerId);
    expect(b.producerEpoch).toBeGreaterThan(a.producerEpoch + 1);
    const aborted = h.log.find((r) => r.type === "txn" && r.state === "PrepareAbort");
    expect(aborted).toBeDefined();
    expect(code(() => h.c.gate(gate("t", a, "a", 0), h.now))).toBe("PRODUCER_FENCED");
    expect(code(() => h.c.planEnd({ transactionalId: "t", ...a, commit: true, bumpEpoch: true }))).toBe("PRODUCER_FENCED");
    expect(code(() => h.c.gate(gate("t", { ...b, producerEpoch: b.producerEpoch + 1 }, "a", 0), h.now))).toBe("INVALID_PRODUCER_EPOCH");
    expect(code(() => h.c.gate(gate("t", { ...b, producerId: 999 }, "a", 0), h.now))).toBe("INVALID_PRODUCER_ID_MAPPING");
    expect(code(() => h.c.gate(gate("nobody", b, "a", 0), h.now))).toBe("INVALID_PRODUCER_ID_MAPPING");
    expect(code(() => h.c.planEnd({ transactionalId: "nobody", ...b, commit: true, bumpEpoch: true }))).toBe("TRANSACTIONAL_ID_NOT_FOUND");
  });

  it("InitProducerId naming an id: a new transactional id takes it (Kafka, KIP-360: @platformatic/kafka names 0/0); a known id fences a stranger", () => {
    const h = new Harness();
    // A new id: whatever the instance names, it gets a fresh id at epoch 0 (Kafka answers the same).
    const fresh = h.init("named", 10_000, 0, 0);
    expect(fresh.producerEpoch).toBe(0);
    expect(h.c.get("named")).toMatchObject({ state: "Empty", producerId: fresh.producerId, producerEpoch: 0 });
    // Its own id and epoch: bumped (KIP-360).
    const again = h.init("named", 10_000, fresh.producerId, fresh.producerEpoch);
    expect(again).toEqual({ producerId: fresh.producerId, producerEpoch: 1 });
    // Once the id is known, a stranger's id (or an old epoch) is fenced and changes nothing.
    const before = h.c.get("named");
    const req = (producerId: number, producerEpoch: number) => ({
      transactionalId: "named",
      transactionTimeoutMs: 10_000,
      producerId,
      producerEpoch,
    });
    expect(code(() => h.c.beginInit(req(fresh.producerId + 1000, 0), h.now))).toBe("PRODUCER_FENCED");
    expect(code(() => h.c.beginInit(req(fresh.producerId, 0), h.now))).toBe("PRODUCER_FENCED");
    expect(h.c.get("named")).toEqual(before);
  });

  it("TV1: verify refuses a partition not added (INVALID_TXN_STATE); AddPartitions adds; no epoch bump at the end", () => {
    const h = new Harness();
    const p = h.init("t1");
    expect(code(() => h.c.gate(gate("t1", p, "a", 0, "verify"), h.now))).toBe("INVALID_TXN_STATE");
    h.apply(h.c.addPartitions({ transactionalId: "t1", ...p, partitions: [{ topic: "a", partition: 0 }], verifyOnly: false }, h.now));
    expect(h.c.gate(gate("t1", p, "a", 0, "verify"), h.now).records).toEqual([]);
    const v = h.c.addPartitions(
      {
        transactionalId: "t1",
        ...p,
        partitions: [
          { topic: "a", partition: 0 },
          { topic: "b", partition: 0 },
        ],
        verifyOnly: true,
      },
      h.now,
    );
    expect(v.records).toEqual([]);
    expect(v.response.map((e) => (e === null ? null : (e as RillError).kind.name))).toEqual([null, "INVALID_TXN_STATE"]);
    const res = h.apply(h.c.endTxn({ transactionalId: "t1", ...p, commit: false, bumpEpoch: false }, null, h.now));
    expect(res.identity).toEqual(p);
    h.apply(h.c.complete("t1", h.now));
    // TV1: an end without an open transaction is INVALID_TXN_STATE (not a retry of a commit)
    expect(code(() => h.c.planEnd({ transactionalId: "t1", ...p, commit: true, bumpEpoch: false }))).toBe("INVALID_TXN_STATE");
    // ... and a retry of the abort just made is answered again
    expect(h.c.planEnd({ transactionalId: "t1", ...p, commit: false, bumpEpoch: false }).kind).toBe("done");
  });

  it("hands out a new producer id when the bumped epoch reaches the int16 limit; the old id is fenced", () => {
    const h = new Harness();
    let p = h.init("ov");
    let ends = 0;
    const first = p.producerId;
    // fast-forward through the state: as if 32,760 transactions had ended
    h.apply({
      records: [{ ...h.c.get("ov")!, producerEpoch: 32_760, lastProducerEpoch: 32_759, state: "CompleteCommit" }],
      response: undefined,
    });
    p = { producerId: first, producerEpoch: 32_760 };
    while (p.producerId === first) {
      h.apply(h.c.gate(gate("ov", p, "a", 0), h.now));
      p = h.end("ov", p, true).identity;
      ends++;
    }
    expect(ends).toBe(TXN_EPOCH_MAX - 32_760);
    expect(p.producerEpoch).toBe(0);
    const marker = h.log.filter((r) => r.type === "txn" && r.state === "PrepareCommit").at(-1)!;
    expect(marker.type === "txn" && marker.producerEpoch).toBe(TXN_EPOCH_MAX); // the last markers at the old id's max epoch
    expect(code(() => h.c.gate(gate("ov", { producerId: first, producerEpoch: 100 }, "a", 0), h.now))).toBe("PRODUCER_FENCED");
    h.apply(h.c.gate(gate("ov", p, "a", 0), h.now));
    expect(h.c.get("ov")!.state).toBe("Ongoing");
  });

  it("times out open transactions, forgets idle ids, and checks the timeout against transaction.max.timeout.ms", () => {
    const h = new Harness();
    const p = h.init("slow", 500);
    h.apply(h.c.gate(gate("slow", p, "a", 0), h.now));
    expect(h.c.timedOut(h.now + 500)).toEqual([]);
    expect(h.c.timedOut(h.now + 501)).toEqual(["slow"]);
    const abort = h.apply(h.c.abortOpen("slow", h.now + 501)!);
    expect(abort).toMatchObject({ commit: false, producerEpoch: p.producerEpoch + 1 });
    h.apply(h.c.complete("slow", h.now));
    expect(code(() => h.c.gate(gate("slow", p, "a", 0), h.now))).toBe("PRODUCER_FENCED");
    expect(h.c.expire(h.now + OPTS.expirationMs - 1)).toEqual([]);
    h.apply({ records: h.c.expire(h.now + OPTS.expirationMs), response: undefined });
    expect(h.c.get("slow")).toBeUndefined();
    expect(
      code(() =>
        h.c.beginInit({ transactionalId: "x", transactionTimeoutMs: OPTS.maxTimeoutMs + 1, producerId: -1, producerEpoch: -1 }, 0),
      ),
    ).toBe("INVALID_TRANSACTION_TIMEOUT");
    expect(code(() => h.c.beginInit({ transactionalId: "", transactionTimeoutMs: 1000, producerId: -1, producerEpoch: -1 }, 0))).toBe(
      "INVALID_REQUEST",
    );
  });

  it("replay: a coordinator rebuilt from the log, or from the latest record per key, has the same state (failover)", () => {
    const h = new Harness();
    const seed = Number(process.env["SEED"] ?? 17);
    console.log(`txn replay seed ${seed}`);
    let rnd = seed;
    const next = (n: number): number => {
      rnd = (rnd * 1103515245 + 12345) % 2 ** 31;
      return rnd % n;
    };
    const ids = ["r0", "r1", "r2"];
    const prod = new Map(ids.map((id) => [id, h.init(id, 1000)]));
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const id = ids[next(ids.length)]!;
      const p = prod.get(id)!;
      h.now += next(300);
      try {
        switch (next(5)) {
          case 0:
          case 1:
            h.apply(h.c.gate(gate(id, p, `t${next(3)}`, next(2)), h.now));
            seen.add("gate");
            break;
          case 2:
            prod.set(id, h.end(id, p, next(2) === 0).identity);
            seen.add("end");
            break;
          case 3:
            prod.set(id, h.init(id, 1000));
            seen.add("init");
            break;
          case 4:
            for (const t of h.c.timedOut(h.now)) {
              h.apply(h.c.abortOpen(t, h.now)!);
              h.apply(h.c.complete(t, h.now));
              seen.add("timeout");
            }
        }
      } catch (e) {
        if (!(e instanceof RillError)) throw e;
        seen.add(e.kind.name);
      }
    }
    const state = (c: TxnCoordinator) => JSON.stringify([...c.all()].sort((a, b) => a.transactionalId.localeCompare(b.transactionalId)));
    expect(state(h.rebuilt(false))).toBe(state(h.c));
    expect(state(h.rebuilt(true))).toBe(state(h.c));
    // the run reached every path it exercises
    for (const path of ["gate", "end", "init", "timeout", "PRODUCER_FENCED"]) expect(seen, path).toContain(path);
  });
});
