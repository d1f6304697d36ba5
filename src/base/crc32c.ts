/** CRC32C (Castagnoli), as Kafka's RecordBatch v2 uses, from the native `@node-rs/crc32`. */
import { crc32c as nativeCrc32c } from "@node-rs/crc32";

/** CRC32C of `buf`, as an unsigned 32-bit integer. */
export function crc32c(buf: Uint8Array): number {
  return nativeCrc32c(buf as Buffer) >>> 0;
}
