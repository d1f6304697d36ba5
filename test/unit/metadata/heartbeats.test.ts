import { describe, expect, it } from "vitest";
import { BrokerHeartbeats } from "../../../src/metadata/heartbeats.ts";
import { clusterOf, register } from "./cluster-helpers.ts";

describe("BrokerHeartbeats", () => {
  it("counts a broker alive for the session timeout after its last contact", () => {
    const hb = new BrokerHeartbeats();
    expect(hb.isAlive(1, 0, 100)).toBe(false);
    hb.touch(1, 1000);
    expect(hb.isAlive(1, 1100, 100)).toBe(true);
    expect(hb.isAlive(1, 1101, 100)).toBe(false);
    hb.touch(1, 1101);
    expect(hb.isAlive(1, 1150, 100)).toBe(true);
  });

  it("lists the unfenced brokers whose session expired or that were never heard from since a reset", () => {
    const image = clusterOf([1, 2, 3]);
    register(image, 4); // fenced: never expires
    const hb = new BrokerHeartbeats();
    expect(hb.expired(image, 0, 100)).toEqual([1, 2, 3]);
    hb.reset([1, 2, 3, 4], 1000);
    expect(hb.expired(image, 1100, 100)).toEqual([]);
    hb.touch(2, 1050);
    expect(hb.expired(image, 1120, 100)).toEqual([1, 3]);
    // A newly elected controller gives everyone a fresh grace period, and forgets the rest.
    hb.reset([3], 5000);
    expect(hb.expired(image, 5000, 100)).toEqual([1, 2]);
    expect(hb.isAlive(3, 5100, 100)).toBe(true);
  });

  it("extend moves every last contact later (time a stalled controller could not listen)", () => {
    const hb = new BrokerHeartbeats();
    hb.touch(1, 1000);
    hb.touch(2, 1050);
    hb.extend(500);
    expect(hb.isAlive(1, 1600, 100)).toBe(true);
    expect(hb.isAlive(1, 1601, 100)).toBe(false);
    expect(hb.isAlive(2, 1650, 100)).toBe(true);
    expect(hb.isAlive(3, 1650, 100)).toBe(false);
  });
});
