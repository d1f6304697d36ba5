/**
 * The soak test's chart: a hand-written SVG of four panels over time (broker RSS in MiB and open
 * descriptors per node, produce p99 and event-loop lag in ms), the injected faults shaded.
 */
import type { FaultWindow, Point } from "./stats.ts";

/** One line of a panel. */
export interface Series {
  readonly name: string;
  readonly points: readonly Point[];
}

/** One panel: a title with its unit and its lines. */
export interface Panel {
  readonly title: string;
  readonly series: readonly Series[];
}

const WIDTH = 900;
const PANEL_HEIGHT = 150;
const LEFT = 60;
const RIGHT = 20;
const TOP = 40;
const GAP = 40;
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/** The SVG text of `panels` over `durationS` seconds, titled `title`, with `faults` shaded. */
export function soakChart(title: string, durationS: number, panels: readonly Panel[], faults: readonly FaultWindow[]): string {
  const height = TOP + panels.length * (PANEL_HEIGHT + GAP);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="14">${escapeXml(title)}</text>`,
  ];
  panels.forEach((p, i) => parts.push(panelSvg(p, TOP + i * (PANEL_HEIGHT + GAP), Math.max(durationS, 1), faults)));
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function panelSvg(panel: Panel, top: number, durationS: number, faults: readonly FaultWindow[]): string {
  const w = WIDTH - LEFT - RIGHT;
  const values = panel.series.flatMap((s) => s.points.map((p) => p.v));
  const max = niceMax(values.length === 0 ? 1 : Math.max(...values));
  const x = (t: number): number => LEFT + (Math.min(t, durationS) / durationS) * w;
  const y = (v: number): number => top + PANEL_HEIGHT - (v / max) * PANEL_HEIGHT;
  const out = [
    `<text x="${LEFT}" y="${top - 6}" font-weight="bold">${escapeXml(panel.title)}</text>`,
    `<rect x="${LEFT}" y="${top}" width="${w}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`,
  ];
  for (const f of faults) {
    const end = Number.isFinite(f.end) ? f.end : durationS;
    out.push(
      `<rect x="${x(f.start).toFixed(1)}" y="${top}" width="${Math.max(1, x(end) - x(f.start)).toFixed(1)}" height="${PANEL_HEIGHT}" fill="${f.kind === "kill9" ? "#fbb" : "#fdb"}" opacity="0.6"><title>${f.kind} node ${f.node}</title></rect>`,
    );
  }
  for (const frac of [0, 0.5, 1]) {
    out.push(`<text x="${LEFT - 4}" y="${y(max * frac) + 4}" text-anchor="end">${round(max * frac)}</text>`);
  }
  for (let t = 0; t <= durationS; t += tickStep(durationS)) {
    out.push(`<text x="${x(t)}" y="${top + PANEL_HEIGHT + 13}" text-anchor="middle">${t}s</text>`);
  }
  panel.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const d = s.points.map((p, j) => `${j === 0 ? "M" : "L"}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join("");
    if (d !== "") out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.2"/>`);
    out.push(`<text x="${LEFT + 8 + i * 90}" y="${top + 14}" fill="${color}">${escapeXml(s.name)}</text>`);
  });
  return out.join("\n");
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function tickStep(durationS: number): number {
  for (const s of [10, 30, 60, 120, 300, 600]) if (durationS / s <= 10) return s;
  return 1200;
}

function round(v: number): string {
  return v >= 10 ? String(Math.round(v)) : v.toFixed(1);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
