/// <reference lib="dom" />
/**
 * The console's pages, each a function that fetches what it shows and returns its element:
 * the overview, topics (list, create, delete), a topic (partitions, configs, message browser),
 * groups, a group (members, assignments, lag per partition and its chart), and live traffic.
 */
import { api, enc } from "./api.ts";
import { lineChart, type Series } from "./chart.ts";
import { bytes, count, h, mount, stat, table, time } from "./dom.ts";
import type { ConfigEntry, GroupDetail, GroupListing, Messages, Overview, Shown, TopicDetail, TopicListing, Traffic } from "./types.ts";

const link = (href: string, text: string): HTMLAnchorElement => h("a", { href }, text);
const topicLink = (name: string): HTMLAnchorElement => link(`#/topics/${enc(name)}`, name);
const groupLink = (id: string): HTMLAnchorElement => link(`#/groups/${enc(id)}`, id);

/** A page section with a heading. */
function section(title: string, ...children: (Node | null)[]): HTMLElement {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/** An error line. */
export function errorBox(e: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, e instanceof Error ? e.message : String(e));
}

function topicsTable(topics: readonly TopicListing[]): HTMLElement {
  return table(
    ["Topic", "Partitions", "Replicas", "Under-replicated", "Offline"],
    topics.map((t) => [topicLink(t.name), t.partitions, t.replicationFactor, t.underReplicated, t.offline]),
    "no topics yet",
    "topics-table",
  );
}

function groupsTable(groups: readonly GroupListing[]): HTMLElement {
  return table(
    ["Group", "State", "Members", "Total lag"],
    groups.map((g) => [groupLink(g.groupId), g.state, g.members, count(g.totalLag)]),
    "no consumer groups",
    "groups-table",
  );
}

/** `/`: the cluster overview. */
export async function overviewPage(): Promise<HTMLElement> {
  const [c, topics, groups] = await Promise.all([
    api<Overview>("GET", "cluster"),
    api<{ topics: TopicListing[] }>("GET", "topics"),
    api<{ groups: GroupListing[]; unreachable: { nodeId: number; error: string }[] }>("GET", "groups"),
  ]);
  return h(
    "div",
    {},
    h("h1", {}, "Cluster ", h("code", {}, c.clusterId)),
    h(
      "div",
      { class: "stats" },
      stat("Brokers", c.brokers.length, "stat-brokers"),
      stat("Controller", c.controllerId < 0 ? "none" : `node ${c.controllerId}`, "stat-controller", c.controllerId < 0),
      stat("Raft term", c.raft.term, "stat-raft-term"),
      stat("Topics", c.topics, "stat-topics"),
      stat("Partitions", c.partitions.total, "stat-partitions"),
      stat("Under-replicated", c.partitions.underReplicated, "stat-under-replicated", c.partitions.underReplicated > 0),
      stat("Offline", c.partitions.offline, "stat-offline", c.partitions.offline > 0),
    ),
    section(
      "Nodes",
      table(
        ["Node", "Address", "Roles", "State", "Leads"],
        c.brokers.map((b) => [
          b.nodeId === c.controllerId ? `${b.nodeId} (controller)` : b.nodeId,
          b.address,
          b.roles.join(", "),
          b.fenced ? "fenced" : "active",
          b.leaderPartitions,
        ]),
        "no brokers registered",
        "nodes-table",
      ),
    ),
    section("Topics", topicsTable(topics.topics)),
    section("Consumer groups", groupsTable(groups.groups), unreachableNote(groups.unreachable)),
  );
}

/** `#/topics`: list, create, delete. */
export async function topicsPage(refresh: () => void): Promise<HTMLElement> {
  const { topics } = await api<{ topics: TopicListing[] }>("GET", "topics");
  const status = h("p", { class: "status", role: "status" });
  const name = h("input", { name: "name", required: true, placeholder: "orders", "data-testid": "new-topic-name", autocomplete: "off" });
  const partitions = h("input", { name: "partitions", type: "number", min: 1, value: 3, "data-testid": "new-topic-partitions" });
  const rf = h("input", { name: "replicationFactor", type: "number", min: 0, value: 0, title: "0: the broker's default" });
  const form = h(
    "form",
    {
      class: "inline-form",
      "data-testid": "create-topic-form",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        try {
          await api("POST", "topics", {
            name: name.value.trim(),
            partitions: Number(partitions.value),
            replicationFactor: Number(rf.value),
          });
          refresh();
        } catch (err) {
          mount(status, errorBox(err));
        }
      },
    },
    h("label", {}, "Name", name),
    h("label", {}, "Partitions", partitions),
    h("label", {}, "Replication factor", rf),
    h("button", { type: "submit", "data-testid": "create-topic" }, "Create topic"),
  );
  const rows = topics.map((t) => [
    topicLink(t.name),
    t.partitions,
    t.replicationFactor,
    t.underReplicated,
    h(
      "button",
      {
        class: "danger",
        "data-testid": `delete-${t.name}`,
        onclick: async () => {
          if (!confirm(`Delete topic "${t.name}" and all its records?`)) return;
          try {
            await api("DELETE", `topics/${enc(t.name)}`);
            refresh();
          } catch (err) {
            mount(status, errorBox(err));
          }
        },
      },
      "Delete",
    ),
  ]);
  return h(
    "div",
    {},
    h("h1", {}, "Topics"),
    section("Create a topic", form, status),
    section("All topics", table(["Topic", "Partitions", "Replicas", "Under-replicated", ""], rows, "no topics yet", "topics-table")),
  );
}

/** Bytes shown as the API answered them. */
function shownText(v: Shown): string {
  if (v === null) return "null";
  if ("hex" in v) return v.hex;
  if ("base64" in v) return v.base64;
  if ("json" in v && v.json !== false) return JSON.stringify(v.json, null, 2);
  return (v as { text: string }).text;
}

/** The message browser of `topic`. */
function messageBrowser(topic: string, partitionCount: number): HTMLElement {
  const out = h("div", { "data-testid": "messages" });
  const partition = h(
    "select",
    { name: "partition" },
    h("option", { value: "" }, "all"),
    ...Array.from({ length: partitionCount }, (_, i) => h("option", { value: i }, String(i))),
  );
  const mode = h(
    "select",
    { name: "mode", "data-testid": "browse-mode" },
    h("option", { value: "newest" }, "newest"),
    h("option", { value: "offset" }, "from offset"),
    h("option", { value: "timestamp" }, "from time"),
  );
  const from = h("input", { name: "from", placeholder: "50", "data-testid": "browse-from", autocomplete: "off" });
  const format = h(
    "select",
    { name: "format", "data-testid": "browse-format" },
    ...["text", "json", "hex"].map((f) => h("option", { value: f }, f)),
  );
  const load = async (): Promise<void> => {
    const q = new URLSearchParams({ format: format.value, limit: "100" });
    if (partition.value !== "") q.set("partition", partition.value);
    const v = from.value.trim();
    if (mode.value === "timestamp")
      q.set("timestamp", String(v === "" ? Date.now() - 3600_000 : Number.isNaN(Number(v)) ? Date.parse(v) : Number(v)));
    else q.set(mode.value, v === "" ? (mode.value === "newest" ? "50" : "0") : v);
    try {
      const m = await api<Messages>("GET", `topics/${enc(topic)}/messages?${q}`);
      const errors = m.partitions
        .filter((p) => p.error)
        .map((p) => h("p", { class: "error" }, `partition ${p.partition}: ${p.error!.message}`));
      mount(
        out,
        ...errors,
        table(
          ["Partition", "Offset", "Time", "Key", "Value", "Headers"],
          m.records.map((r) => [
            r.partition,
            r.offset,
            time(r.timestampMs),
            h("pre", { class: "cell" }, shownText(r.key)),
            h("pre", { class: "cell" }, shownText(r.value)),
            r.headers.length === 0 ? "" : h("pre", { class: "cell" }, r.headers.map((x) => `${x.key}: ${shownText(x.value)}`).join("\n")),
          ]),
          "no records",
          "messages-table",
        ),
        m.truncated ? h("p", { class: "muted" }, "more records than shown: narrow the range") : null,
      );
    } catch (err) {
      mount(out, errorBox(err));
    }
  };
  const form = h(
    "form",
    {
      class: "inline-form",
      onsubmit: (e: Event) => {
        e.preventDefault();
        void load();
      },
    },
    h("label", {}, "Partition", partition),
    h("label", {}, "Start", mode),
    h("label", {}, "Offset / count / time", from),
    h("label", {}, "Show as", format),
    h("button", { type: "submit", "data-testid": "browse" }, "Load"),
  );
  void load();
  return section("Messages", form, out);
}

function configsSection(topic: string, configs: readonly ConfigEntry[], refresh: () => void): HTMLElement {
  const status = h("p", { class: "status", role: "status" });
  const rows = configs.map((c) => {
    const input = h("input", { value: c.value, "aria-label": c.name, "data-testid": `config-${c.name}` });
    const save = h(
      "button",
      {
        onclick: async () => {
          try {
            await api("PATCH", `topics/${enc(topic)}/configs`, { set: { [c.name]: input.value } });
            refresh();
          } catch (err) {
            mount(status, errorBox(err));
          }
        },
      },
      "Set",
    );
    const reset =
      c.source === "dynamic-topic"
        ? h(
            "button",
            {
              onclick: async () => {
                try {
                  await api("PATCH", `topics/${enc(topic)}/configs`, { delete: [c.name] });
                  refresh();
                } catch (err) {
                  mount(status, errorBox(err));
                }
              },
            },
            "Reset",
          )
        : null;
    return [h("span", { title: c.doc }, c.name), input, c.source, h("span", { class: "actions" }, save, reset)];
  });
  const details = h(
    "details",
    {},
    h("summary", {}, `Configuration (${configs.length} keys)`),
    status,
    table(["Key", "Value", "Source", ""], rows),
  );
  return h("section", { class: "card" }, details);
}

/** `#/topics/{name}`: partitions, configs and the message browser. */
export async function topicPage(name: string, refresh: () => void): Promise<HTMLElement> {
  const [t, cfg] = await Promise.all([
    api<TopicDetail>("GET", `topics/${enc(name)}`),
    api<{ configs: ConfigEntry[] }>("GET", `topics/${enc(name)}/configs`),
  ]);
  const total = t.partitions.reduce((s, p) => s + (p.sizeBytes ?? 0), 0);
  const records = t.partitions.reduce((s, p) => s + p.highWatermark - p.logStartOffset, 0);
  return h(
    "div",
    {},
    h("h1", {}, "Topic ", h("code", {}, t.name)),
    h(
      "div",
      { class: "stats" },
      stat("Partitions", t.partitions.length, "stat-topic-partitions"),
      stat("Records", count(records), "stat-topic-records"),
      stat("Size here", bytes(total), "stat-topic-size"),
    ),
    section(
      "Partitions",
      table(
        ["Partition", "Leader", "Replicas", "ISR", "Start", "End (HW)", "Size here"],
        t.partitions.map((p) => [
          p.partition,
          p.leader < 0 ? "offline" : p.leader,
          p.replicas.join(", "),
          h("span", { class: p.underReplicated ? "warn-text" : "" }, p.isr.join(", ")),
          p.logStartOffset,
          p.highWatermark,
          bytes(p.sizeBytes),
        ]),
        "no partitions",
        "partitions-table",
      ),
    ),
    messageBrowser(name, t.partitions.length),
    configsSection(name, cfg.configs, refresh),
  );
}

/** `#/groups`. */
export async function groupsPage(): Promise<HTMLElement> {
  const { groups, unreachable } = await api<{ groups: GroupListing[]; unreachable: { nodeId: number; error: string }[] }>("GET", "groups");
  return h("div", {}, h("h1", {}, "Consumer groups"), section("Groups", groupsTable(groups), unreachableNote(unreachable)));
}

/** A note naming the brokers whose groups are missing from a listing. */
function unreachableNote(list: readonly { nodeId: number; error: string }[]): HTMLElement | null {
  if (list.length === 0) return null;
  return h(
    "p",
    { class: "error" },
    `Groups of ${list.map((u) => `node ${u.nodeId} (${u.error})`).join(", ")} are missing: it did not answer.`,
  );
}

/** Lag seen by this page, per group: the chart of a group whose coordinator keeps no history here. */
const seen = new Map<string, GroupDetail["history"]>();
/** Samples kept per group by this page (15 minutes at the refresh of 5 s). */
const SEEN_SAMPLES_MAX = 180;

/** The group's lag as this page has seen it, with `g`'s current lag added. */
function seenLag(g: GroupDetail): GroupDetail["history"] {
  const h = seen.get(g.groupId) ?? { t: [], total: [], partitions: {} };
  seen.set(g.groupId, h);
  const n = h.t.length;
  h.t.push(Date.now());
  h.total.push(g.totalLag ?? 0);
  for (const o of g.offsets) {
    if (o.lag < 0) continue;
    const series = (h.partitions[`${o.topic}-${o.partition}`] ??= new Array<number | null>(n).fill(null));
    series.push(o.lag);
  }
  for (const series of Object.values(h.partitions)) while (series.length < h.t.length) series.push(null);
  if (h.t.length > SEEN_SAMPLES_MAX) {
    h.t.shift();
    h.total.shift();
    for (const series of Object.values(h.partitions)) series.shift();
  }
  return h;
}

/** `#/groups/{id}`: members, assignments, lag per partition and the lag chart. */
export async function groupPage(id: string): Promise<HTMLElement> {
  const g = await api<GroupDetail>("GET", `groups/${enc(id)}`);
  const hist = g.history.t.length >= 2 ? g.history : seenLag(g);
  const series: Series[] = [
    { name: "total", values: hist.total },
    ...Object.entries(hist.partitions).map(([name, values]) => ({ name, values })),
  ];
  return h(
    "div",
    {},
    h("h1", {}, "Group ", h("code", {}, g.groupId)),
    h(
      "div",
      { class: "stats" },
      stat("State", g.state, "stat-group-state"),
      stat("Members", g.members.length, "stat-group-members"),
      stat("Total lag", count(g.totalLag), "stat-group-lag", (g.totalLag ?? 0) > 0),
      stat("Coordinator", `node ${g.coordinatorId}`, "stat-group-coordinator"),
    ),
    section("Lag", lineChart("Lag per partition (records)", hist.t, series, count, "lag-chart")),
    section(
      "Members",
      table(
        ["Member", "Client", "Host", "Epoch", "Assignment"],
        g.members.map((m) => [
          h("code", {}, m.memberId),
          m.clientId,
          m.clientHost,
          m.memberEpoch,
          m.assignment.map((a) => `${a.topic}: ${a.partitions.join(", ")}`).join("; "),
        ]),
        "no members",
        "members-table",
      ),
    ),
    section(
      "Offsets",
      table(
        ["Topic", "Partition", "Committed", "End", "Lag", "Owner"],
        g.offsets.map((o) => [
          topicLink(o.topic),
          o.partition,
          o.committedOffset,
          o.logEndOffset,
          count(o.lag < 0 ? null : o.lag),
          h("code", {}, o.memberId),
        ]),
        "no committed offsets",
        "offsets-table",
      ),
    ),
  );
}

/** `#/traffic`: records and bytes in and out per topic, last 15 minutes. */
export async function trafficPage(): Promise<HTMLElement> {
  const tr = await api<Traffic>("GET", "traffic");
  const t = tr.topics[0]?.t ?? [];
  const pick = (key: "recordsIn" | "bytesIn" | "recordsOut" | "bytesOut"): Series[] =>
    tr.topics.map((s) => ({ name: s.topic, values: s[key] }));
  const hasRecordsOut = tr.topics.some((s) => s.recordsOut.some((v) => v !== null));
  const hasBytesOut = tr.topics.some((s) => s.bytesOut.some((v) => v !== null));
  const rate = (v: number): string => `${count(v)}/s`;
  const byteRate = (v: number): string => `${bytes(v)}/s`;
  return h(
    "div",
    {},
    h("h1", {}, "Traffic"),
    h("p", { class: "muted" }, `Per topic, sampled every ${tr.intervalMs / 1000} s over the last ${tr.windowMs / 60_000} minutes.`),
    h(
      "div",
      { class: "charts" },
      lineChart("Records in", t, pick("recordsIn"), rate, "chart-records-in"),
      lineChart("Bytes in", t, pick("bytesIn"), byteRate, "chart-bytes-in"),
      hasRecordsOut ? lineChart("Records out", t, pick("recordsOut"), rate, "chart-records-out") : null,
      hasBytesOut ? lineChart("Bytes out", t, pick("bytesOut"), byteRate, "chart-bytes-out") : null,
    ),
    hasRecordsOut && hasBytesOut
      ? null
      : h("p", { class: "muted" }, `${hasBytesOut ? "Records" : "Records and bytes"} out are not counted by this broker.`),
  );
}
