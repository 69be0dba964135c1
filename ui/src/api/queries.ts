// The operations the UI sends. Field names follow gql/schema.graphqls.

const statusFields = 'fresh stale missing failed running queued total';

export const GRAPH_QUERY = `query AssetGraph($selection: String) {
  assetGraph(selection: $selection) {
    nodes { key group isSource computeKind partitionsDef { granularity count } status { ${statusFields} } }
    edges { from to mapping }
  }
}`;

export const ASSET_QUERY = `query Asset($key: String!) {
  asset(key: $key) {
    key group description owners tags codeVersion isSource computeKind
    partitionsDef { granularity start end timezone endOffset count firstKey lastKey }
    upstream { key status { ${statusFields} } }
    downstream { key status { ${statusFields} } }
    status { ${statusFields} }
    freshness { status lagSeconds policy lastMaterializedAt reason }
  }
}`;

export const PARTITION_STATUS_QUERY = `query PartitionStatus($key: String!) {
  asset(key: $key) { key partitionStatus { start end status count } }
}`;

const eventFields = 'seq kind asset partition at runId stepId dataVersion dataChanged codeVersion metadata error';

export const PARTITION_QUERY = `query Partition($key: String!, $partition: String!) {
  asset(key: $key) {
    key
    partition(key: $partition) {
      key status causes { kind asset partition } dataVersion metadata
      latestMaterialization { ${eventFields} }
      history(first: 20) { ${eventFields} }
    }
  }
}`;

export const PARTITION_CAUSES_QUERY = `query PartitionCauses($key: String!, $partition: String!) {
  asset(key: $key) { key partition(key: $partition) { key status causes { kind asset partition } } }
}`;

export const MATERIALIZATIONS_QUERY = `query Materializations($key: String!, $after: String) {
  asset(key: $key) { key materializations(first: 20, after: $after) { nodes { ${eventFields} } endCursor hasNextPage } }
}`;

export const PLAN_QUERY = `query Plan($selection: String, $from: String, $to: String) {
  plan(selection: $selection, from: $from, to: $to) {
    summary {
      steps partitions blockedPartitions
      assets { asset steps partitions firstPartition lastPartition statuses { name count } causes { name count } examples }
      blocked { asset reason partitions firstPartition lastPartition }
    }
  }
}`;

const runSummaryFields = `id status createdAt startedAt finishedAt trigger selection from to force backfillId parentRunId
  counts { pending ready running succeeded failed skippedFresh upstreamFailed canceled total }`;
const stepFields = 'id asset partitions status attempt maxAttempts startedAt finishedAt error';

export const MATERIALIZE_STALE = `mutation MaterializeStale($selection: String, $from: String, $to: String) {
  materializeStale(selection: $selection, from: $from, to: $to) { id status }
}`;

export const RUNS_QUERY = `query Runs($status: RunStatus, $asset: String, $after: String) {
  runs(status: $status, asset: $asset, first: 50, after: $after) { nodes { ${runSummaryFields} } endCursor hasNextPage }
}`;

export const RUN_QUERY = `query Run($id: ID!) {
  run(id: $id) { ${runSummaryFields} steps { ${stepFields} } }
}`;

export const RUN_EVENTS = `subscription RunEvents($runId: ID!) {
  runEvents(runId: $runId) { runId runStatus at step { ${stepFields} } }
}`;

export const ASSET_EVENTS = `subscription AssetEvents($selection: String) {
  assetEvents(selection: $selection) { seq asset partition kind }
}`;

export const CANCEL_RUN = `mutation CancelRun($id: ID!) { cancelRun(id: $id) { id status } }`;
export const RETRY_RUN = `mutation RetryRun($id: ID!, $failedOnly: Boolean) { retryRun(id: $id, failedOnly: $failedOnly) { id status } }`;

export const STEP_LOGS = `query StepLogs($stepId: ID!, $after: Int, $first: Int) {
  stepLogs(stepId: $stepId, after: $after, first: $first) { lines { no attempt stream at text } next droppedLines droppedBytes }
}`;

const backfillFields = 'id selection from to mode maxParallel status createdAt finishedAt targeted done failed inFlight canceled pending runIds';

export const BACKFILLS_QUERY = `query Backfills { backfills(first: 50) { ${backfillFields} } }`;
export const BACKFILL_QUERY = `query Backfill($id: ID!) { backfill(id: $id) { ${backfillFields} } }`;
export const LAUNCH_BACKFILL = `mutation LaunchBackfill($input: BackfillInput!) { launchBackfill(input: $input) { id status } }`;
export const CANCEL_BACKFILL = `mutation CancelBackfill($id: ID!) { cancelBackfill(id: $id) { id status } }`;

export const FRESHNESS_QUERY = `query Freshness {
  freshnessBoard { asset { key group } freshness { status lagSeconds policy lastMaterializedAt reason } }
  freshnessEvents(first: 100) { id asset at status previous lagSeconds reason }
}`;

export const SCHEDULES_QUERY = `query Schedules {
  schedules { name cron timezone selection nextTick lastTick { at status runId reason } ticks(first: 10) { at status runId reason } }
}`;

export const DEFINITIONS_QUERY = `query Definitions { definitions { dir assets loadedAt } }`;
