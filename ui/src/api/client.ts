// GraphQL over HTTP: every query and mutation is a POST with a JSON body (the
// server takes mutations only that way).
import { markUnauthorized, token } from './auth';

export type ErrorKind = 'network' | 'http' | 'graphql' | 'unauthorized';

export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly status: number | undefined;
  constructor(kind: ErrorKind, message: string, status?: number) {
    super(message);
    this.name = 'ApiError';
    this.kind = kind;
    this.status = status;
  }
}

interface GraphQLResponse<T> {
  data?: T | null;
  errors?: { message: string }[];
}

export const endpoint = '/graphql';

// Answers asked for before the app rendered (see boot.ts), taken once by the
// first identical request within a few seconds.
const prefetched = new Map<string, { at: number; answer: Promise<unknown> }>();
const PREFETCH_TTL_MS = 5000;

function requestKey(query: string, variables: Record<string, unknown> | undefined): string {
  return `${query}\u0000${JSON.stringify(variables ?? {})}`;
}

/** Sends a query now, for the page about to ask for it; returns its answer too. */
export function prefetch<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const answer = send<T>(query, variables);
  answer.catch(() => undefined);
  prefetched.set(requestKey(query, variables), { at: Date.now(), answer });
  return answer;
}

export async function gql<T>(query: string, variables?: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  const key = requestKey(query, variables);
  const early = prefetched.get(key);
  if (early) {
    prefetched.delete(key);
    if (Date.now() - early.at < PREFETCH_TTL_MS) return early.answer as Promise<T>;
  }
  return send<T>(query, variables, signal);
}

async function send<T>(query: string, variables?: Record<string, unknown>, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let resp: Response;
  try {
    resp = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }), signal: signal ?? null });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError('network', `cannot reach the Freshet server (${e instanceof Error ? e.message : String(e)})`);
  }
  if (resp.status === 401) {
    markUnauthorized();
    throw new ApiError('unauthorized', 'this server needs an API token', 401);
  }
  let body: GraphQLResponse<T>;
  try {
    body = (await resp.json()) as GraphQLResponse<T>;
  } catch {
    throw new ApiError('http', `the server answered ${resp.status} ${resp.statusText} without a GraphQL response`, resp.status);
  }
  if (body.errors && body.errors.length > 0) {
    throw new ApiError('graphql', body.errors.map((e) => e.message).join('; '), resp.status);
  }
  if (!resp.ok || body.data == null) {
    throw new ApiError('http', `the server answered ${resp.status} ${resp.statusText}`, resp.status);
  }
  return body.data;
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
