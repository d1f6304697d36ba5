/**
 * Where metadata records become durable. The services talk to a `MetadataStore` only, so they
 * work unchanged over the Raft quorum of controller voters (quorum-store.ts; a single node is a
 * quorum of one) and a broker-only node's observer of the quorum (observer-store.ts).
 *
 * `LocalMetadataStore` is the store of data dirs written before the quorum existed: the broker
 * opens it only to carry such a log over into the quorum, once (broker.ts `legacyMetadata`). It
 * keeps the records in a partition log of Rill's own format under
 * `<dataDir>/metadata/__cluster_metadata-0` (each record one JSON value), fsyncs every append
 * before it is applied, and replays the log into the image on open.
 */
import type { Clock } from "../base/clock.ts";
import { defaultTopicConfig } from "../config/schema.ts";
import type { FileSystem } from "../storage/fs.ts";
import { PartitionLog } from "../storage/partition-log.ts";
import { encodeBatch, records as recordCursor } from "../protocol/record-batch.ts";
import { MetadataImage } from "./image.ts";
import { decodeMetadataRecord, encodeMetadataRecord, type MetadataRecord } from "./records.ts";

/** A change applied to the image: the records and the offset of the last one. */
export interface MetadataChange {
  readonly records: readonly MetadataRecord[];
  readonly offset: number;
  /** True when a snapshot replaced the whole image (`records` then rebuild it). */
  readonly snapshot?: boolean;
}

/** Durable, ordered metadata with an image replayed from it. */
export interface MetadataStore {
  /** The current image (do not mutate). */
  readonly image: MetadataImage;
  /**
   * Makes `records` durable as one atomic unit and applies them to the image. `decide` is
   * called with the image at the moment of writing, so decisions never race each other.
   */
  commit(decide: (image: MetadataImage) => MetadataRecord[]): Promise<MetadataChange>;
  /** Calls `fn` after every applied change. Returns an unsubscribe function. */
  onChange(fn: (change: MetadataChange) => void): () => void;
  close(): Promise<void>;
  /**
   * False while the image may lack records that logs on this node's disk come from: a broker-only
   * node keeps no metadata on disk and starts from an empty image, which fills from the voters.
   * Absent: always true (the store replays a local log before it answers). The replica manager
   * deletes no log for a partition missing from an incomplete image.
   */
  readonly complete?: boolean;
}

/** The single-node store: a local, fsynced metadata log. */
export class LocalMetadataStore implements MetadataStore {
  readonly image = new MetadataImage();
  private readonly listeners = new Set<(c: MetadataChange) => void>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: PartitionLog;

  private constructor(
    fs: FileSystem,
    dataDir: string,
    clock: Clock,
    private readonly clockRef: Clock = clock,
  ) {
    const dir = fs.join(dataDir, "metadata", "__cluster_metadata-0");
    fs.mkdirp(fs.join(dataDir, "metadata"));
    this.log = PartitionLog.open({
      fs,
      dir,
      clock,
      config: { ...defaultTopicConfig, retentionMs: -1, flushMs: 0 },
      tailCacheBytes: 0,
      recover: true,
    });
    this.replay();
  }

  /** Opens (creating if needed) the metadata log in `dataDir` and replays it. */
  static open(fs: FileSystem, dataDir: string, clock: Clock): LocalMetadataStore {
    return new LocalMetadataStore(fs, dataDir, clock);
  }

  private replay(): void {
    let offset = this.log.logStartOffset;
    while (offset < this.log.logEndOffset) {
      const r = this.log.read(offset, 1 << 20);
      if (r.bytes === 0) break;
      for (const chunk of r.chunks) {
        for (let pos = 0; pos < chunk.length; ) {
          const size = chunk.readInt32BE(pos + 8) + 12;
          const c = recordCursor(chunk, pos);
          while (c.next()) {
            const v = c.value();
            if (v) this.image.apply(decodeMetadataRecord(v), c.offset);
          }
          pos += size;
        }
      }
      offset = r.nextOffset;
    }
  }

  commit(decide: (image: MetadataImage) => MetadataRecord[]): Promise<MetadataChange> {
    const run = async (): Promise<MetadataChange> => {
      const recs = decide(this.image);
      if (recs.length === 0) return { records: [], offset: this.image.offset };
      const now = this.clockRef.nowMs();
      const batch = encodeBatch(
        recs.map((r) => ({ key: null, value: encodeMetadataRecord(r), timestampMs: now })),
        { nowMs: now },
      );
      const res = this.log.append(batch);
      await this.log.flush();
      recs.forEach((r, i) => this.image.apply(r, res.baseOffset + i));
      const change = { records: recs, offset: res.lastOffset };
      for (const fn of this.listeners) fn(change);
      return change;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  onChange(fn: (change: MetadataChange) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  async close(): Promise<void> {
    await this.queue;
    await this.log.close();
  }
}
