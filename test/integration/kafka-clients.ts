/**
 * Real Kafka clients run as their own processes by the Kafka integration tests: kcat, kafkajs
 * (kafka-clients/kafkajs-client.mjs under node), confluent-kafka-python (Debian's
 * /usr/bin/python3) and @platformatic/kafka (under Bun). Each run is bounded in time.
 */
import { execFile } from "node:child_process";
import * as path from "node:path";

/** What a process printed and how it ended. */
export interface ClientRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd args` (stdin: `input`), at most `timeoutMs`. */
export function run(
  cmd: string,
  args: readonly string[],
  o: { input?: string | Buffer; timeoutMs?: number; cwd?: string } = {},
): Promise<ClientRun> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args as string[],
      { timeout: o.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, cwd: o.cwd ?? ROOT, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (o.input !== undefined) child.stdin?.end(o.input);
    else child.stdin?.end();
  });
}

export const ROOT = path.resolve(import.meta.dirname, "../..");
const KAFKAJS = path.join(import.meta.dirname, "kafka-clients", "kafkajs-client.mjs");

/** Runs a kafkajs command (see kafkajs-client.mjs) and parses its JSON line. */
export async function kafkajs<T = unknown>(broker: string, command: string, arg: unknown): Promise<T> {
  const r = await run("node", [KAFKAJS, broker, command, JSON.stringify(arg)]);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  if (r.code !== 0) throw new Error(`kafkajs ${command} failed (${r.code}): ${line} ${r.stderr}`);
  return JSON.parse(line) as T;
}

/** Runs a Python program under Debian's python3 (confluent_kafka); argv after the script. */
export function python(script: string, args: readonly string[], timeoutMs = 60_000): Promise<ClientRun> {
  return run("/usr/bin/python3", ["-c", script, ...args], { timeoutMs });
}

/** Runs a TypeScript file under Bun (@platformatic/kafka needs Node >= 22.19). */
export function bun(file: string, args: readonly string[], timeoutMs = 60_000): Promise<ClientRun> {
  return run(path.join(ROOT, "node_modules/.bin/bun"), [file, ...args], { timeoutMs });
}
