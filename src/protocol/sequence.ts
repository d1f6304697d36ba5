/**
 * Producer sequence numbers as Kafka defines them: a batch's records carry consecutive sequences
 * from its baseSequence, and sequences wrap from 2^31-1 back to 0. Producers (which assign them)
 * and brokers (which check them) share this arithmetic.
 */

/** The largest sequence number; the next one after it is 0. */
export const SEQUENCE_MAX = 0x7fffffff;

/** `sequence + delta`, wrapping from 2^31-1 to 0 as Kafka's DefaultRecordBatch.incrementSequence. */
export function incrementSequence(sequence: number, delta: number): number {
  if (sequence > SEQUENCE_MAX - delta) return delta - (SEQUENCE_MAX - sequence) - 1;
  return sequence + delta;
}
