/**
 * How long a refused Basic login takes for a wrong password and for an unknown user (they must
 * cost the same, so the answer's timing does not tell which users exist), and a cached login.
 * A benchmark, not a test: `bun bench/auth-timing.ts [--attempts 50]`.
 */
import { ManualClock } from "../src/base/clock.ts";
import { SeededRandom } from "../src/base/random.ts";
import { Authenticator } from "../src/security/authenticator.ts";
import { scramCredential, verifyPasswordAsync } from "../src/security/scram.ts";
import { median, parseArgs } from "./lib.ts";

const o = parseArgs(process.argv.slice(2), { attempts: 50 }, import.meta.url);
const credential = scramCredential("s3cret", "SCRAM-SHA-256", 4096, Buffer.alloc(32, 7));
const auth = new Authenticator({
  methods: ["password"],
  allowPlaintextPasswords: true,
  clock: new ManualClock(),
  random: new SeededRandom(1),
  credentials: (u) => (u === "alice" ? [credential] : []),
  verify: verifyPasswordAsync,
  rateLimit: { burst: 1e9, perSecond: 1 },
});
const basic = (s: string) => `Basic ${Buffer.from(s).toString("base64")}`;

async function timeOf(authorization: string): Promise<number> {
  const t = performance.now();
  await auth.authenticate({ authorization, host: "127.0.0.1", tls: true });
  return performance.now() - t;
}

const wrong: number[] = [];
const unknown: number[] = [];
for (let i = 0; i < o.attempts; i++) {
  wrong.push(await timeOf(basic("alice:nope")));
  unknown.push(await timeOf(basic(`mallory${i}:nope`)));
}
await timeOf(basic("alice:s3cret"));
const cached: number[] = [];
for (let i = 0; i < o.attempts; i++) cached.push(await timeOf(basic("alice:s3cret")));
console.log(
  `median ms over ${o.attempts}: wrong password ${median(wrong).toFixed(2)}, unknown user ${median(unknown).toFixed(2)}, cached login ${median(cached).toFixed(3)}`,
);
