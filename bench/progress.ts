/**
 * Progress of a long benchmark run, every 5 s on stderr: elapsed time, records done of the
 * total, the rate over the last interval and since the start. On a terminal the line is
 * rewritten in place; otherwise (a pipe, a CI log) each report is a plain line.
 */

/** How often progress is reported (RILL_BENCH_PROGRESS_MS overrides it, for tests). */
export const PROGRESS_INTERVAL_MS =
  Number(process.env["RILL_BENCH_PROGRESS_MS"]) > 0 ? Number(process.env["RILL_BENCH_PROGRESS_MS"]) : 5000;

/** Reports `done()` of `total` records every `intervalMs` until `stop()`. */
export function startProgress(
  label: string,
  total: number,
  done: () => number,
  intervalMs: number = PROGRESS_INTERVAL_MS,
  out: NodeJS.WriteStream = process.stderr,
): { stop(): void } {
  const start = performance.now();
  let last = { at: start, n: 0 };
  let wrote = false;
  const tty = out.isTTY === true;
  const timer = setInterval(() => {
    const now = performance.now();
    const n = done();
    const rateNow = (n - last.n) / ((now - last.at) / 1000);
    const rateAvg = n / ((now - start) / 1000);
    last = { at: now, n };
    const pct = total > 0 ? ` (${((100 * n) / total).toFixed(0)}%)` : "";
    const line =
      `  ${label} ${((now - start) / 1000).toFixed(0)} s: ${n}/${total} records${pct}, ` +
      `${(rateNow / 1e6).toFixed(2)}M records/s now, ${(rateAvg / 1e6).toFixed(2)}M records/s average`;
    out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
    wrote = true;
  }, intervalMs);
  timer.unref?.();
  return {
    stop: () => {
      clearInterval(timer);
      if (tty && wrote) out.write("\n");
    },
  };
}
