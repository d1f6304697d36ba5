/**
 * Compares two V8 heap snapshots of one process (issue 14's soak: what the broker's heap keeps).
 *
 *   NODE_OPTIONS=--heapsnapshot-signal=SIGUSR2 npm run soak -- --minutes 14 --runtime node
 *   kill -USR2 <broker pid>   (twice, minutes apart, after the last restart; files land in the repo root)
 *   node --max-old-space-size=6000 --import tsx test/soak/heap-diff.ts A.heapsnapshot B.heapsnapshot [samples]
 *
 * Prints, by (type, name): growth in count and self size; the objects of B whose ids are not in A
 * (ids are stable within one process), with `samples` shortest retainer paths per group; and
 * ArrayBuffer backing stores of B grouped by their retainer path.
 */
import fs from "node:fs";

interface Snapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: string[];
      readonly edge_fields: string[];
      readonly node_types: [string[]];
      readonly edge_types: [string[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

class Heap {
  readonly s: Snapshot;
  readonly nf: number;
  readonly ef: number;
  readonly n: number;
  private readonly first: Uint32Array;
  private readonly nodeTypes: string[];
  private readonly edgeTypes: string[];
  /** Shortest-path parent (and the edge to it) of each node from the root, -1 when unreached. */
  private parent: Int32Array | null = null;
  private parentEdge: Int32Array | null = null;

  constructor(file: string) {
    this.s = JSON.parse(fs.readFileSync(file, "utf8")) as Snapshot;
    const m = this.s.snapshot.meta;
    this.nf = m.node_fields.length;
    this.ef = m.edge_fields.length;
    this.nodeTypes = m.node_types[0];
    this.edgeTypes = m.edge_types[0];
    this.n = this.s.nodes.length / this.nf;
    this.first = new Uint32Array(this.n + 1);
    const ec = m.node_fields.indexOf("edge_count");
    for (let i = 0, e = 0; i < this.n; i++) {
      this.first[i] = e;
      e += this.s.nodes[i * this.nf + ec]! * this.ef;
    }
    this.first[this.n] = this.s.edges.length;
  }

  type(i: number): string {
    return this.nodeTypes[this.s.nodes[i * this.nf]!]!;
  }
  name(i: number): string {
    return this.s.strings[this.s.nodes[i * this.nf + 1]!]!;
  }
  id(i: number): number {
    return this.s.nodes[i * this.nf + 2]!;
  }
  size(i: number): number {
    return this.s.nodes[i * this.nf + 3]!;
  }
  label(i: number): string {
    const t = this.type(i);
    const name = t.includes("string") ? "" : this.name(i);
    return `${t}:${name.length > 60 ? `${name.slice(0, 60)}…` : name}`;
  }
  edgeName(e: number): string {
    const t = this.edgeTypes[this.s.edges[e]!]!;
    const v = this.s.edges[e + 1]!;
    return t === "element" || t === "hidden" ? `[${v}]` : this.s.strings[v]!;
  }

  /** Breadth-first from the root over strong edges. */
  private paths(): void {
    if (this.parent) return;
    const parent = new Int32Array(this.n).fill(-1);
    const parentEdge = new Int32Array(this.n).fill(-1);
    const seen = new Uint8Array(this.n);
    const q = new Uint32Array(this.n);
    let head = 0;
    let tail = 0;
    q[tail++] = 0;
    seen[0] = 1;
    while (head < tail) {
      const i = q[head++]!;
      for (let e = this.first[i]!; e < this.first[i + 1]!; e += this.ef) {
        if (this.edgeTypes[this.s.edges[e]!] === "weak") continue;
        const to = this.s.edges[e + 2]! / this.nf;
        if (seen[to]) continue;
        seen[to] = 1;
        parent[to] = i;
        parentEdge[to] = e;
        q[tail++] = to;
      }
    }
    this.parent = parent;
    this.parentEdge = parentEdge;
  }

  /** The shortest retainer path of node `i`, `depth` steps up. */
  path(i: number, depth: number): string {
    this.paths();
    const parts: string[] = [];
    for (let c = i, d = 0; d < depth && this.parent![c]! >= 0; d++) {
      const p = this.parent![c]!;
      parts.push(`${this.label(p)}.${this.edgeName(this.parentEdge![c]!)}`);
      c = p;
    }
    return parts.join(" <- ");
  }
}

type Groups = Map<string, { count: number; size: number }>;

function groups(h: Heap, keep: (i: number) => boolean = () => true): Groups {
  const g: Groups = new Map();
  for (let i = 0; i < h.n; i++) {
    if (!keep(i)) continue;
    const k = h.label(i);
    const v = g.get(k) ?? { count: 0, size: 0 };
    v.count++;
    v.size += h.size(i);
    g.set(k, v);
  }
  return g;
}

const total = (g: Groups): number => [...g.values()].reduce((n, v) => n + v.size, 0);
const kib = (b: number): string => (b / 1024).toFixed(1).padStart(9);

function main(): void {
  const [fa, fb, samplesArg] = process.argv.slice(2);
  if (!fa || !fb) {
    console.error("usage: heap-diff.ts A.heapsnapshot B.heapsnapshot [samples]");
    process.exit(2);
  }
  const samples = Number(samplesArg ?? 3);
  let a: Heap | null = new Heap(fa);
  const ga = groups(a);
  const idsA = new Set<number>();
  for (let i = 0; i < a.n; i++) idsA.add(a.id(i));
  const nodesA = a.n;
  a = null; // one snapshot in memory at a time
  const b = new Heap(fb);
  const gb = groups(b);
  console.log(
    `self size: A ${(total(ga) / 2 ** 20).toFixed(2)} MiB (${nodesA} nodes), B ${(total(gb) / 2 ** 20).toFixed(2)} MiB (${b.n} nodes)`,
  );

  const rows = [...new Set([...ga.keys(), ...gb.keys()])].map((k) => {
    const va = ga.get(k) ?? { count: 0, size: 0 };
    const vb = gb.get(k) ?? { count: 0, size: 0 };
    return { k, dc: vb.count - va.count, ds: vb.size - va.size, now: vb.count };
  });
  console.log("\n== growth in self size by (type:name), top 30");
  for (const r of rows.sort((x, y) => y.ds - x.ds).slice(0, 30))
    console.log(`${kib(r.ds)} KiB ${String(r.dc).padStart(8)} objs  now ${String(r.now).padStart(8)} ${r.k}`);

  const isNew = (i: number): boolean => !idsA.has(b.id(i));
  const gn = [...groups(b, isNew)].sort((x, y) => y[1].size - x[1].size);
  console.log("\n== objects of B not in A, top 30 by self size");
  for (const [k, v] of gn.slice(0, 30)) console.log(`${kib(v.size)} KiB ${String(v.count).padStart(8)} ${k}`);

  console.log("\n== their shortest retainer paths (top 12 groups)");
  for (const [k, v] of gn.slice(0, 12)) {
    console.log(`\n# ${k} (${v.count}, ${kib(v.size).trim()} KiB)`);
    const idx: number[] = [];
    for (let i = 0; i < b.n; i++) if (isNew(i) && b.label(i) === k) idx.push(i);
    const picks = new Set<number>();
    for (let s = 0; s < samples && s < idx.length; s++) picks.add(idx[Math.floor((s + 0.5) * (idx.length / samples))]!);
    for (const i of picks) console.log(`  ${b.path(i, 14)}`);
  }

  const stores: Groups = new Map();
  for (let i = 0; i < b.n; i++) {
    if (b.name(i) !== "system / JSArrayBufferData") continue;
    const k = b
      .path(i, 6)
      .replace(/\[\d+\]/g, "[]")
      .replace(/\.\d+(?= |$)/g, ".N"); // element indices and Map slots apart
    const v = stores.get(k) ?? { count: 0, size: 0 };
    v.count++;
    v.size += b.size(i);
    stores.set(k, v);
  }
  console.log("\n== ArrayBuffer backing stores of B by retainer path, top 20");
  for (const [k, v] of [...stores].sort((x, y) => y[1].size - x[1].size).slice(0, 20))
    console.log(`${kib(v.size)} KiB ${String(v.count).padStart(6)} ${k}`);
}

main();
