import { Navigate, Route, Routes, useParams } from 'react-router';
import { AppShell } from './components/AppShell';
import { TokenPrompt } from './components/TokenPrompt';
import { EmptyState } from './components/States';
import { GraphPage } from './graph/GraphPage';
import { AssetPage } from './asset/AssetPage';
import { RunsPage } from './runs/RunsPage';
import { RunPage } from './runs/RunPage';
import { BackfillsPage } from './backfills/BackfillsPage';
import { BackfillPage } from './backfills/BackfillPage';
import { FreshnessPage } from './freshness/FreshnessPage';
import { SchedulesPage } from './schedules/SchedulesPage';

function AssetRoute() {
  const key = useParams()['*'] ?? '';
  return <AssetPage key={key} assetKey={key} />;
}

function RunRoute() {
  const id = useParams().id ?? '';
  return <RunPage key={id} runId={id} />;
}

function BackfillRoute() {
  const id = useParams().id ?? '';
  return <BackfillPage key={id} backfillId={id} />;
}

/**
 * The routes. Every view has a URL of its own (selection, search, selected
 * asset, partition, step), so any of them can be shared.
 */
export function App() {
  return (
    <>
      <AppShell>
        <Routes>
          <Route path="/" element={<Navigate to="/assets" replace />} />
          <Route path="/assets" element={<GraphPage />} />
          <Route path="/asset/*" element={<AssetRoute />} />
          <Route path="/runs" element={<RunsPage />} />
          <Route path="/runs/:id" element={<RunRoute />} />
          <Route path="/backfills" element={<BackfillsPage />} />
          <Route path="/backfills/:id" element={<BackfillRoute />} />
          <Route path="/freshness" element={<FreshnessPage />} />
          <Route path="/schedules" element={<SchedulesPage />} />
          <Route path="*" element={<EmptyState title="No such page">Use the navigation on the left.</EmptyState>} />
        </Routes>
      </AppShell>
      <TokenPrompt />
    </>
  );
}
