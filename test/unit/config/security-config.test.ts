import { describe, expect, it } from "vitest";
import { checkProtectedMode, isLoopbackListen, parseBrokerConfig, validateBrokerConfig } from "../../../src/config/schema.ts";

describe("security config", () => {
  it("parses auth.methods as a list of known methods", () => {
    expect(parseBrokerConfig({ "auth.methods": "password, mtls" }).authMethods).toEqual(["password", "mtls"]);
    expect(parseBrokerConfig({ "auth.methods": "" }).authMethods).toEqual([]);
    expect(() => parseBrokerConfig({ "auth.methods": "password,kerberos" })).toThrow(
      /auth\.methods.*each item must be one of password, mtls/,
    );
    expect(() => validateBrokerConfig(parseBrokerConfig({ "auth.methods": "password,password" }))).toThrow(/names a method twice/);
  });

  it("takes super.users as User:NAME,...", () => {
    expect(parseBrokerConfig({ "super.users": "User:a,User:b" }).superUsers).toBe("User:a,User:b");
    expect(() => parseBrokerConfig({ "super.users": "alice" })).toThrow(/super\.users/);
  });

  it.each([
    ["127.0.0.1:1", true],
    ["127.8.0.3:1", true],
    ["localhost:1", true],
    ["[::1]:1", true],
    ["0.0.0.0:1", false],
    ["10.1.2.3:1", false],
    ["[::]:1", false],
    ["broker.example:1", false],
  ])("%s is loopback: %s", (addr, loopback) => expect(isLoopbackListen(addr)).toBe(loopback));

  it("protected mode: a remote listener needs authentication or allow.anonymous.remote", () => {
    const open = { authMethods: [] as ("password" | "mtls")[], allowAnonymousRemote: false };
    expect(() => checkProtectedMode(open, "listen", "0.0.0.0:9092")).toThrow(
      /listen: 0\.0\.0\.0:9092 is reachable from other machines but auth\.methods is empty.*allow\.anonymous\.remote=true/,
    );
    checkProtectedMode({ ...open, allowAnonymousRemote: true }, "listen", "0.0.0.0:9092");
    checkProtectedMode({ ...open, authMethods: ["password"] }, "listen", "0.0.0.0:9092");
    checkProtectedMode(open, "listen", "127.0.0.1:9092");
    expect(() => validateBrokerConfig(parseBrokerConfig({ listen: "10.0.0.1:9092" }))).toThrow(/INVALID_CONFIG|reachable/);
  });
});
