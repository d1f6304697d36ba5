/** A broker's internal address (issue 13, cluster membership): registered, kept in the image and its snapshot, used by peers. */
import { describe, expect, it } from "vitest";
import { decideRegisterBroker } from "../../../src/metadata/controller.ts";
import { MetadataImage, snapshotRecords } from "../../../src/metadata/image.ts";
import { peerAddress } from "../../../src/rpc/forward.ts";
import { commit } from "./cluster-helpers.ts";

function registered(): MetadataImage {
  const image = new MetadataImage();
  for (const id of [1, 2])
    commit(
      image,
      decideRegisterBroker(
        image,
        {
          nodeId: id,
          incarnationId: `i${id}`,
          address: `h${id}:9092`,
          rack: "",
          roles: ["broker"],
          ...(id === 2 ? { internalAddress: `h${id}:9093` } : {}),
        },
        () => false,
      ),
    );
  return image;
}

describe("a broker's internal address", () => {
  it("is registered, survives a snapshot, and is where peers call it (the client address without one)", () => {
    const image = registered();
    expect(image.brokers.get(2)!.internalAddress).toBe("h2:9093");
    expect(image.brokers.get(1)!.internalAddress).toBeUndefined();
    const copy = new MetadataImage();
    commit(copy, snapshotRecords(image));
    expect(copy.brokers.get(2)!.internalAddress).toBe("h2:9093");
    expect(copy.brokers.get(1)!.internalAddress).toBeUndefined();
    expect(peerAddress(copy.brokers.get(2)!)).toBe("h2:9093");
    expect(peerAddress(copy.brokers.get(1)!)).toBe("h1:9092");
  });
});
