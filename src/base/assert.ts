/**
 * Assertions for bugs. A failed assertion means Rill itself is wrong: it throws an
 * AssertionError that nothing should catch. Conditions a caller can cause return typed errors
 * from the catalog instead (see errors.ts).
 */
export class AssertionError extends Error {
  override name = "AssertionError";

  constructor(message?: string) {
    // A bug's stack says where it is: kept even where a caller made other errors' stacks cheap
    // (Error.stackTraceLimit 0, as the cluster simulator does).
    const limit = Error.stackTraceLimit;
    if (!(limit >= 10)) Error.stackTraceLimit = 10;
    super(message);
    Error.stackTraceLimit = limit;
  }
}

/** Crashes with `message` when `cond` is false. */
export function assert(cond: unknown, message = "assertion failed"): asserts cond {
  if (!cond) throw new AssertionError(message);
}

/** Marks a branch the type system proves unreachable. */
export function unreachable(x: never, message = "unreachable"): never {
  throw new AssertionError(`${message}: ${String(x)}`);
}
