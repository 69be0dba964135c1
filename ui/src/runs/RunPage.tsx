import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Link, useNavigate, useSearchParams } from 'react-router';
import { useMutation, useQuery, useSubscription } from '../api/hooks';
import { CANCEL_RUN, RETRY_RUN, RUN_EVENTS, RUN_QUERY } from '../api/queries';
import type { Run, RunEvent, RunStatus, Step, StepCounts } from '../api/types';
import { PageHeader } from '../components/PageHeader';
import { HealthBadge } from '../components/StatusBadge';
import { EmptyState, ErrorState, InlineError, Loading } from '../components/States';
import { TimeAbs } from '../components/TimeText';
import { elapsedBetween, fmtElapsed, shortId } from '../lib/format';
import { describeKeys } from '../lib/ranges';
import { fmtCount, isRunFinished, runHealth, stepHealth } from '../lib/status';
import { LogViewer } from './LogViewer';
import { StepTimeline } from './StepTimeline';
import { StepsTable } from './StepsTable';

function countSteps(steps: Step[]): StepCounts {
  const c: StepCounts = { pending: 0, ready: 0, running: 0, succeeded: 0, failed: 0, skippedFresh: 0, upstreamFailed: 0, canceled: 0, total: steps.length };
  for (const s of steps) {
    switch (s.status) {
      case 'PENDING':
        c.pending++;
        break;
      case 'READY':
        c.ready++;
        break;
      case 'RUNNING':
        c.running++;
        break;
      case 'SUCCEEDED':
        c.succeeded++;
        break;
      case 'FAILED':
        c.failed++;
        break;
      case 'SKIPPED_FRESH':
        c.skippedFresh++;
        break;
      case 'UPSTREAM_FAILED':
        c.upstreamFailed++;
        break;
      case 'CANCELED':
        c.canceled++;
        break;
    }
  }
  return c;
}

/** Ticks every second while on, for durations of what still runs. */
function useNow(on: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!on) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [on]);
  return now;
}

/**
 * One run, live: the steps as the runEvents subscription reports them (each
 * step as it stands first, then each change), a timeline, the steps and the
 * selected step's log (?step=).
 */
export function RunPage({ runId }: { runId: string }) {
  const navigate = useNavigate();
  const [params, setParams] = useSearchParams();
  const [live, setLive] = useState<{ status: RunStatus | null; steps: Map<string, Step> }>({ status: null, steps: new Map() });
  const [finished, setFinished] = useState(false);
  const q = useQuery<{ run: Run | null }>(RUN_QUERY, { id: runId }, { pollMs: finished ? undefined : 5000 });
  const { refetch } = q;

  // Events come in bursts (a run of thousands of steps reports each as it
  // stands first): they are applied at most once per animation frame.
  const pending = useRef<{ status: RunStatus | null; steps: Step[] }>({ status: null, steps: [] });
  const flushScheduled = useRef(false);
  const flush = useCallback(() => {
    flushScheduled.current = false;
    const { status, steps } = pending.current;
    pending.current = { status: null, steps: [] };
    setLive((prev) => {
      const next = steps.length ? new Map(prev.steps) : prev.steps;
      for (const st of steps) next.set(st.id, st);
      return { status: status ?? prev.status, steps: next };
    });
  }, []);
  const onEvent = useCallback(
    (d: { runEvents: RunEvent }) => {
      const ev = d.runEvents;
      pending.current.status = ev.runStatus;
      if (ev.step) pending.current.steps.push(ev.step);
      if (!flushScheduled.current) {
        flushScheduled.current = true;
        if (document.visibilityState === 'visible') requestAnimationFrame(flush);
        else setTimeout(flush, 250);
      }
      if (isRunFinished(ev.runStatus)) {
        setFinished(true);
        refetch();
      }
    },
    [refetch, flush],
  );
  const sub = useSubscription(RUN_EVENTS, { runId }, onEvent, !finished);

  const base = q.data?.run;
  const status: RunStatus | undefined = live.status && (!base || !isRunFinished(base.status)) ? live.status : base?.status;
  useEffect(() => {
    if (base && isRunFinished(base.status)) setFinished(true);
  }, [base]);
  const steps = useMemo(() => (base ? base.steps.map((s) => live.steps.get(s.id) ?? s) : []), [base, live.steps]);
  const counts = useMemo(() => countSteps(steps), [steps]);
  const now = useNow(!!status && !isRunFinished(status));
  const firstFailed = steps.find((s) => s.status === 'FAILED');
  const selectedId = params.get('step') ?? firstFailed?.id;
  const selected = steps.find((s) => s.id === selectedId);

  const cancel = useMutation<{ cancelRun: { id: string } }>(CANCEL_RUN);
  const retry = useMutation<{ retryRun: { id: string } }>(RETRY_RUN);

  if (q.error && !base) return <ErrorState title="The run could not be loaded" message={q.error} onRetry={refetch} />;
  if (!q.data) return <Loading what="Loading the run" />;
  if (!base || !status) return <EmptyState title={`No run ${runId}`}>It may have been removed. <Link to="/runs">All runs</Link></EmptyState>;

  const selectStep = (id: string) =>
    setParams((p) => {
      const n = new URLSearchParams(p);
      n.set('step', id);
      return n;
    });
  const done = counts.succeeded + counts.skippedFresh + counts.failed + counts.upstreamFailed + counts.canceled;
  const duration = elapsedBetween(base.startedAt ?? base.createdAt, base.finishedAt, now);

  return (
    <div className="page page-run" data-run-status={status}>
      <PageHeader
        title={
          <span className="row gap">
            Run <span className="mono">{shortId(base.id)}</span> <HealthBadge health={runHealth(status)} label={status} />
          </span>
        }
        subtitle={
          <span className="row gap wrap">
            <span>
              {base.trigger}, created <TimeAbs at={base.createdAt} />
            </span>
            <code className="selection">{base.selection || '*'}</code>
            {(base.from || base.to) && (
              <span>
                {base.from ?? '…'} → {base.to ?? '…'}
              </span>
            )}
            {base.force && <span className="badge tone-info">forced</span>}
            {base.backfillId && (
              <Link to={`/backfills/${base.backfillId}`}>backfill {shortId(base.backfillId)}</Link>
            )}
            {base.parentRunId && <Link to={`/runs/${base.parentRunId}`}>retry of {shortId(base.parentRunId)}</Link>}
          </span>
        }
        actions={
          <>
            <InlineError message={cancel.error ?? retry.error} />
            {!isRunFinished(status) && (
              <button type="button" className="btn btn-danger" disabled={cancel.running} onClick={() => void cancel.run({ id: base.id }).then(() => refetch())}>
                {cancel.running ? 'Canceling…' : 'Cancel run'}
              </button>
            )}
            {(status === 'FAILED' || status === 'CANCELED') && (
              <button
                type="button"
                className="btn"
                disabled={retry.running}
                onClick={() =>
                  void retry.run({ id: base.id, failedOnly: true }).then((r) => {
                    if (r) navigate(`/runs/${r.retryRun.id}`);
                  })
                }
              >
                Retry failed steps
              </button>
            )}
          </>
        }
      />
      <div className="run-stats">
        <Stat label="Steps" value={`${fmtCount(done)} / ${fmtCount(counts.total)}`} />
        <Stat label="Succeeded" value={counts.succeeded} health="fresh" />
        <Stat label="Skipped fresh" value={counts.skippedFresh} />
        <Stat label="Running" value={counts.running} health="running" />
        <Stat label="Waiting" value={counts.pending + counts.ready} />
        <Stat label="Failed" value={counts.failed} health="failed" />
        <Stat label="Upstream failed" value={counts.upstreamFailed} />
        <Stat label="Canceled" value={counts.canceled} />
        <Stat label="Duration" value={duration != null ? fmtElapsed(duration) : '—'} />
      </div>
      <div className="progress" aria-label="Progress">
        <div className="progress-fill" style={{ width: `${counts.total ? (done / counts.total) * 100 : 0}%` }} />
      </div>
      {sub.error && !finished && <p className="muted small">Live updates interrupted ({sub.error}); refreshing every 5 seconds.</p>}
      <section className="card">
        <h2>Timeline</h2>
        <StepTimeline steps={steps} now={now} runStart={base.startedAt} runEnd={base.finishedAt} selected={selected?.id} onSelect={selectStep} />
      </section>
      <div className="run-grid">
        <section className="card">
          <h2>Steps</h2>
          <StepsTable steps={steps} now={now} selected={selected?.id} onSelect={selectStep} />
        </section>
        <section className="card">
          {selected ? <StepDetail step={selected} now={now} /> : <EmptyState title="No step selected">Click a step or a bar of the timeline to read its log.</EmptyState>}
        </section>
      </div>
    </div>
  );
}

function Stat({ label, value, health }: { label: string; value: number | string; health?: 'fresh' | 'running' | 'failed' }) {
  return (
    <div className={`stat${health && value !== 0 ? ` stat-${health}` : ''}`}>
      <span className="muted small">{label}</span>
      <strong>{typeof value === 'number' ? fmtCount(value) : value}</strong>
    </div>
  );
}

function StepDetail({ step: s, now }: { step: Step; now: number }) {
  const live = s.status === 'RUNNING' || s.status === 'READY' || s.status === 'PENDING';
  const d = elapsedBetween(s.startedAt, s.finishedAt, now);
  return (
    <div className="step-detail" data-testid="step-detail" data-step={s.id}>
      <h2 className="row gap">
        <Link to={`/asset/${s.asset}${s.partitions.length === 1 ? `?partition=${encodeURIComponent(s.partitions[0]!)}` : ''}`} className="mono">
          {s.asset}
        </Link>
        <span className="mono small">{describeKeys(s.partitions)}</span>
        <HealthBadge health={stepHealth(s.status)} label={s.status} />
      </h2>
      <p className="small">
        Attempt <strong>{s.attempt}</strong> of {s.maxAttempts}
        {s.attempt > 1 && ` (${s.attempt - 1} ${s.attempt - 1 === 1 ? 'retry' : 'retries'})`}
        {d != null && ` · ${fmtElapsed(d)}`}
        {s.startedAt && (
          <>
            {' '}
            · started <TimeAbs at={s.startedAt} />
          </>
        )}
      </p>
      {s.error && (
        <pre className="step-error" role="alert">
          {s.error}
        </pre>
      )}
      <LogViewer key={s.id} stepId={s.id} live={live} />
    </div>
  );
}
