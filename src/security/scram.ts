/**
 * SCRAM credentials (RFC 5802, RFC 7677), as Kafka stores them: never the password, only
 *
 *   SaltedPassword = PBKDF2(HMAC-H, password, salt, iterations)   (H = SHA-256 or SHA-512)
 *   ClientKey      = HMAC(SaltedPassword, "Client Key")
 *   StoredKey      = H(ClientKey)
 *   ServerKey      = HMAC(SaltedPassword, "Server Key")
 *
 * with the salt and iteration count. A password is checked by deriving StoredKey again and
 * comparing in constant time; a SCRAM exchange (Kafka SASL/SCRAM) checks the client's proof
 * against StoredKey and signs with ServerKey. The password is taken as its UTF-8 bytes, as Kafka
 * does (no SASLprep). The caller draws the salt (random bytes): this module draws no randomness.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, timingSafeEqual } from "node:crypto";
import { rillError } from "../base/errors.ts";
import { SCRAM_MECHANISMS, type ScramCredential, type ScramMechanism } from "../metadata/security-types.ts";

/** Kafka's bounds on the iteration count of a SCRAM credential. */
export const SCRAM_ITERATIONS_MIN = 4096;
export const SCRAM_ITERATIONS_MAX = 16384;
/** The iteration count used when none is given (Kafka's default). */
export const SCRAM_ITERATIONS_DEFAULT = 4096;
/** Bytes of salt the broker draws for a new credential. */
export const SCRAM_SALT_BYTES = 32;
/** Longest user name and password accepted. */
export const SCRAM_USER_NAME_CHARS_MAX = 255;
export const SCRAM_PASSWORD_BYTES_MAX = 1024;

/** The hash of a mechanism, as node:crypto names it, and its output length in bytes. */
function hashOf(mechanism: ScramMechanism): { readonly name: "sha256" | "sha512"; readonly bytes: number } {
  return mechanism === "SCRAM-SHA-256" ? { name: "sha256", bytes: 32 } : { name: "sha512", bytes: 64 };
}

/** Checks a mechanism name: UNSUPPORTED_SASL_MECHANISM for an unknown one. */
export function validateMechanism(mechanism: string): asserts mechanism is ScramMechanism {
  if (!(SCRAM_MECHANISMS as readonly string[]).includes(mechanism))
    throw rillError("UNSUPPORTED_SASL_MECHANISM", `unknown SCRAM mechanism "${mechanism}" (one of ${SCRAM_MECHANISMS.join(", ")})`);
}

/** Checks an iteration count against Kafka's bounds: UNACCEPTABLE_CREDENTIAL naming them. */
export function validateIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < SCRAM_ITERATIONS_MIN || iterations > SCRAM_ITERATIONS_MAX)
    throw rillError(
      "UNACCEPTABLE_CREDENTIAL",
      `SCRAM iterations ${iterations}: must be an integer from ${SCRAM_ITERATIONS_MIN} to ${SCRAM_ITERATIONS_MAX}`,
    );
}

/**
 * Checks a user name: UNACCEPTABLE_CREDENTIAL naming the problem. Not empty, at most 255 characters, no
 * control character, no `:` (Basic credentials and the bootstrap users file split at the first
 * `:`), and not `*` (`User:*` in an ACL means every user).
 */
export function validateUserName(name: string): void {
  const fail = (msg: string): never => {
    throw rillError("UNACCEPTABLE_CREDENTIAL", `user name ${JSON.stringify(name)}: ${msg}`);
  };
  if (name.length === 0) fail("is empty");
  if (name.length > SCRAM_USER_NAME_CHARS_MAX) fail(`is longer than ${SCRAM_USER_NAME_CHARS_MAX} characters`);
  if (/\p{Cc}/u.test(name)) fail("has a control character");
  if (name.includes(":")) fail("has a ':'");
  if (name === "*") fail("'*' is the wildcard of ACL principals, not a user");
}

/** Checks a password: UNACCEPTABLE_CREDENTIAL when empty or longer than SCRAM_PASSWORD_BYTES_MAX bytes. */
export function validatePassword(password: string): void {
  if (password.length === 0) throw rillError("UNACCEPTABLE_CREDENTIAL", "password is empty");
  if (Buffer.byteLength(password, "utf8") > SCRAM_PASSWORD_BYTES_MAX)
    throw rillError("UNACCEPTABLE_CREDENTIAL", `password is longer than ${SCRAM_PASSWORD_BYTES_MAX} bytes`);
}

function hmac(mechanism: ScramMechanism, key: Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac(hashOf(mechanism).name, key).update(data).digest();
}

function hash(mechanism: ScramMechanism, data: Uint8Array): Buffer {
  return createHash(hashOf(mechanism).name).update(data).digest();
}

function fromSalted(mechanism: ScramMechanism, salted: Uint8Array, salt: Uint8Array, iterations: number): ScramCredential {
  const clientKey = hmac(mechanism, salted, "Client Key");
  return {
    mechanism,
    salt: Buffer.from(salt).toString("base64"),
    iterations,
    storedKey: hash(mechanism, clientKey).toString("base64"),
    serverKey: hmac(mechanism, salted, "Server Key").toString("base64"),
  };
}

/**
 * The credential of a SaltedPassword computed elsewhere (Kafka's AlterUserScramCredentials sends
 * salt and SaltedPassword, not the password; a broker that salted a password passes these on to
 * the controller). The SaltedPassword must be as long as the mechanism's hash.
 */
export function credentialFromSaltedPassword(
  mechanism: ScramMechanism,
  salted: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): ScramCredential {
  validateMechanism(mechanism);
  validateIterations(iterations);
  if (salt.length === 0) throw rillError("UNACCEPTABLE_CREDENTIAL", "SCRAM salt is empty");
  const bytes = hashOf(mechanism).bytes;
  if (salted.length !== bytes)
    throw rillError("UNACCEPTABLE_CREDENTIAL", `salted password: ${salted.length} bytes, ${mechanism} needs ${bytes}`);
  return fromSalted(mechanism, salted, salt, iterations);
}

/** SaltedPassword = PBKDF2(HMAC-H, password, salt, iterations), on libuv's thread pool. */
export async function saltPassword(password: string, mechanism: ScramMechanism, iterations: number, salt: Uint8Array): Promise<Buffer> {
  checkInputs(password, mechanism, iterations, salt);
  const h = hashOf(mechanism);
  return new Promise<Buffer>((resolve, reject) =>
    pbkdf2(password, salt, iterations, h.bytes, h.name, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

function checkInputs(password: string, mechanism: ScramMechanism, iterations: number, salt: Uint8Array): void {
  validateMechanism(mechanism);
  validateIterations(iterations);
  validatePassword(password);
  if (salt.length === 0) throw rillError("UNACCEPTABLE_CREDENTIAL", "SCRAM salt is empty");
}

/** The credential of `password` (PBKDF2 runs on the calling thread: use the async form in servers). */
export function scramCredential(password: string, mechanism: ScramMechanism, iterations: number, salt: Uint8Array): ScramCredential {
  checkInputs(password, mechanism, iterations, salt);
  const h = hashOf(mechanism);
  return fromSalted(mechanism, pbkdf2Sync(password, salt, iterations, h.bytes, h.name), salt, iterations);
}

/** `scramCredential` with PBKDF2 on libuv's thread pool, so the event loop keeps serving. */
export async function scramCredentialAsync(
  password: string,
  mechanism: ScramMechanism,
  iterations: number,
  salt: Uint8Array,
): Promise<ScramCredential> {
  return fromSalted(mechanism, await saltPassword(password, mechanism, iterations, salt), salt, iterations);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether `password` is the one `credential` was made from (StoredKey compared in constant time). */
export function verifyPassword(credential: ScramCredential, password: string): boolean {
  if (password.length === 0 || Buffer.byteLength(password, "utf8") > SCRAM_PASSWORD_BYTES_MAX) return false;
  const salt = Buffer.from(credential.salt, "base64");
  const again = scramCredential(password, credential.mechanism, credential.iterations, salt);
  return sameBytes(Buffer.from(again.storedKey, "base64"), Buffer.from(credential.storedKey, "base64"));
}

/** `verifyPassword` with PBKDF2 on libuv's thread pool. */
export async function verifyPasswordAsync(credential: ScramCredential, password: string): Promise<boolean> {
  if (password.length === 0 || Buffer.byteLength(password, "utf8") > SCRAM_PASSWORD_BYTES_MAX) return false;
  const salt = Buffer.from(credential.salt, "base64");
  const again = await scramCredentialAsync(password, credential.mechanism, credential.iterations, salt);
  return sameBytes(Buffer.from(again.storedKey, "base64"), Buffer.from(credential.storedKey, "base64"));
}

/**
 * The server's side of a SCRAM exchange's last step (RFC 5802 §3): whether the client's proof
 * for `authMessage` matches the credential — ClientSignature = HMAC(StoredKey, AuthMessage),
 * ClientKey = ClientProof XOR ClientSignature, and H(ClientKey) must equal StoredKey.
 */
export function verifyClientProof(credential: ScramCredential, authMessage: string, clientProof: Uint8Array): boolean {
  const storedKey = Buffer.from(credential.storedKey, "base64");
  const signature = hmac(credential.mechanism, storedKey, authMessage);
  if (clientProof.length !== signature.length) return false;
  const clientKey = Buffer.alloc(signature.length);
  for (let i = 0; i < signature.length; i++) clientKey[i] = clientProof[i]! ^ signature[i]!;
  return sameBytes(hash(credential.mechanism, clientKey), storedKey);
}

/** ServerSignature = HMAC(ServerKey, AuthMessage): what the server sends so the client can trust it. */
export function serverSignature(credential: ScramCredential, authMessage: string): Buffer {
  return hmac(credential.mechanism, Buffer.from(credential.serverKey, "base64"), authMessage);
}

/**
 * The credential a SCRAM exchange (Kafka SASL/SCRAM) answers for `user`: the stored one, or —
 * for a user with none — a fake one derived from `fakeKey` (a secret the broker draws once), so
 * that an unknown user gets a server-first message like a real user's: a salt that is the same
 * on every attempt (a salt that changed per attempt would tell the user does not exist), the
 * default iteration count, and keys no client proof matches. The exchange then fails at the
 * proof, with the same answer as a wrong password.
 */
export function exchangeCredential(
  stored: ScramCredential | undefined,
  user: string,
  mechanism: ScramMechanism,
  fakeKey: Uint8Array,
): ScramCredential {
  if (stored !== undefined) return stored;
  const derive = (label: string, bytes: number): string =>
    createHmac("sha512", fakeKey).update(`${label}\0${mechanism}\0${user}`).digest().subarray(0, bytes).toString("base64");
  const h = hashOf(mechanism);
  return {
    mechanism,
    salt: derive("salt", SCRAM_SALT_BYTES),
    iterations: SCRAM_ITERATIONS_DEFAULT,
    storedKey: derive("stored-key", h.bytes),
    serverKey: derive("server-key", h.bytes),
  };
}
