import type { AssetStatus } from '../api/types';
import { fmtCount, HEALTH_LABEL, statusShares } from '../lib/status';

/** The shares of fresh, stale and missing partitions as one thin bar. */
export function StatusBar({ status, height = 6 }: { status: AssetStatus; height?: number }) {
  const shares = statusShares(status);
  return (
    <div className="status-bar" style={{ height }} aria-hidden="true">
      {shares.map((s) => (
        <span
          key={s.health}
          className={`seg health-${s.health}`}
          style={{ width: `${s.share * 100}%` }}
          title={`${fmtCount(s.count)} ${HEALTH_LABEL[s.health].toLowerCase()}`}
        />
      ))}
    </div>
  );
}
