import { describe, expect, it } from "vitest";
import { Exposition, labelText, partitionCounts, requestMetricsOnScrape } from "../../../src/broker/metrics.ts";
import { MetadataImage } from "../../../src/metadata/image.ts";
import { RequestMetrics } from "../../../src/service/request-metrics.ts";

describe("Exposition", () => {
  it("writes HELP, TYPE and sample lines, label values escaped as Prometheus text asks", async () => {
    const e = new Exposition();
    e.add("rill_x", "An x.\nSecond line.", "gauge", () => [
      { labels: { topic: 'a"b\\c\nd', partition: 3 }, value: 1.5 },
      { value: Number.POSITIVE_INFINITY },
    ]);
    e.addText("rill_y_total", "A y.", "counter", () => `rill_y_total{topic="${labelText("q")}"} 7\n`);
    const text = await e.metrics();
    expect(text).toContain(
      '# HELP rill_x An x.\\nSecond line.\n# TYPE rill_x gauge\nrill_x{topic="a\\"b\\\\c\\nd",partition="3"} 1.5\nrill_x +Inf\n',
    );
    expect(text).toContain('# TYPE rill_y_total counter\nrill_y_total{topic="q"} 7\n');
    expect(() => e.add("rill_x", "again", "gauge", () => [])).toThrow(/registered twice/);
  });

  it("writes request counters and a cumulative duration histogram per (api, protocol)", async () => {
    const m = new RequestMetrics();
    m.enabled = true;
    m.observeRequest("Produce", "grpc", "OK", 0.0004);
    m.observeRequest("Produce", "grpc", "OK", 0.003);
    m.observeRequest("Produce", "grpc", "NOT_LEADER_OR_FOLLOWER", 20);
    m.observeRequest("Fetch", "kafka", "OK", 0.2);
    m.bytesIn("t", 100, 3);
    m.bytesOut("t", 40);
    m.countConnections("kafka", () => 4);
    const e = new Exposition();
    requestMetricsOnScrape(e, m, null);
    const text = await e.metrics();
    expect(text).toContain('rill_requests_total{api="Produce",protocol="grpc",code="OK"} 2\n');
    expect(text).toContain('rill_requests_total{api="Produce",protocol="grpc",code="NOT_LEADER_OR_FOLLOWER"} 1\n');
    expect(text).toContain('rill_request_duration_seconds_bucket{api="Produce",protocol="grpc",le="0.0005"} 1\n');
    expect(text).toContain('rill_request_duration_seconds_bucket{api="Produce",protocol="grpc",le="0.005"} 2\n');
    expect(text).toContain('rill_request_duration_seconds_bucket{api="Produce",protocol="grpc",le="10"} 2\n');
    expect(text).toContain('rill_request_duration_seconds_bucket{api="Produce",protocol="grpc",le="+Inf"} 3\n');
    expect(text).toContain('rill_request_duration_seconds_count{api="Produce",protocol="grpc"} 3\n');
    expect(text).toContain('rill_request_duration_seconds_count{api="Fetch",protocol="kafka"} 1\n');
    expect(text).toContain('rill_bytes_in_total{topic="t"} 100\n');
    expect(text).toContain('rill_records_in_total{topic="t"} 3\n');
    expect(text).toContain('rill_bytes_out_total{topic="t"} 40\n');
    expect(text).toContain('rill_connections{listener="kafka"} 4\n');
  });

  it("counts nothing while not enabled", () => {
    const m = new RequestMetrics();
    m.observeRequest("Produce", "grpc", "OK", 0.1);
    m.bytesIn("t", 1, 1);
    expect(m.requests.size).toBe(0);
    expect(m.topics.size).toBe(0);
  });
});

describe("partitionCounts", () => {
  it("counts led, under-replicated and under-min-ISR partitions of one node, and offline ones cluster-wide", () => {
    const img = new MetadataImage();
    img.apply({ type: "broker", v: 1, nodeId: 1, address: "a:1", roles: ["broker"], fenced: false }, 1);
    img.apply({ type: "broker", v: 1, nodeId: 2, address: "a:2", roles: ["broker"], fenced: false }, 2);
    img.apply({ type: "topic", v: 1, name: "t", topicId: "00", configs: { "min.insync.replicas": "2" } }, 3);
    const part = (partition: number, leader: number, isr: number[]) =>
      img.apply(
        { type: "partition", v: 1, topic: "t", partition, replicas: [1, 2], isr, leader, leaderEpoch: 0, partitionEpoch: 0 },
        4 + partition,
      );
    part(0, 1, [1, 2]);
    part(1, 1, [1]);
    part(2, 2, [2]);
    part(3, -1, []);
    expect(partitionCounts(img, 1)).toEqual({ leader: 2, underReplicated: 1, underMinIsr: 1, offline: 1 });
    expect(partitionCounts(img, 2)).toEqual({ leader: 1, underReplicated: 1, underMinIsr: 1, offline: 1 });
  });
});
