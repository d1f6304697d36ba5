/**
 * Reading Prometheus text in tests: `scrape(url)` fetches `<url>/metrics`; `samples(body, name)`
 * parses the lines of one metric into labels and value; `sample(body, name, labels)` is the sum
 * of the samples whose labels include `labels` (undefined when none matches).
 */

/** One sample line. */
export interface PromSample {
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** The body of `<base>/metrics` (status 200 asserted by throwing otherwise). */
export async function scrape(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`${base}/metrics answered ${res.status}`);
  return res.text();
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of metric `name` (exactly that name: `_bucket`, `_sum` are names of their own). */
export function samples(body: string, name: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of body.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = LINE.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]!] = l[2]!;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples of `name` whose labels include `labels`; undefined when none does. */
export function sample(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const hits = samples(body, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return hits.length === 0 ? undefined : hits.reduce((n, s) => n + s.value, 0);
}

/** Every metric name in `body` (from the `# TYPE` lines). */
export function metricNames(body: string): Set<string> {
  return new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}
