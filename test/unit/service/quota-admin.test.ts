/**
 * AlterClientQuotas and DescribeClientQuotas in the service (issue 13), over a LocalMetadataStore:
 * each entry is stored or refused on its own, with INVALID_REQUEST naming the field; validate
 * only stores nothing; a node that is not the controller passes the request on.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/base/clock.ts";
import { RillError } from "../../../src/base/errors.ts";
import { LocalMetadataStore } from "../../../src/metadata/store.ts";
import { MemoryFileSystem } from "../../../src/storage/fs.ts";
import type { ControllerPort } from "../../../src/service/admin-ports.ts";
import type { AdminChange, AdminChanges } from "../../../src/service/admin-types.ts";
import { QuotaAdmin, quotaFilterOf } from "../../../src/service/quota-admin.ts";
import type { DescribeClientQuotasInput } from "../../../src/service/quota-admin-types.ts";

class Port implements ControllerPort {
  forwarded = false;
  active = true;
  committed = 0;
  readonly forwardedChanges: AdminChange[] = [];
  isActive(): boolean {
    return this.active;
  }
  async forward<K extends AdminChange>(change: K): Promise<AdminChanges[K]["result"]> {
    this.forwardedChanges.push(change);
    return { results: [] } as unknown as AdminChanges[K]["result"];
  }
  committedHere(): void {
    this.committed++;
  }
}

function quotaAdmin(): { admin: QuotaAdmin; store: LocalMetadataStore } {
  const store = LocalMetadataStore.open(new MemoryFileSystem(), "/d", new ManualClock());
  return { admin: new QuotaAdmin(store), store };
}

const op = { key: "producer_byte_rate", value: 1000, remove: false };

describe("QuotaAdmin", () => {
  it("stores good entries and refuses bad ones, each on its own", async () => {
    const { admin, store } = quotaAdmin();
    const port = new Port();
    const res = await admin.alterClientQuotas(
      {
        entries: [
          { entity: [{ type: "user", name: "alice" }], ops: [op] },
          { entity: [{ type: "user", name: "bob" }], ops: [{ ...op, value: -3 }] },
          {
            entity: [
              { type: "client-id", name: "a" },
              { type: "client-id", name: "b" },
            ],
            ops: [op],
          },
          { entity: [{ type: { unrecognized: 5 }, name: "x" }], ops: [op] },
          { entity: [], ops: [op] },
        ],
        validateOnly: false,
      },
      port,
    );
    expect(res.results.map((r) => r.error?.message ?? "ok")).toEqual([
      "ok",
      "entries[1].ops[0].value: -3 is not a byte rate in (0, 9007199254740991]",
      "entries[2].entity.parts[1].type: client-id is given twice",
      "entries[3].entity.parts[0].type: unknown entity type 5 (known: user, client-id)",
      "entries[4].entity.parts: at least one part (user or client id) is required",
    ]);
    expect(res.results.every((r) => r.error === undefined || r.error.kind.name === "INVALID_REQUEST")).toBe(true);
    expect([...store.image.clientQuotas.values()].map((q) => q.entity)).toEqual([{ user: "alice" }]);
    expect(port.committed).toBe(1);
  });

  it("validate only checks and stores nothing; an empty request fails as a whole", async () => {
    const { admin, store } = quotaAdmin();
    const res = await admin.alterClientQuotas(
      { entries: [{ entity: [{ type: "user", name: null }], ops: [op] }], validateOnly: true },
      new Port(),
    );
    expect(res.results[0]!.error).toBeUndefined();
    expect(store.image.clientQuotas.size).toBe(0);
    const e = await admin.alterClientQuotas({ entries: [], validateOnly: false }, new Port()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RillError);
    expect((e as RillError).message).toBe("entries: at least one entry is required");
  });

  it("passes the request to the active controller from any other node", async () => {
    const { admin, store } = quotaAdmin();
    const port = new Port();
    port.active = false;
    await admin.alterClientQuotas({ entries: [{ entity: [{ type: "user", name: "a" }], ops: [op] }], validateOnly: false }, port);
    expect(port.forwardedChanges).toEqual(["alterClientQuotas"]);
    expect(store.image.clientQuotas.size).toBe(0);
  });

  it("describes with a filter, and refuses a bad one naming the component", async () => {
    const { admin } = quotaAdmin();
    await admin.alterClientQuotas(
      {
        entries: [
          { entity: [{ type: "user", name: "alice" }], ops: [op] },
          { entity: [{ type: "client-id", name: null }], ops: [{ key: "consumer_byte_rate", value: 5, remove: false }] },
        ],
        validateOnly: false,
      },
      new Port(),
    );
    const d = (input: DescribeClientQuotasInput) => admin.describeClientQuotas(input).entries;
    expect(d({ components: [], strict: false })).toEqual([
      { entity: { clientId: null }, values: { consumer_byte_rate: 5 } },
      { entity: { user: "alice" }, values: { producer_byte_rate: 1000 } },
    ]);
    expect(d({ components: [{ entityType: "client-id", matchType: "default", match: "" }], strict: false })).toHaveLength(1);
    const bad: Array<[DescribeClientQuotasInput, string]> = [
      [
        { components: [{ entityType: { unrecognized: 3 }, matchType: "any", match: "" }], strict: false },
        "components[0].entity_type: unknown entity type 3 (known: user, client-id)",
      ],
      [
        { components: [{ entityType: "user", matchType: { unrecognized: 0 }, match: "" }], strict: false },
        "components[0].match_type: unknown match type 0 (known: exact, default, any)",
      ],
      [
        { components: [{ entityType: "user", matchType: "exact", match: "" }], strict: false },
        "components[0].match: empty with an exact match",
      ],
      [
        {
          components: [
            { entityType: "user", matchType: "any", match: "" },
            { entityType: "user", matchType: "default", match: "" },
          ],
          strict: false,
        },
        "components[1].entity_type: user is given twice",
      ],
    ];
    for (const [input, message] of bad) {
      let err: unknown = null;
      try {
        quotaFilterOf(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(RillError);
      expect((err as RillError).message).toBe(message);
    }
  });
});
