/**
 * The latency–throughput chart of a rate sweep (producer-sweep.ts, the suite's `sweep`), as a
 * plain SVG written by hand: two panels, request latency and end-to-end latency, each plotting
 * p50, p99 and p99.9 (ms, log scale) against the achieved throughput (records/s, linear), one
 * colour per series (e.g. one broker, RF=3) and one dash pattern per percentile. The same input
 * gives the same bytes (numbers are rounded; nothing depends on time or locale).
 */

/** One point of a series: a step of the ladder. */
export interface SweepPoint {
  readonly achievedRecordsPerSec: number;
  /** The step's offered rate as a fraction of the measured maximum, when it is one (for the label). */
  readonly fraction?: number | null;
  readonly requestMs: { readonly p50: number; readonly p99: number; readonly p999: number };
  readonly e2eMs: { readonly p50: number; readonly p99: number; readonly p999: number };
}

export interface SweepSeries {
  readonly name: string;
  readonly points: readonly SweepPoint[];
}

const COLOURS = ["#1971c2", "#7048e8", "#2b8a3e", "#d9822b", "#c2255c"];
const PERCENTILES = [
  { key: "p50", label: "p50", dash: "" },
  { key: "p99", label: "p99", dash: "6 3" },
  { key: "p999", label: "p99.9", dash: "2 3" },
] as const;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const n1 = (x: number): string => (Math.round(x * 10) / 10).toFixed(1);

/** A "nice" upper bound for an axis of values up to `x` (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k; fifths stay round). */
function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x * (1 - 1e-9)) return m * p;
  return 10 * p;
}

function rateLabel(r: number): string {
  return r >= 1e6 ? `${(r / 1e6).toFixed(r % 1e6 === 0 ? 0 : 1)}M` : r >= 1e3 ? `${(r / 1e3).toFixed(0)}k` : r.toFixed(0);
}

function msLabel(ms: number): string {
  return ms >= 1 ? ms.toFixed(0) : ms.toFixed(ms >= 0.1 ? 1 : 2);
}

/** One panel: `which` latency of every series against throughput, at (`left`, `top`). */
function panel(series: readonly SweepSeries[], which: "requestMs" | "e2eMs", title: string, left: number, top: number): string[] {
  const W = 440;
  const H = 300;
  const out: string[] = [];
  const points = series.flatMap((s) => s.points);
  const xMax = niceCeil(Math.max(1, ...points.map((p) => p.achievedRecordsPerSec)));
  const values = points.flatMap((p) => [p[which].p50, p[which].p99, p[which].p999]).filter((v) => Number.isFinite(v) && v > 0);
  const yLo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(1, ...values))));
  const yHi = 10 ** Math.ceil(Math.log10(Math.max(yLo * 10, ...values)));
  const x = (r: number): number => left + (r / xMax) * W;
  const y = (ms: number): number => top + H - ((Math.log10(Math.max(yLo, ms)) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * H;
  out.push(`<text x="${left}" y="${top - 10}" font-size="13" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${left}" y="${top}" width="${W}" height="${H}" fill="none" stroke="#868e96"/>`);
  for (let d = yLo; d <= yHi * 1.0001; d *= 10) {
    out.push(`<line x1="${left}" y1="${n1(y(d))}" x2="${left + W}" y2="${n1(y(d))}" stroke="#e9ecef"/>`);
    out.push(`<text x="${left - 4}" y="${n1(y(d) + 4)}" font-size="10" text-anchor="end">${msLabel(d)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const r = (xMax * i) / 5;
    out.push(`<line x1="${n1(x(r))}" y1="${top}" x2="${n1(x(r))}" y2="${top + H}" stroke="#e9ecef"/>`);
    out.push(`<text x="${n1(x(r))}" y="${top + H + 14}" font-size="10" text-anchor="middle">${rateLabel(r)}</text>`);
  }
  out.push(`<text x="${left + W / 2}" y="${top + H + 30}" font-size="11" text-anchor="middle">achieved records/s</text>`);
  out.push(
    `<text x="${left - 34}" y="${top + H / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${left - 34} ${top + H / 2})">latency, ms (log)</text>`,
  );
  series.forEach((s, si) => {
    const colour = COLOURS[si % COLOURS.length]!;
    const pts = [...s.points].sort((a, b) => a.achievedRecordsPerSec - b.achievedRecordsPerSec);
    for (const pc of PERCENTILES) {
      const xy = pts
        .filter((p) => Number.isFinite(p[which][pc.key]) && p[which][pc.key] > 0)
        .map((p) => `${n1(x(p.achievedRecordsPerSec))},${n1(y(p[which][pc.key]))}`);
      if (xy.length === 0) continue;
      out.push(
        `<polyline points="${xy.join(" ")}" fill="none" stroke="${colour}" stroke-width="1.6"${pc.dash ? ` stroke-dasharray="${pc.dash}"` : ""}/>`,
      );
      for (const p of xy) {
        const [cx, cy] = p.split(",");
        out.push(`<circle cx="${cx}" cy="${cy}" r="2.2" fill="${colour}"/>`);
      }
    }
  });
  return out;
}

/** The whole chart: both panels and a legend. */
export function sweepSvg(series: readonly SweepSeries[], title: string): string {
  const width = 1060;
  const parts: string[] = [];
  parts.push(`<text x="20" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`);
  parts.push(...panel(series, "requestMs", "Produce request latency (due → acknowledged)", 70, 70));
  parts.push(...panel(series, "e2eMs", "End-to-end latency (scheduled → consumed)", 590, 70));
  let y = 420;
  series.forEach((s, i) => {
    parts.push(`<rect x="70" y="${y - 9}" width="14" height="10" fill="${COLOURS[i % COLOURS.length]}"/>`);
    parts.push(`<text x="90" y="${y}" font-size="11">${esc(s.name)}</text>`);
    y += 16;
  });
  PERCENTILES.forEach((pc, i) => {
    const lx = 590 + i * 110;
    parts.push(
      `<line x1="${lx}" y1="416" x2="${lx + 30}" y2="416" stroke="#343a40" stroke-width="1.6"${pc.dash ? ` stroke-dasharray="${pc.dash}"` : ""}/>`,
    );
    parts.push(`<text x="${lx + 36}" y="420" font-size="11">${pc.label}</text>`);
  });
  const height = Math.max(y, 440) + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
}
