/**
 * `rill broker start`: builds the broker configuration from, in rising precedence, the defaults,
 * a config file, `RILL_*` environment variables and command-line flags; starts the broker with
 * pino logs; and shuts it down gracefully on SIGTERM or SIGINT.
 *
 * Config file: `.json` (an object of key → value) or Kafka-style `.properties` (key=value
 * lines, `#` comments). Environment: `RILL_` + the key upper-cased with `.` → `_`, e.g.
 * `RILL_DATA_DIR`, `RILL_LOG_TAIL_CACHE_BYTES`. Unknown keys and bad values stop the start with
 * a message naming the key and where it came from.
 */
import * as nodeFs from "node:fs";
import { RillError, rillError } from "../base/errors.ts";
import { brokerConfigFromEnv, parseBrokerConfig, validateBrokerConfig, type BrokerConfig } from "../config/schema.ts";
import { Broker } from "./broker.ts";
import { restartWithCollectorOptions } from "./gc-pacer.ts";
import { openFileLimit } from "./process-info.ts";
import { createBrokerLog } from "./log.ts";

/** What the command line gives. */
export interface RunOptions {
  readonly dataDir?: string | undefined;
  readonly listen?: string | undefined;
  readonly configFile?: string | undefined;
  readonly nodeId?: string | number | undefined;
  /** `process.roles`, e.g. "broker,controller". */
  readonly roles?: string | undefined;
  /** `controller.quorum.voters`, e.g. "1@127.0.0.1:50051,2@127.0.0.1:50052". */
  readonly controllerQuorum?: string | undefined;
  /** Any broker keys, as key=value (flags `--set key=value`). */
  readonly set?: readonly string[] | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Restart the process in place for the runtime's collector options (`gc.bun.eden.ratio`, under
   * Bun) before anything starts: only for a process that is the broker, as `rill broker start`.
   */
  readonly applyRuntimeOptions?: boolean;
  /** Install SIGTERM/SIGINT handlers (default true). */
  readonly handleSignals?: boolean;
}

/** Reads a config file into raw key → value pairs. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = nodeFs.readFileSync(path, "utf8");
  } catch (e) {
    throw rillError("INVALID_CONFIG", `--config: cannot read ${path}: ${(e as Error).message}`);
  }
  if (path.endsWith(".json")) {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw rillError("INVALID_CONFIG", `--config: ${path} is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v))
      throw rillError("INVALID_CONFIG", `--config: ${path} must hold a JSON object of key: value`);
    return v as Record<string, unknown>;
  }
  const out: Record<string, unknown> = {};
  text.split(/\r?\n/).forEach((line, i) => {
    const l = line.trim();
    if (l === "" || l.startsWith("#") || l.startsWith("!")) return;
    const eq = l.indexOf("=");
    if (eq < 0) throw rillError("INVALID_CONFIG", `--config: ${path}:${i + 1}: expected key=value, got "${l}"`);
    out[l.slice(0, eq).trim()] = l.slice(eq + 1).trim();
  });
  return out;
}

/**
 * `RILL_*` variables that name broker keys, as raw key → value pairs; a variable of a renamed key
 * (RILL_MESSAGE_MAX_BYTES) is refused, naming the new one (config/schema.ts `brokerConfigFromEnv`).
 */
export const configFromEnv = brokerConfigFromEnv;

/** Layers defaults, file, environment and flags; each layer validated with its source named. */
export function resolveConfig(opts: RunOptions): BrokerConfig {
  let cfg = parseBrokerConfig({});
  const layer = (raw: Record<string, unknown> | (() => Record<string, unknown>), source: string): void => {
    try {
      cfg = parseBrokerConfig(typeof raw === "function" ? raw() : raw, cfg);
    } catch (e) {
      if (e instanceof RillError) throw new RillError(e.kind, `${source}: ${e.message}`);
      throw e;
    }
  };
  if (opts.configFile) layer(readConfigFile(opts.configFile), opts.configFile);
  layer(() => configFromEnv(opts.env ?? process.env), "environment");
  const flags: Record<string, unknown> = {};
  if (opts.dataDir !== undefined) flags["data.dir"] = opts.dataDir;
  if (opts.listen !== undefined) flags["listen"] = opts.listen;
  if (opts.nodeId !== undefined) flags["node.id"] = String(opts.nodeId);
  if (opts.roles !== undefined) flags["process.roles"] = opts.roles;
  if (opts.controllerQuorum !== undefined) flags["controller.quorum.voters"] = opts.controllerQuorum;
  for (const kv of opts.set ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw rillError("INVALID_CONFIG", `--set: expected key=value, got "${kv}"`);
    flags[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
  }
  layer(flags, "flags");
  try {
    validateBrokerConfig(cfg);
  } catch (e) {
    if (e instanceof RillError) throw new RillError(e.kind, `configuration: ${e.message}`);
    throw e;
  }
  return cfg;
}

/**
 * A start that ran out of file descriptors (EMFILE/ENFILE) as one line naming the open-file
 * limit and what to change; any other error as it is.
 */
export function startupError(e: unknown, nofile: number | null = openFileLimit()): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "EMFILE" && code !== "ENFILE") return e;
  const limit = code === "ENFILE" ? "the system's open-file table" : `the open-file limit (ulimit -n ${nofile ?? "unknown"})`;
  return rillError(
    "KAFKA_STORAGE_ERROR",
    `cannot start: ${limit} was reached (${(e as Error).message.split("\n")[0]}); raise ulimit -n, or lower max.connections, log.file.handles.max or the partitions in the data directory`,
  );
}

/** Starts a broker as a long-running process. Resolves once it serves. */
export async function runBroker(opts: RunOptions = {}): Promise<Broker> {
  const config = resolveConfig(opts);
  if (opts.applyRuntimeOptions === true)
    restartWithCollectorOptions({
      edenRatio: config.gcBunEdenRatio,
      generational: config.gcBunGenerational,
      timerIntervalMs: config.gcBunTimerIntervalMs,
    });
  const log = createBrokerLog(config);
  let broker: Broker;
  try {
    broker = await Broker.start({ dataDir: config.dataDir, listen: config.listen, config, log });
  } catch (e) {
    throw startupError(e);
  }
  if (opts.handleSignals ?? true) {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, "signal received");
      broker.close().then(
        () => process.exit(0),
        (e: unknown) => {
          log.error({ err: e }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  }
  return broker;
}
