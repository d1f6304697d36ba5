/**
 * Admin's metadata changes over several items when the controller moves mid-request: the items
 * answered NOT_CONTROLLER (not taken) are sent again on their own, the others keep their first
 * answer and are never sent twice (a second CreateTopics of a created topic would answer
 * TOPIC_ALREADY_EXISTS). CI failure of stop 31: new-leader-hw.test.ts's createTopics met an
 * election right after the cluster was stable and rejected with NOT_CONTROLLER.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Errors } from "../../../src/base/errors.ts";
import { Admin } from "../../../src/client/admin.ts";
import type { Transport } from "../../../src/client/transport.ts";
import { detail, FakeTransport } from "./fake-transport.ts";

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A fake broker whose first `moved` CreateTopics/DeleteTopics answer `notTaken`'s topics NOT_CONTROLLER, taking nothing of them. */
function movingController(notTaken: readonly string[], moved: number) {
  const t = new FakeTransport();
  const sent: string[][] = [];
  const m = t as unknown as { createTopics: Transport["createTopics"]; deleteTopics: Transport["deleteTopics"] };
  const wrap = <K extends "createTopics" | "deleteTopics">(method: K, names: (req: Parameters<Transport[K]>[0]) => string[]) => {
    const original = t[method].bind(t) as (req: Parameters<Transport[K]>[0], o: unknown) => ReturnType<Transport[K]>;
    const wrapped = async (req: Parameters<Transport[K]>[0], o: unknown) => {
      const all = names(req);
      sent.push(all);
      if (sent.length > moved) return original(req, o);
      const taken = all.filter((n) => !notTaken.includes(n));
      const res = await original(
        (method === "createTopics"
          ? { ...req, topics: (req as Parameters<Transport["createTopics"]>[0]).topics?.filter((x) => taken.includes(x.name ?? "")) }
          : { ...req, topics: taken }) as Parameters<Transport[K]>[0],
        o,
      );
      // Put the refused items back in their places, answered NOT_CONTROLLER.
      const answers = [...res.topics];
      const out = all.map((name) =>
        taken.includes(name)
          ? answers.shift()!
          : { name, error: detail(Errors.NOT_CONTROLLER, "node 1 is not the active controller (no controller is elected yet)") },
      );
      return { ...res, topics: out } as Awaited<ReturnType<Transport[K]>>;
    };
    (m as Record<string, unknown>)[method] = wrapped;
  };
  wrap("createTopics", (req) => (req.topics ?? []).map((x) => x.name ?? ""));
  wrap("deleteTopics", (req) => [...(req.topics ?? [])]);
  const admin = new Admin({
    bootstrap: t.address,
    transportFactory: () => t,
    retry: { retries: 2, initialBackoffMs: 0, backoffMsMax: 0 },
  });
  closers.push(() => admin.close());
  return { t, sent, admin };
}

describe("Admin resends the items the controller did not take", () => {
  it("createTopics: only the topics answered NOT_CONTROLLER go again, and every topic is created once", async () => {
    const { t, sent, admin } = movingController(["b"], 1);
    const created = await admin.createTopics([
      { name: "a", partitions: 1 },
      { name: "b", partitions: 2 },
      { name: "c", partitions: 3 },
    ]);
    expect(sent).toEqual([["a", "b", "c"], ["b"]]);
    expect(created.map((c) => [c.name, c.partitions])).toEqual([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]);
    expect([...t.topics.keys()].sort()).toEqual(["a", "b", "c"]);
  });

  it("createTopics: NOT_CONTROLLER after the last retry rejects naming the topic; the others were sent once", async () => {
    const { t, sent, admin } = movingController(["b"], 10);
    const err = await admin.createTopics([{ name: "a" }, { name: "b" }]).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: { name: "NOT_CONTROLLER" } });
    expect(String((err as Error).message)).toContain('topic "b"');
    expect(sent).toEqual([["a", "b"], ["b"], ["b"]]); // the first attempt and two retries
    expect([...t.topics.keys()]).toEqual(["a"]);
  });

  it("createTopics: an item refused for another reason is answered at once, never resent", async () => {
    const { t, sent, admin } = movingController([], 0);
    t.createTopic("a", 1);
    await expect(admin.createTopics([{ name: "a" }, { name: "b" }])).rejects.toMatchObject({ kind: { name: "TOPIC_ALREADY_EXISTS" } });
    expect(sent).toEqual([["a", "b"]]);
    expect(t.topics.has("b")).toBe(true);
  });

  it("deleteTopics: the topics answered NOT_CONTROLLER are deleted on the retry", async () => {
    const { t, sent, admin } = movingController(["y", "z"], 2);
    for (const n of ["x", "y", "z"]) t.createTopic(n, 1);
    await admin.deleteTopics(["x", "y", "z"]);
    expect(sent).toEqual([
      ["x", "y", "z"],
      ["y", "z"],
      ["y", "z"],
    ]);
    expect(t.topics.size).toBe(0);
  });
});
