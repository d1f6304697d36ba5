/**
 * Graceful shutdown on signals (opt-in: `closeOnSignals` of Producer and GroupConsumer). One
 * process listener per signal, shared by every registered client: on SIGTERM or SIGINT (or the
 * signals asked for) every registered client is closed at once — a producer flushes, a group
 * consumer commits what it processed and leaves its group — then the listeners are removed and
 * the signal is raised again, so the process ends as it would have without them (or runs on, if
 * the application has listeners of its own). A second signal while closing does the same at once.
 * A client that closes on its own unregisters.
 */

/** A client that can be closed on a signal. */
export interface Closable {
  close(): Promise<void>;
}

/** The signals used when `closeOnSignals` is `true`. */
export const DEFAULT_SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"];

const clients = new Set<Closable>();
const listeners = new Map<NodeJS.Signals, () => void>();
let closing = false;

function removeListeners(): void {
  for (const [signal, listener] of listeners) process.off(signal, listener);
  listeners.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  if (closing) {
    removeListeners();
    process.kill(process.pid, signal);
    return;
  }
  closing = true;
  const all = [...clients];
  clients.clear();
  void Promise.allSettled(all.map((c) => c.close())).then(() => {
    closing = false;
    removeListeners();
    process.kill(process.pid, signal);
  });
}

/**
 * The signals `option` asks for (`true`: SIGTERM and SIGINT; a list: those; false or absent:
 * none); RangeError for anything else.
 */
export function shutdownSignals(option: boolean | readonly NodeJS.Signals[] | undefined, field: string): readonly NodeJS.Signals[] {
  if (option === undefined || option === false) return [];
  if (option === true) return DEFAULT_SHUTDOWN_SIGNALS;
  if (!Array.isArray(option) || option.some((s) => typeof s !== "string" || !/^SIG[A-Z0-9]+$/.test(s)))
    throw new RangeError(`${field}: must be true, false or a list of signal names such as "SIGTERM"`);
  return option;
}

/** Closes `client` on any of `signals`; returns the function that unregisters it. */
export function closeOnSignals(client: Closable, signals: readonly NodeJS.Signals[]): () => void {
  if (signals.length === 0 || typeof process === "undefined" || typeof process.on !== "function") return () => undefined;
  clients.add(client);
  for (const signal of signals) {
    if (listeners.has(signal)) continue;
    const listener = (): void => onSignal(signal);
    listeners.set(signal, listener);
    process.on(signal, listener);
  }
  return () => {
    clients.delete(client);
    if (clients.size === 0 && !closing) removeListeners();
  };
}
