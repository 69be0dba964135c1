// The page's entry, a few kilobytes. On the graph page it sends the graph's
// query at once and, when the answer comes, starts its layout in the worker;
// meanwhile it loads the app itself (React and the pages, a chunk of its own).
// By the time the app renders, the graph is there (the page's identical request
// takes this answer) and its layout well on its way.
import { prefetch } from './api/client';
import { GRAPH_QUERY } from './api/queries';
import type { AssetGraph } from './api/types';
import { computeLayout, layoutInputOf, prewarmLayout, startLayoutWorker } from './graph/layout';

const params = new URLSearchParams(location.search);
if (location.pathname === '/' || location.pathname === '/assets') {
  const variables = { selection: (location.pathname === '/assets' && params.get('select')) || null };
  const answer = prefetch<{ assetGraph: AssetGraph }>(GRAPH_QUERY, variables);
  startLayoutWorker(); // its script loads and compiles while the answer is on its way
  if (params.get('group')) {
    prewarmLayout(); // the page lays out a part of the graph: only warm the worker up
  } else {
    answer.then(
      ({ assetGraph }) => void computeLayout(layoutInputOf(assetGraph.nodes, assetGraph.edges)).catch(() => undefined),
      () => undefined,
    );
  }
}

void import('./main');
