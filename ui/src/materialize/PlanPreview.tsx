import { Link } from 'react-router';
import type { PlanSummary } from '../api/types';
import { describeSpan } from '../lib/ranges';
import { fmtCount } from '../lib/status';
import { EmptyState } from '../components/States';

function assetLink(key: string) {
  return <Link to={`/asset/${key}`}>{key}</Link>;
}

/** What a plan would run: steps per asset, and what is blocked, with why. */
export function PlanPreview({ summary: s }: { summary: PlanSummary }) {
  return (
    <div className="plan-preview" data-testid="plan-preview">
      <p className="plan-headline">
        {s.steps === 0 ? (
          <strong>Nothing to materialize</strong>
        ) : (
          <strong>
            {fmtCount(s.steps)} step{s.steps === 1 ? '' : 's'} over {fmtCount(s.partitions)} partition{s.partitions === 1 ? '' : 's'} of {s.assets.length} asset
            {s.assets.length === 1 ? '' : 's'}
          </strong>
        )}
        {s.blockedPartitions > 0 && (
          <span className="badge tone-warn">
            {fmtCount(s.blockedPartitions)} blocked partition{s.blockedPartitions === 1 ? '' : 's'}
          </span>
        )}
      </p>
      {s.steps === 0 && s.blockedPartitions === 0 && <EmptyState title="Everything selected is fresh">There is no missing or stale partition in this selection and window.</EmptyState>}
      {s.assets.length > 0 && (
        <div className="table-scroll">
          <table className="table compact">
            <thead>
              <tr>
                <th>Asset</th>
                <th className="num">Steps</th>
                <th>Partitions</th>
                <th>Why</th>
              </tr>
            </thead>
            <tbody>
              {s.assets.map((a) => (
                <tr key={a.asset} data-asset={a.asset}>
                  <td>{assetLink(a.asset)}</td>
                  <td className="num">{fmtCount(a.steps)}</td>
                  <td className="mono">{describeSpan(a.firstPartition, a.lastPartition, a.partitions)}</td>
                  <td>
                    {a.statuses.map(({ name: st, count: n }) => (
                      <span key={st} className={`badge small tone-${st === 'STALE' ? 'warn' : st === 'FORCED' ? 'info' : 'neutral'}`}>
                        {st} {fmtCount(n)}
                      </span>
                    ))}
                    {a.causes.map(({ name: k, count: n }) => (
                      <span key={k} className="cause">
                        {k} ({fmtCount(n)})
                      </span>
                    ))}
                    {a.examples.length > 0 && <div className="muted small">e.g. {a.examples.join('; ')}</div>}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {s.blocked.length > 0 && (
        <section className="blocked" data-testid="plan-blocked">
          <h3>Blocked: not built, and why</h3>
          <table className="table compact">
            <thead>
              <tr>
                <th>Asset</th>
                <th>Partitions</th>
                <th>Reason</th>
              </tr>
            </thead>
            <tbody>
              {s.blocked.map((b) => (
                <tr key={`${b.asset}:${b.reason}`}>
                  <td>{assetLink(b.asset)}</td>
                  <td className="mono">{describeSpan(b.firstPartition, b.lastPartition, b.partitions)}</td>
                  <td>{b.reason}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}
    </div>
  );
}
