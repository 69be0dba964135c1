// Subscriptions over a websocket (graphql-transport-ws). The token, when there is
// one, goes in connection_init: a browser cannot set headers on a websocket.
import { createClient, type Client } from 'graphql-ws';
import { subscribeAuth, token } from './auth';

let client: Client | null = null;
let clientToken = '';

function wsURL(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/graphql`;
}

function getClient(): Client {
  const t = token();
  if (client && clientToken === t) return client;
  client?.dispose();
  clientToken = t;
  client = createClient({
    url: wsURL(),
    lazy: true,
    lazyCloseTimeout: 3000,
    retryAttempts: 1_000_000,
    retryWait: async (retries) => {
      await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** Math.min(retries, 5))));
    },
    shouldRetry: () => true,
    connectionParams: () => (t ? { Authorization: `Bearer ${t}` } : {}),
  });
  return client;
}

// A new token: the next subscription connects with it.
subscribeAuth((s) => {
  if (client && s.token !== clientToken) {
    client.dispose();
    client = null;
  }
});

export interface SubscriptionHandlers<T> {
  next: (data: T) => void;
  error?: (message: string) => void;
  complete?: () => void;
}

/** Subscribes to one operation; returns what ends it. */
export function subscribe<T>(query: string, variables: Record<string, unknown>, h: SubscriptionHandlers<T>): () => void {
  return getClient().subscribe<T>(
    { query, variables },
    {
      next: (res) => {
        if (res.errors && res.errors.length > 0) {
          h.error?.(res.errors.map((e) => e.message).join('; '));
          return;
        }
        if (res.data) h.next(res.data as T);
      },
      error: (err) => {
        const msg = err instanceof Error ? err.message : err instanceof CloseEvent ? `websocket closed (${err.code} ${err.reason})` : 'subscription failed';
        h.error?.(msg);
      },
      complete: () => h.complete?.(),
    },
  );
}
