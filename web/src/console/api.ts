/** The console's API client: one place that adds the key, parses the API's error shape, and pages lists. */

export interface Session {
  api: string;
  key: string;
  projectId: string;
  projectName: string;
}

export interface Page<T> {
  results: T[];
  next_cursor: string | null;
}

/** An error the API answered (`{"error": {"code", "message", "details"}}`) or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const STORE = "threadline:console";

/** The session's sign-in, kept in sessionStorage only: it ends with the tab, the key never touches localStorage. */
export function loadSession(): Session | null {
  const raw = sessionStorage.getItem(STORE);
  return raw ? (JSON.parse(raw) as Session) : null;
}

export function saveSession(session: Session | null): void {
  if (session) sessionStorage.setItem(STORE, JSON.stringify(session));
  else sessionStorage.removeItem(STORE);
}

/** Call the API; throws ApiError with the API's own message on any non-2xx answer. */
export async function call<T>(s: Pick<Session, "api" | "key">, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { "X-API-KEY": s.key };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(`${s.api}${path}`, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, "network", "The API cannot be reached: check the URL and your network.");
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (a proxy's page): the status line is all there is
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? "http", error?.message ?? `HTTP ${response.status}`);
  }
  return parsed as T;
}

/** A query string from the set values of `params` (empty strings and nulls are left out). */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined && v !== false) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** An <input type="date"> value as the start of that day in UTC (the API wants times with a zone). */
export function dayStart(value: string): string {
  return value ? `${value}T00:00:00Z` : "";
}
