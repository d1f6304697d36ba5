/// <reference lib="dom" />
/**
 * The console's DOM helpers: `h` builds an element from a tag, attributes and children (text is
 * always set as text, never parsed as HTML), and the formatting of numbers, bytes and times.
 */

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | ((e: Event) => void) | null | undefined>;

/** An element with `attrs` (`on*` functions become listeners; false/null are left out) and `children`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "value" && "value" in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

/** Appends `children` (text as text nodes). */
export function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** A table with `head` columns and `rows`; `empty` when there are none. */
export function table(head: readonly string[], rows: readonly Child[][], empty = "none", testid?: string): HTMLElement {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      testid ? { "data-testid": testid } : {},
      h("thead", {}, h("tr", {}, ...head.map((c) => h("th", {}, c)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
    ),
  );
}

/** A labelled figure for a card. */
export function stat(label: string, value: Child, testid: string, warn = false): HTMLElement {
  return h(
    "div",
    { class: warn ? "stat warn" : "stat", "data-testid": testid },
    h("div", { class: "stat-value" }, value),
    h("div", { class: "stat-label" }, label),
  );
}

/** 1234567 → "1.2 MB". */
export function bytes(n: number | null): string {
  if (n === null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A count with thousands separators. */
export function count(n: number | null): string {
  return n === null ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: 1 });
}

/** A time as `HH:MM:SS` (today) or the date and time. */
export function time(ms: number): string {
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString("en-GB") : d.toLocaleString("en-GB");
}

/** Replaces the content of `el` with `children`. */
export function mount(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}
