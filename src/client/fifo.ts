/** A FIFO queue with O(1) push and shift (Array.prototype.shift is O(n) on long arrays). */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  /** Number of queued items. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** Appends `item`. */
  push(item: T): void {
    this.items.push(item);
  }

  /** The first item, without removing it. */
  peek(): T | undefined {
    return this.items[this.head];
  }

  /** Removes and returns the first item. */
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** A copy of the queued items, in order. */
  toArray(): T[] {
    return this.items.slice(this.head) as T[];
  }

  /** Removes and returns every item, in order. */
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}
