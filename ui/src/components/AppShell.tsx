import type { ReactNode } from 'react';
import { NavLink, useLocation } from 'react-router';
import { useQuery } from '../api/hooks';
import { DEFINITIONS_QUERY } from '../api/queries';
import type { DefinitionsInfo } from '../api/types';
import { ErrorBoundary } from './ErrorBoundary';
import { fmtCount } from '../lib/status';

const links = [
  { to: '/assets', label: 'Assets graph', icon: 'M4 6h4v4H4zM16 4h4v4h-4zM16 14h4v4h-4zM8 8l8-2M8 8l8 8' },
  { to: '/runs', label: 'Runs', icon: 'M5 4l14 8-14 8z' },
  { to: '/backfills', label: 'Backfills', icon: 'M4 18h16M6 14h3v4H6zM11 10h3v8h-3zM16 6h3v12h-3z' },
  { to: '/freshness', label: 'Freshness', icon: 'M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zm0 4v5l3 3' },
  { to: '/schedules', label: 'Schedules', icon: 'M4 6h16v14H4zM4 10h16M8 3v5M16 3v5' },
];

function NavIcon({ d }: { d: string }) {
  return (
    <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
      <path d={d} fill="none" stroke="currentColor" strokeWidth="1.8" strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

function CatalogInfo() {
  const { data, error } = useQuery<{ definitions: DefinitionsInfo }>(DEFINITIONS_QUERY, {}, { pollMs: 60_000 });
  if (error) return <div className="nav-foot muted">API unreachable</div>;
  if (!data) return <div className="nav-foot muted">…</div>;
  return (
    <div className="nav-foot" title={data.definitions.dir}>
      <span>{fmtCount(data.definitions.assets)} assets</span>
      <span className="muted ellipsis">{data.definitions.dir}</span>
    </div>
  );
}

/** The page frame: the left navigation and the current page. */
export function AppShell({ children }: { children: ReactNode }) {
  const location = useLocation();
  return (
    <div className="shell">
      <nav className="nav" aria-label="Main">
        <div className="brand">
          <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
            <path d="M2 16c4-6 7 3 11-3s6-4 9-3v10H2z" fill="currentColor" />
          </svg>
          Freshet
        </div>
        <ul>
          {links.map((l) => (
            <li key={l.to}>
              <NavLink to={l.to} className={({ isActive }) => (isActive || (l.to === '/assets' && location.pathname.startsWith('/asset/')) ? 'active' : '')}>
                <NavIcon d={l.icon} />
                {l.label}
              </NavLink>
            </li>
          ))}
        </ul>
        <CatalogInfo />
      </nav>
      <main className="main">
        <ErrorBoundary resetKey={location.pathname}>{children}</ErrorBoundary>
      </main>
    </div>
  );
}
