/// <reference lib="dom" />
/**
 * A small SVG line chart: one line per series over a shared time axis, y from 0 to the largest
 * value, the first and last time and the top value labelled, and a legend. Points that are null
 * are gaps. Each line carries `data-series` and the last value `data-last`, so a test (or a
 * reader of the page) can tell what is drawn.
 */

/** One line. */
export interface Series {
  readonly name: string;
  readonly values: readonly (number | null)[];
}

const W = 600;
const H = 180;
const PAD = { left: 48, right: 8, top: 10, bottom: 22 };
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const SVG = "http://www.w3.org/2000/svg";

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The chart of `series` at times `t` (ms), values shown with `fmt`. */
export function lineChart(
  title: string,
  t: readonly number[],
  series: readonly Series[],
  fmt: (v: number) => string,
  testid: string,
): HTMLElement {
  const fig = document.createElement("figure");
  fig.className = "chart";
  fig.dataset.testid = testid;
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  fig.append(cap);
  if (t.length < 2) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "collecting samples…";
    fig.append(p);
    return fig;
  }
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const t0 = t[0]!;
  const t1 = t[t.length - 1]!;
  const x = (ms: number): number => PAD.left + ((ms - t0) / Math.max(1, t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number): number => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  svg.append(el("line", { x1: PAD.left, y1: y(0), x2: W - PAD.right, y2: y(0), class: "axis" }));
  svg.append(el("line", { x1: PAD.left, y1: y(max), x2: W - PAD.right, y2: y(max), class: "grid" }));
  svg.append(el("text", { x: PAD.left - 4, y: y(max) + 4, "text-anchor": "end", class: "tick" }, fmt(max)));
  svg.append(el("text", { x: PAD.left - 4, y: y(0), "text-anchor": "end", class: "tick" }, "0"));
  const clock = (ms: number): string => new Date(ms).toLocaleTimeString("en-GB");
  svg.append(el("text", { x: PAD.left, y: H - 6, class: "tick" }, clock(t0)));
  svg.append(el("text", { x: W - PAD.right, y: H - 6, "text-anchor": "end", class: "tick" }, clock(t1)));
  const legend = document.createElement("ul");
  legend.className = "legend";
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    let d = "";
    let pen = false;
    s.values.forEach((v, k) => {
      if (v === null || t[k] === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(t[k]!).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const last = [...s.values].reverse().find((v) => v !== null) ?? null;
    svg.append(el("path", { d, stroke: color, class: "line", "data-series": s.name, "data-last": last === null ? "" : String(last) }));
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = `swatch c${i % COLORS.length}`;
    li.append(sw, `${s.name}: ${last === null ? "–" : fmt(last)}`);
    legend.append(li);
  });
  fig.append(svg, legend);
  return fig;
}
