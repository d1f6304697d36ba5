/**
 * Serializer and deserializer hooks: the Producer's `serializers` turn the application's keys
 * and values into bytes before a record is batched; the GroupConsumer's `deserializers` turn the
 * fetched bytes back (in the iterator and in `run`). A null key or value (a tombstone) is passed
 * through as null without calling the hook.
 *
 * Ready-made: `json<T>()` (UTF-8 JSON), `text()` (UTF-8 strings), and `protobuf(Schema)` for
 * protobuf-es messages (`Schema` is a generated `...Schema` descriptor). A deserializer that
 * throws makes the record fail: the iterator / `run` throws a RillError INVALID_RECORD naming the
 * partition, offset and the hook's message.
 */

import { type DescMessage, type MessageShape, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Errors, RillError } from "../base/errors.ts";

/** Where a value is going (or came from). */
export interface SerdeContext {
  readonly topic: string;
  /** "key" or "value". */
  readonly field: "key" | "value";
}

/** Application value → bytes (a string is sent as UTF-8). */
export type Serializer<T> = (value: T, context: SerdeContext) => Uint8Array | string;

/** Bytes → application value. */
export type Deserializer<T> = (bytes: Buffer, context: SerdeContext) => T;

/** A serializer and its deserializer. */
export interface Serde<T> {
  readonly serialize: Serializer<T>;
  readonly deserialize: Deserializer<T>;
}

/** JSON text in UTF-8. `deserialize` does not check the shape: `T` is what the writer promised. */
export function json<T = unknown>(): Serde<T> {
  return {
    serialize: (value) => JSON.stringify(value),
    deserialize: (bytes) => JSON.parse(bytes.toString("utf8")) as T,
  };
}

/** UTF-8 strings. */
export function text(): Serde<string> {
  return { serialize: (value) => value, deserialize: (bytes) => bytes.toString("utf8") };
}

/** Protobuf messages of `schema` (protobuf-es v2: the generated `FooSchema`), in the binary wire format. */
export function protobuf<Desc extends DescMessage>(schema: Desc): Serde<MessageShape<Desc>> {
  return {
    serialize: (value) => toBinary(schema, value),
    deserialize: (bytes) => fromBinary(schema, bytes),
  };
}

/** The function of a hook given as a function or a Serde. */
export function serializerOf<T>(hook: Serializer<T> | Serde<T>): Serializer<T> {
  return typeof hook === "function" ? hook : hook.serialize;
}

/** The function of a hook given as a function or a Serde. */
export function deserializerOf<T>(hook: Deserializer<T> | Serde<T>): Deserializer<T> {
  return typeof hook === "function" ? hook : hook.deserialize;
}

/** Runs a deserializer, turning its failure into INVALID_RECORD naming the record. */
export function deserializeWith<T>(
  hook: Deserializer<T> | Serde<T>,
  bytes: Buffer,
  context: SerdeContext,
  where: { readonly partition: number; readonly offset: number },
): T {
  try {
    return deserializerOf(hook)(bytes, context);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new RillError(
      Errors.INVALID_RECORD,
      `${context.field} deserializer failed for ${context.topic}-${where.partition} at offset ${where.offset}: ${why}`,
    );
  }
}
