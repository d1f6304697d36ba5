/**
 * A handler's scratch space: the records it decided to write, applied to a private copy of the
 * group so later decisions of the same request see their effect. The live group is never
 * touched; the copy is made on the first record.
 */
import type { GroupRecord } from "./records.ts";
import { GroupState } from "./group-state.ts";

/** Records a handler emits for one group, and the group as they would leave it. */
export class GroupTx {
  readonly groupId: string;
  readonly records: GroupRecord[] = [];
  private readonly base: GroupState | undefined;
  private scratch: GroupState | null = null;
  private empty: GroupState | null = null;

  constructor(groupId: string, base: GroupState | undefined) {
    this.groupId = groupId;
    this.base = base;
  }

  /** The group with every emitted record applied (read it again after each emit). */
  get g(): GroupState {
    if (this.scratch !== null) return this.scratch;
    if (this.base !== undefined) return this.base;
    return (this.empty ??= new GroupState(this.groupId));
  }

  /** Records `r` and applies it to the scratch copy. */
  emit(r: GroupRecord): void {
    if (this.scratch === null) this.scratch = this.base !== undefined ? this.base.clone() : new GroupState(this.groupId);
    this.scratch.apply(r);
    this.records.push(r);
  }
}
