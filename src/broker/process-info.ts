/**
 * What the broker asks the operating system about processes: whether a process is alive (a
 * zombie — killed, not yet reaped by its parent — is not), when it started (so a reused pid is
 * told apart from the process that wrote a lock), and the soft open-file limit (RLIMIT_NOFILE),
 * which `max.partitions` is checked against.
 *
 * Linux answers from /proc; elsewhere the start time is unknown (the lock then falls back to
 * the pid alone) and the open-file limit comes from `sh -c 'ulimit -n'`.
 */
import { spawnSync } from "node:child_process";
import * as nodeFs from "node:fs";
import { rillError } from "../base/errors.ts";

/** State and start time (clock ticks since boot) of `pid` from /proc/<pid>/stat, or null. */
function procStat(pid: number): { state: string; startTime: string } | null {
  let text: string;
  try {
    text = nodeFs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Field 2 (comm) is in parentheses and may hold spaces: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const state = fields[0];
  const startTime = fields[19];
  return state && startTime ? { state, startTime } : null;
}

/** True if /proc describes processes on this machine. */
function hasProc(): boolean {
  return nodeFs.existsSync("/proc/self/stat");
}

/**
 * The start time of process `pid` as the OS records it (Linux: field 22 of /proc/<pid>/stat),
 * or null when it is unknown: the process is gone, a zombie, or the OS has no /proc.
 */
export function processStartTime(pid: number): string | null {
  const s = procStat(pid);
  return s && s.state !== "Z" && s.state !== "X" ? s.startTime : null;
}

/**
 * The machine's boot id (Linux: /proc/sys/kernel/random/boot_id, new at every boot), or null
 * when unknown: the data dir remembers it, so a restart tells a killed process (the page cache
 * kept its writes) from a machine restart (issue 21, KIP-966's unclean shutdown).
 */
export function bootId(): string | null {
  try {
    const id = nodeFs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return id === "" ? null : id;
  } catch {
    return null;
  }
}

/** Whether a process with this id runs (a zombie, killed but not reaped, does not). */
export function isProcessAlive(pid: number): boolean {
  if (hasProc()) return processStartTime(pid) !== null;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Parses the soft "Max open files" of a /proc/<pid>/limits text; null for "unlimited" or none. */
export function parseOpenFileLimit(limits: string): number | null {
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  if (!m || m[1] === "unlimited") return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

/**
 * This process's soft open-file limit (RLIMIT_NOFILE), or null if unlimited or unknown. Linux:
 * /proc/self/limits; elsewhere `ulimit -n` of a shell (which inherits the limit).
 */
export function openFileLimit(): number | null {
  try {
    return parseOpenFileLimit(nodeFs.readFileSync("/proc/self/limits", "utf8"));
  } catch {
    // not Linux
  }
  try {
    const out = spawnSync("sh", ["-c", "ulimit -n"], { encoding: "utf8", timeout: 2000 });
    const n = Number(out.stdout.trim());
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Descriptors the broker keeps for itself: runtime, listeners, metadata log, Raft, temp files. */
export const BROKER_RESERVED_DESCRIPTORS = 64;
/** Descriptors one partition holds: its active segment's `.log` (src/storage/segment.ts). */
export const DESCRIPTORS_PER_PARTITION = 1;

/** A broker's effective `max.partitions` and why. */
export interface PartitionLimit {
  readonly max: number;
  /** Names the configured value and, when lower, the open-file limit arithmetic. */
  readonly why: string;
}

/**
 * `max.partitions` lowered to what the open-file limit `nofile` leaves after
 * BROKER_RESERVED_DESCRIPTORS, `max.connections` and `log.file.handles.max`, at
 * DESCRIPTORS_PER_PARTITION each (null `nofile`: unlimited). Throws INVALID_CONFIG, naming the
 * limit, when it leaves no partition at all.
 */
export function partitionLimit(
  cfg: { readonly maxPartitions: number; readonly maxConnections: number; readonly logFileHandlesMax: number },
  nofile: number | null,
): PartitionLimit {
  if (nofile === null) return { max: cfg.maxPartitions, why: `${cfg.maxPartitions} configured` };
  const spare = nofile - BROKER_RESERVED_DESCRIPTORS - cfg.maxConnections - cfg.logFileHandlesMax;
  const byFiles = Math.floor(spare / DESCRIPTORS_PER_PARTITION);
  const arithmetic = `open-file limit ${nofile} - ${BROKER_RESERVED_DESCRIPTORS} for the broker - max.connections ${cfg.maxConnections} - log.file.handles.max ${cfg.logFileHandlesMax}, ${DESCRIPTORS_PER_PARTITION} per partition`;
  if (byFiles < 1) {
    throw rillError(
      "INVALID_CONFIG",
      `max.partitions: the open-file limit (ulimit -n) ${nofile} leaves no descriptor for partitions (${arithmetic}); raise ulimit -n or lower max.connections / log.file.handles.max`,
    );
  }
  if (byFiles >= cfg.maxPartitions) return { max: cfg.maxPartitions, why: `${cfg.maxPartitions} configured` };
  return { max: byFiles, why: `${byFiles} = ${arithmetic}; configured ${cfg.maxPartitions}` };
}
