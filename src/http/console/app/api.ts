/// <reference lib="dom" />
/**
 * The console's calls to `/api/v1/`: JSON in and out, the login kept for the tab
 * (sessionStorage) and sent as HTTP Basic; a 401 sends the app to its login page.
 */

const LOGIN_KEY = "rill.console.login";

/** An API error answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

/** Called on a 401 (set by the app: show the login page). */
export const auth = { onUnauthenticated: (_e: ApiError): void => {} };

/** Remembers the login for this tab. */
export function saveLogin(user: string, password: string): void {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  sessionStorage.setItem(LOGIN_KEY, btoa(bin));
}

/** Forgets the login. */
export function clearLogin(): void {
  sessionStorage.removeItem(LOGIN_KEY);
}

/** Calls the API: `path` under /api/v1/, `body` sent as JSON. Rejects with an ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  const login = sessionStorage.getItem(LOGIN_KEY);
  if (login) headers.authorization = `Basic ${login}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`/api/v1/${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const json = (await res.json().catch(() => null)) as { error?: { name: string; message: string } } | null;
  if (!res.ok) {
    const e = new ApiError(res.status, json?.error?.name ?? `HTTP ${res.status}`, json?.error?.message ?? res.statusText);
    if (res.status === 401) auth.onUnauthenticated(e);
    throw e;
  }
  return json as T;
}

/** `encodeURIComponent`, for names in paths. */
export const enc = encodeURIComponent;
