/**
 * `rill produce TOPIC`: one record per stdin line. With `--key-separator SEP` each line is
 * KEY SEP VALUE (split at the first SEP; a line without it is an error, as in Kafka's console
 * producer). Reading pauses while the producer's buffer is full, so a large input never sits in
 * memory. The first failed record stops the command: the error is printed and the exit is 1.
 */

import * as readline from "node:readline";
import { Producer, type ProducerOptions } from "../client/producer.ts";
import { type Context, clientOptions } from "./context.ts";
import { CliError } from "./output.ts";
import { checkPartition } from "./topic-commands.ts";

/** Options of `produce`. */
export interface ProduceOptions {
  readonly keySeparator?: string;
  readonly partition?: number;
  readonly acks: "all" | "leader" | "none";
  readonly compression: "none" | "gzip" | "snappy" | "lz4" | "zstd";
  readonly lingerMs: number;
  readonly header: Record<string, string>;
}

/** Sends stdin's lines to `topic`; resolves once all are acknowledged, rejects with the first failure. */
export async function produce(ctx: Context, topic: string, o: ProduceOptions): Promise<void> {
  const options: ProducerOptions = { ...clientOptions(ctx), acks: o.acks, compression: o.compression, lingerMs: o.lingerMs };
  const producer = new Producer(options);
  let failure: unknown = null;
  const headers = Object.keys(o.header).length > 0 ? o.header : undefined;
  try {
    const count = await producer.partitionCount(topic); // an unknown topic fails here, before reading
    if (o.partition !== undefined) checkPartition(topic, o.partition, count);
    const lines = readline.createInterface({ input: ctx.io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
    try {
      let lineNo = 0;
      for await (const line of lines) {
        lineNo++;
        const { key, value } = splitLine(line, o.keySeparator, lineNo);
        await producer.ready();
        if (failure !== null) break;
        producer.send({ topic, key, value, headers, partition: o.partition }).catch((e: unknown) => {
          failure ??= e;
        });
      }
    } finally {
      lines.close();
    }
    await producer.flush();
  } finally {
    await producer.close();
  }
  if (failure !== null) throw failure;
}

function splitLine(line: string, sep: string | undefined, lineNo: number): { key: string | null; value: string } {
  if (sep === undefined) return { key: null, value: line };
  const at = line.indexOf(sep);
  if (at < 0) throw new CliError(`stdin line ${lineNo}: no key separator ${JSON.stringify(sep)}`);
  return { key: line.slice(0, at), value: line.slice(at + sep.length) };
}
