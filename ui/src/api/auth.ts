// The API token, when the server requires one: asked for once (TokenPrompt),
// kept in sessionStorage only, so it goes away with the browser session.

const storageKey = 'freshet.token';

export interface AuthState {
  /** The token in use ('' when none). */
  token: string;
  /** The server answered 401: the UI must ask for a (new) token. */
  required: boolean;
  /** The token that was tried was refused. */
  rejected: boolean;
}

type Listener = (s: AuthState) => void;

let state: AuthState = { token: readStored(), required: false, rejected: false };
const listeners = new Set<Listener>();

function readStored(): string {
  try {
    return sessionStorage.getItem(storageKey) ?? '';
  } catch {
    return '';
  }
}

function emit(next: AuthState): void {
  state = next;
  for (const l of listeners) l(state);
}

export function authState(): AuthState {
  return state;
}

export function token(): string {
  return state.token;
}

/** Records a token typed by the user and retries what waited for it. */
export function setToken(t: string): void {
  try {
    if (t) sessionStorage.setItem(storageKey, t);
    else sessionStorage.removeItem(storageKey);
  } catch {
    // storage unavailable (private mode): the token lives in memory only
  }
  emit({ token: t, required: false, rejected: false });
}

/** Called on a 401: the token is missing or wrong. */
export function markUnauthorized(): void {
  if (state.required) return;
  emit({ token: state.token, required: true, rejected: state.token !== '' });
}

export function subscribeAuth(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}
