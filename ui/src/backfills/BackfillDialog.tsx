import { useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router';
import { useMutation } from '../api/hooks';
import { LAUNCH_BACKFILL } from '../api/queries';
import { Modal } from '../components/Modal';
import { InlineError } from '../components/States';
import { dayNumber, dayString } from '../lib/partitions';

function lastWeek(): { from: string; to: string } {
  const today = Math.floor(Date.now() / 86_400_000);
  return { from: dayString(today - 7), to: dayString(today - 1) };
}

/** Launches a backfill: a selection over a date range, a mode and a parallelism. */
export function BackfillDialog({ selection, onClose }: { selection: string | undefined; onClose: () => void }) {
  const navigate = useNavigate();
  const initial = lastWeek();
  const [sel, setSel] = useState(selection ?? '*');
  const [from, setFrom] = useState(initial.from);
  const [to, setTo] = useState(initial.to);
  const [mode, setMode] = useState<'missing_and_stale' | 'all'>('missing_and_stale');
  const [parallel, setParallel] = useState(4);
  const launch = useMutation<{ launchBackfill: { id: string } }>(LAUNCH_BACKFILL);

  let problem: string | undefined;
  if (!from || !to) problem = 'Choose both days of the range.';
  else if (dayNumber(from) > dayNumber(to)) problem = 'The range ends before it starts.';
  else if (!(parallel >= 1 && parallel <= 64)) problem = 'Parallelism is 1 to 64.';
  const days = !problem ? dayNumber(to) - dayNumber(from) + 1 : 0;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (problem) return;
    const res = await launch.run({ input: { selection: sel.trim() || null, from, to, mode, maxParallel: parallel } });
    if (res) navigate(`/backfills/${res.launchBackfill.id}`);
  };

  return (
    <Modal title="New backfill" onClose={onClose}>
      <form className="form" onSubmit={(e) => void submit(e)} aria-label="Backfill">
        <label className="field">
          <span>Selection</span>
          <input name="selection" value={sel} onChange={(e) => setSel(e.target.value)} placeholder="* , group:sales, +sales/daily_report" spellCheck={false} />
        </label>
        <div className="field-row">
          <label className="field">
            <span>From</span>
            <input type="date" name="from" value={from} onChange={(e) => setFrom(e.target.value)} required />
          </label>
          <label className="field">
            <span>To</span>
            <input type="date" name="to" value={to} onChange={(e) => setTo(e.target.value)} required />
          </label>
        </div>
        <fieldset className="field">
          <legend>Mode</legend>
          <label className="radio">
            <input type="radio" name="mode" value="missing_and_stale" checked={mode === 'missing_and_stale'} onChange={() => setMode('missing_and_stale')} />
            Missing and stale <span className="muted">— build only what is not fresh</span>
          </label>
          <label className="radio">
            <input type="radio" name="mode" value="all" checked={mode === 'all'} onChange={() => setMode('all')} />
            All <span className="muted">— rebuild every partition in the range</span>
          </label>
        </fieldset>
        <label className="field">
          <span>Parallelism (steps at once)</span>
          <input type="number" name="parallel" min={1} max={64} value={parallel} onChange={(e) => setParallel(Number(e.target.value))} />
        </label>
        {!problem && (
          <p className="muted small">
            {days} day{days === 1 ? '' : 's'}, partitions whose window starts from {from} to {to} in each asset's timezone.
          </p>
        )}
        <InlineError message={problem && (from || to) ? problem : launch.error} />
        <div className="form-actions">
          <button type="button" className="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="btn btn-primary" disabled={!!problem || launch.running}>
            {launch.running ? 'Launching…' : 'Launch backfill'}
          </button>
        </div>
      </form>
    </Modal>
  );
}
