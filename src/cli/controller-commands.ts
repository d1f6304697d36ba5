/**
 * `rill cluster add-controller <node> [--directory-id ID]` and `rill cluster remove-controller
 * <node>` (issue 21): one voter of the controller quorum added or removed at a time (KIP-853's
 * AddRaftVoter / RemoveRaftVoter, run by the active controller). A node to add runs the
 * controller role and follows the metadata log; the command returns once the change committed.
 */
import { Admin } from "../client/admin.ts";
import { type Context, clientOptions } from "./context.ts";
import { write } from "./output.ts";

/** Options of both commands. */
export interface ControllerChangeOptions {
  readonly directoryId?: string;
  readonly json?: boolean;
}

/** Adds or removes one controller voter and prints the voters after the change. */
export async function changeController(ctx: Context, action: "add" | "remove", nodeId: number, o: ControllerChangeOptions): Promise<void> {
  const admin = new Admin({ ...clientOptions(ctx), requestTimeoutMs: Math.max(clientOptions(ctx).requestTimeoutMs ?? 0, 30_000) });
  try {
    const voters = action === "add" ? await admin.addController(nodeId, o.directoryId ?? "") : await admin.removeController(nodeId);
    const text = `${action === "add" ? "Added" : "Removed"} controller ${nodeId}; voters: ${voters
      .map((v) => (v.directoryId === "" ? `${v.nodeId}` : `${v.nodeId} (${v.directoryId})`))
      .join(", ")}\n`;
    await write(ctx.io.stdout, o.json ? `${JSON.stringify({ voters })}\n` : text);
  } finally {
    await admin.close();
  }
}
