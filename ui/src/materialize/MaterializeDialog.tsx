import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { useMutation, useQuery } from '../api/hooks';
import { MATERIALIZE_STALE, PLAN_QUERY } from '../api/queries';
import type { Plan } from '../api/types';
import { Modal } from '../components/Modal';
import { ErrorState, InlineError, Loading } from '../components/States';
import { PlanPreview } from './PlanPreview';
import { fmtCount } from '../lib/status';

/**
 * "Materialize stale": first the plan (what would run, per asset, and what is
 * blocked), then the launch, which goes to the new run.
 */
export function MaterializeDialog({ selection, scope, onClose }: { selection: string | undefined; scope: string; onClose: () => void }) {
  const navigate = useNavigate();
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [applied, setApplied] = useState<{ from: string; to: string }>({ from: '', to: '' });
  const plan = useQuery<{ plan: Plan }>(PLAN_QUERY, { selection: selection ?? null, from: applied.from || null, to: applied.to || null });
  const launch = useMutation<{ materializeStale: { id: string } }>(MATERIALIZE_STALE);

  const preview = (e: FormEvent) => {
    e.preventDefault();
    setApplied({ from, to });
  };
  const start = async () => {
    const res = await launch.run({ selection: selection ?? null, from: applied.from || null, to: applied.to || null });
    if (res) navigate(`/runs/${res.materializeStale.id}`);
  };
  const steps = plan.data?.plan.summary.steps ?? 0;
  const windowChanged = from !== applied.from || to !== applied.to;

  return (
    <Modal
      title={`Materialize stale: ${scope}`}
      onClose={onClose}
      wide
      footer={
        <>
          <InlineError message={launch.error} />
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="btn btn-primary"
            disabled={plan.loading || !!plan.error || steps === 0 || launch.running || windowChanged}
            onClick={() => void start()}
            title={windowChanged ? 'Preview the new window first' : undefined}
          >
            {launch.running ? 'Launching…' : `Launch ${fmtCount(steps)} step${steps === 1 ? '' : 's'}`}
          </button>
        </>
      }
    >
      <form className="window-form" onSubmit={preview}>
        <span className="muted">Selection</span>
        <code className="selection">{selection ?? '*'}</code>
        <label className="field inline">
          <span>From</span>
          <input type="date" name="from" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
        <label className="field inline">
          <span>To</span>
          <input type="date" name="to" value={to} onChange={(e) => setTo(e.target.value)} />
        </label>
        <button type="submit" className="btn" disabled={!windowChanged}>
          Preview
        </button>
        <span className="muted small">No window: every partition up to the newest complete one.</span>
      </form>
      {plan.loading ? <Loading what="Planning" /> : plan.error ? <ErrorState title="The plan failed" message={plan.error} onRetry={plan.refetch} /> : plan.data && <PlanPreview summary={plan.data.plan.summary} />}
    </Modal>
  );
}
