/**
 * The Grafana dashboard in docs/grafana/rill.json queries only metrics a live broker serves:
 * every `rill_*` name in its PromQL expressions is a metric family of the broker's /metrics
 * (a histogram's `_bucket`, `_sum` and `_count` series belong to their family).
 */
import * as nodeFs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Broker } from "../../src/broker/broker.ts";
import { Admin } from "../../src/client/admin.ts";
import { GroupAdmin } from "../../src/client/group-admin.ts";
import { metricNames, scrape } from "./prom-text.ts";
import { rmTmp, tmpDir } from "./rpc-helpers.ts";

const DASHBOARD = path.resolve(import.meta.dirname, "../../docs/grafana/rill.json");

interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: readonly { readonly expr: string; readonly datasource?: { readonly uid?: string } }[];
}

let dir: string;
let broker: Broker;

beforeAll(async () => {
  dir = tmpDir();
  broker = await Broker.start({ dataDir: dir, listen: "127.0.0.1:0", config: { httpListen: "127.0.0.1:0" } });
});

afterAll(async () => {
  await broker.close();
  rmTmp(dir);
});

/** The metric names an expression reads. */
function namesIn(expr: string): string[] {
  return [...new Set([...expr.matchAll(/\brill_[a-z0-9_]+/g)].map((m) => m[0]))];
}

describe("docs/grafana/rill.json", () => {
  it("is a dashboard whose every query reads metrics the broker serves", async () => {
    const dashboard = JSON.parse(nodeFs.readFileSync(DASHBOARD, "utf8")) as { panels: Panel[]; title: string };
    expect(dashboard.title).toBe("Rill");
    const admin = new Admin({ bootstrap: broker.address });
    const groups = new GroupAdmin({ bootstrap: broker.address });
    try {
      await admin.createTopics([{ name: "dash", partitions: 1 }]);
      await groups.commitOffsets("dash-group", [{ topic: "dash", partition: 0, offset: 0 }]);
    } finally {
      await admin.close();
      await groups.close();
    }
    const families = metricNames(await scrape(`http://127.0.0.1:${broker.http!.port}`));
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      if (panel.type === "row") continue;
      expect(panel.targets?.length ?? 0, panel.title).toBeGreaterThan(0);
      for (const t of panel.targets ?? []) {
        expect(t.datasource?.uid, panel.title).toBe("${DS_PROMETHEUS}");
        for (const name of namesIn(t.expr)) queried.add(name);
      }
    }
    expect(queried.size).toBeGreaterThan(15);
    const missing = [...queried].filter((n) => !families.has(n) && !families.has(n.replace(/_(bucket|sum|count)$/, "")));
    expect(missing).toEqual([]);
    // The histogram's series are queried through its family, which is a histogram.
    expect(families.has("rill_request_duration_seconds")).toBe(true);
  });
});
