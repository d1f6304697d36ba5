import { describe, expect, it } from "vitest";
import { RillError } from "../../../src/base/errors.ts";
import {
  type QuotaAlteration,
  decideAlterClientQuotas,
  describeClientQuotas,
  quotaEntityKey,
} from "../../../src/metadata/client-quotas.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "../../../src/metadata/records.ts";

/** Applies the records of `a` to `img` (as the store would) and returns them. */
function commit(img: MetadataImage, a: QuotaAlteration): MetadataRecord[] {
  const records = decideAlterClientQuotas(img, a, "entries[0]");
  for (const r of records) img.apply(decodeMetadataRecord(encodeMetadataRecord(r)), img.offset + 1);
  return records;
}

function refused(f: () => unknown): RillError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(RillError);
    return e as RillError;
  }
  throw new Error("not refused");
}

describe("client quotas in the metadata image", () => {
  it("sets, changes and removes quotas; an entity left with none is gone", () => {
    const img = new MetadataImage();
    commit(img, { entity: { user: "alice" }, ops: [{ key: "producer_byte_rate", value: 1024, remove: false }] });
    commit(img, { entity: { user: "alice" }, ops: [{ key: "consumer_byte_rate", value: 2048, remove: false }] });
    expect(img.clientQuotas.get(quotaEntityKey({ user: "alice" }))?.values).toEqual({ producerByteRate: 1024, consumerByteRate: 2048 });
    commit(img, { entity: { user: "alice" }, ops: [{ key: "producer_byte_rate", value: 0, remove: true }] });
    expect(img.clientQuotas.get(quotaEntityKey({ user: "alice" }))?.values).toEqual({ consumerByteRate: 2048 });
    commit(img, { entity: { user: "alice" }, ops: [{ key: "consumer_byte_rate", value: 0, remove: true }] });
    expect(img.clientQuotas.size).toBe(0);
    // removing what is not set is no change
    expect(
      decideAlterClientQuotas(img, { entity: { user: "alice" }, ops: [{ key: "consumer_byte_rate", value: 0, remove: true }] }, "e"),
    ).toEqual([]);
  });

  it("keeps a default part apart from a name that reads <default>", () => {
    const img = new MetadataImage();
    commit(img, { entity: { user: null }, ops: [{ key: "producer_byte_rate", value: 1, remove: false }] });
    commit(img, { entity: { user: "<default>" }, ops: [{ key: "producer_byte_rate", value: 2, remove: false }] });
    commit(img, { entity: { user: null, clientId: null }, ops: [{ key: "producer_byte_rate", value: 3, remove: false }] });
    expect(img.clientQuotas.size).toBe(3);
    expect(img.clientQuotas.get(quotaEntityKey({ user: null }))?.values.producerByteRate).toBe(1);
  });

  it("survives a snapshot: replaying snapshotRecords gives the same quotas", () => {
    const img = new MetadataImage();
    commit(img, { entity: { user: "alice", clientId: "app" }, ops: [{ key: "producer_byte_rate", value: 10, remove: false }] });
    commit(img, { entity: { clientId: null }, ops: [{ key: "consumer_byte_rate", value: 20, remove: false }] });
    commit(img, {
      entity: { user: null },
      ops: [
        { key: "consumer_byte_rate", value: 30, remove: false },
        { key: "producer_byte_rate", value: 40, remove: false },
      ],
    });
    const records = snapshotRecords(img).map((r) => decodeMetadataRecord(encodeMetadataRecord(r)));
    const again = MetadataImage.fromSnapshot(records, img.offset);
    expect([...again.clientQuotas.entries()]).toEqual([...img.clientQuotas.entries()]);
  });

  it("refuses bad entries with INVALID_REQUEST naming the field, and decides nothing", () => {
    const img = new MetadataImage();
    const op = { key: "producer_byte_rate", value: 1, remove: false };
    const cases: Array<[QuotaAlteration, RegExp]> = [
      [{ entity: {}, ops: [op] }, /entries\[0\]\.entity: the entity names neither/],
      [{ entity: { user: "" }, ops: [op] }, /entries\[0\]\.entity\.user: empty/],
      [{ entity: { clientId: "x".repeat(256) }, ops: [op] }, /entity\.client_id: longer than 255/],
      [{ entity: { user: "a" }, ops: [] }, /entries\[0\]\.ops: at least one/],
      [{ entity: { user: "a" }, ops: [{ ...op, key: "request_percentage" }] }, /ops\[0\]\.key: unknown quota "request_percentage"/],
      [{ entity: { user: "a" }, ops: [{ ...op, value: -5 }] }, /ops\[0\]\.value: -5 is not a byte rate/],
      [{ entity: { user: "a" }, ops: [{ ...op, value: 0 }] }, /ops\[0\]\.value: 0 is not a byte rate/],
      [{ entity: { user: "a" }, ops: [{ ...op, value: Number.NaN }] }, /ops\[0\]\.value: NaN/],
      [{ entity: { user: "a" }, ops: [{ ...op, value: Number.POSITIVE_INFINITY }] }, /ops\[0\]\.value: Infinity/],
      [{ entity: { user: "a" }, ops: [op, { ...op, value: 2 }] }, /ops\[1\]\.key: "producer_byte_rate" is changed twice/],
    ];
    for (const [a, message] of cases) {
      const e = refused(() => decideAlterClientQuotas(img, a, "entries[0]"));
      expect(e.kind.name).toBe("INVALID_REQUEST");
      expect(e.message).toMatch(message);
    }
    expect(img.clientQuotas.size).toBe(0);
  });

  it("describes with Kafka's filter: exact, default, any, strict", () => {
    const img = new MetadataImage();
    const set = (entity: QuotaAlteration["entity"]) =>
      commit(img, { entity, ops: [{ key: "producer_byte_rate", value: 1, remove: false }] });
    set({ user: "alice" });
    set({ user: "alice", clientId: "app" });
    set({ user: null });
    set({ clientId: "app" });
    set({ clientId: null });
    const names = (f: Parameters<typeof describeClientQuotas>[1]) => describeClientQuotas(img, f).map((q) => quotaEntityKey(q.entity));
    expect(names({ strict: false })).toHaveLength(5);
    expect(names({ user: { type: "exact", name: "alice" }, strict: false })).toEqual(['user="alice"', 'user="alice"/client-id="app"']);
    expect(names({ user: { type: "exact", name: "alice" }, strict: true })).toEqual(['user="alice"']);
    expect(names({ user: { type: "default" }, strict: false })).toEqual(["user=<default>"]);
    expect(names({ clientId: { type: "any" }, strict: true })).toEqual(['client-id="app"', "client-id=<default>"]);
    expect(names({ user: { type: "any" }, clientId: { type: "exact", name: "app" }, strict: true })).toEqual([
      'user="alice"/client-id="app"',
    ]);
  });
});
