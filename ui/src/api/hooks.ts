import { useCallback, useEffect, useRef, useState } from 'react';
import { gql, errorMessage } from './client';
import { subscribeAuth } from './auth';
import { subscribe } from './ws';

export interface QueryResult<T> {
  data: T | undefined;
  /** The last request failed (data, if any, is from before). */
  error: string | undefined;
  /** No answer yet for these variables. */
  loading: boolean;
  refetch: () => void;
}

export interface QueryOptions {
  /** Poll every pollMs while mounted (and the tab is visible). */
  pollMs?: number;
  skip?: boolean;
}

/**
 * Runs a query and keeps its answer; runs it again when the variables change,
 * on refetch(), every pollMs, and when a token is entered. The previous answer
 * stays on screen while a new one is on its way.
 */
export function useQuery<T>(query: string, variables: Record<string, unknown> = {}, opts: QueryOptions = {}): QueryResult<T> {
  const varsKey = JSON.stringify(variables);
  const [state, setState] = useState<{ key: string; data: T | undefined; error: string | undefined; done: boolean }>({
    key: '',
    data: undefined,
    error: undefined,
    done: false,
  });
  const [tick, setTick] = useState(0);
  const refetch = useCallback(() => setTick((t) => t + 1), []);
  const inFlight = useRef<AbortController | null>(null);

  useEffect(() => subscribeAuth((s) => !s.required && refetch()), [refetch]);

  useEffect(() => {
    if (opts.skip) return;
    const ctl = new AbortController();
    inFlight.current?.abort();
    inFlight.current = ctl;
    const key = query + varsKey;
    gql<T>(query, JSON.parse(varsKey) as Record<string, unknown>, ctl.signal).then(
      (data) => {
        if (!ctl.signal.aborted) setState({ key, data, error: undefined, done: true });
      },
      (e: unknown) => {
        if (ctl.signal.aborted) return;
        setState((s) => ({ key, data: s.key === key ? s.data : undefined, error: errorMessage(e), done: true }));
      },
    );
    return () => ctl.abort();
  }, [query, varsKey, tick, opts.skip]);

  useEffect(() => {
    if (!opts.pollMs || opts.skip) return;
    const id = setInterval(() => {
      if (document.visibilityState === 'visible') refetch();
    }, opts.pollMs);
    return () => clearInterval(id);
  }, [opts.pollMs, opts.skip, refetch]);

  const current = state.key === query + varsKey;
  return {
    data: current ? state.data : undefined,
    error: current ? state.error : undefined,
    loading: !current || !state.done,
    refetch,
  };
}

export interface MutationState<T> {
  run: (variables?: Record<string, unknown>) => Promise<T | undefined>;
  running: boolean;
  error: string | undefined;
  reset: () => void;
}

/** A mutation (or a one-off query) run on demand, with its progress and error. */
export function useMutation<T>(query: string): MutationState<T> {
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = useCallback(
    async (variables?: Record<string, unknown>) => {
      setRunning(true);
      setError(undefined);
      try {
        return await gql<T>(query, variables);
      } catch (e) {
        setError(errorMessage(e));
        return undefined;
      } finally {
        setRunning(false);
      }
    },
    [query],
  );
  return { run, running, error, reset: () => setError(undefined) };
}

/**
 * Subscribes while mounted and enabled; onData gets every event. Returns the
 * subscription's error, if it failed (it reconnects by itself).
 */
export function useSubscription<T>(
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  enabled = true,
): { error: string | undefined; completed: boolean } {
  const varsKey = JSON.stringify(variables);
  const handler = useRef(onData);
  handler.current = onData;
  const [error, setError] = useState<string | undefined>();
  const [completed, setCompleted] = useState(false);
  const [epoch, setEpoch] = useState(0);
  useEffect(() => subscribeAuth((s) => !s.required && setEpoch((e) => e + 1)), []);
  useEffect(() => {
    if (!enabled) return;
    setCompleted(false);
    setError(undefined);
    return subscribe<T>(query, JSON.parse(varsKey) as Record<string, unknown>, {
      next: (d) => {
        setError(undefined);
        handler.current(d);
      },
      error: setError,
      complete: () => setCompleted(true),
    });
  }, [query, varsKey, enabled, epoch]);
  return { error, completed };
}
