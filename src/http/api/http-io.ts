/**
 * The JSON API's request and answer plumbing: a problem (a catalog error with the HTTP status it
 * is answered with), the JSON body of a request read within a byte bound, and the answers.
 *
 * Every refusal names what was wrong and is answered before anything changes:
 * - a method the path does not serve: 405 with `Allow` listing the ones it does;
 * - a body larger than `API_BODY_BYTES_MAX`: 413 — refused on its `content-length` before a byte
 *   is read, or as soon as a chunked body passes the bound (the rest is not read; the connection
 *   is closed after the answer);
 * - a body that is not `application/json`: 415; one that does not parse: 400 with the parser's
 *   reason; one of the wrong shape: 400 naming the field (zod's issues).
 *
 * Requiring `application/json` is also what keeps another web site from changing anything
 * through a browser that can reach the console: a page may send a cross-site form (urlencoded,
 * multipart, text/plain) without asking, but a JSON body, like PATCH and DELETE, needs a CORS
 * preflight, which this API never grants.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import { RillError, rillError } from "../../base/errors.ts";
import { httpStatusOf, sendJson } from "../router.ts";

/** The largest request body the API reads (a topic with its configs is a few KiB). */
export const API_BODY_BYTES_MAX = 64 * 1024;

/** A refusal: a catalog error, the HTTP status it is answered with, and extra headers. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly error: RillError,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error.message);
  }
}

/** INVALID_REQUEST answered with `status` (default 400). */
export function badRequest(message: string, status = 400, headers: Record<string, string> = {}): ApiProblem {
  return new ApiProblem(status, rillError("INVALID_REQUEST", message), headers);
}

/** Writes `e` (a problem, a RillError, or anything else as UNKNOWN_SERVER_ERROR 500) as the JSON error answer. */
export function sendProblem(res: ServerResponse, e: unknown): void {
  const problem = e instanceof ApiProblem ? e : null;
  const err = problem ? problem.error : RillError.from(e);
  const status = problem ? problem.status : httpStatusOf(err);
  sendJson(
    res,
    status,
    { error: { code: err.kind.code, name: err.kind.name, message: err.message, retriable: err.kind.retriable } },
    {
      ...(problem?.headers ?? {}),
    },
  );
}

/** Whether a content type is JSON (`application/json`, with or without parameters). */
function isJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || type.endsWith("+json");
}

/** The body's bytes, at most `limit`; rejects with a 413 problem as soon as it is longer. */
export function readBody(req: IncomingMessage, limit = API_BODY_BYTES_MAX): Promise<Buffer> {
  const tooLarge = (): ApiProblem =>
    new ApiProblem(413, rillError("RECORD_LIST_TOO_LARGE", `request body: larger than ${limit} bytes, the most this API reads`), {
      connection: "close",
    });
  const declared = req.headers["content-length"];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > limit) {
        cleanup();
        req.pause();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, bytes));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(badRequest(`request body: ${e.message}`));
    };
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** The request's JSON body checked against `schema`; a problem (413, 415, 400) otherwise. */
export async function readJson<S extends z.ZodType>(req: IncomingMessage, schema: S, limit = API_BODY_BYTES_MAX): Promise<z.output<S>> {
  if (!isJson(req.headers["content-type"]))
    throw badRequest(`request body: content-type must be application/json, not ${req.headers["content-type"] ?? "none"}`, 415);
  const bytes = await readBody(req, limit);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8"));
  } catch (e) {
    throw badRequest(`request body: not valid JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw badRequest(`request body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

/** Zod's issues as one line: `partitions: expected number, received string; name: ...`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(body)"}: ${i.message}`)
    .join("; ");
}

/** An integer query parameter within [min, max], `fallback` when absent; a 400 problem otherwise. */
export function intParam(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw badRequest(`${name}: "${raw}" is not an integer in [${min}, ${max}]`);
  return n;
}
