// The shapes of the GraphQL answers the UI reads (gql/schema.graphqls); only
// the fields it asks for.

export type PartitionStatus = 'FRESH' | 'STALE' | 'MISSING' | 'FAILED' | 'RUNNING';
export type RunStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED';
export type StepStatus =
  | 'PENDING'
  | 'READY'
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'SKIPPED_FRESH'
  | 'UPSTREAM_FAILED'
  | 'CANCELED';
export type FreshnessStatus = 'PASS' | 'WARN' | 'FAIL' | 'UNKNOWN';
export type Granularity = 'hourly' | 'daily' | 'weekly' | 'monthly';

export interface AssetStatus {
  fresh: number;
  stale: number;
  missing: number;
  failed: number;
  running: number;
  queued: number;
  total: number;
}

export interface PartitionsDef {
  granularity: Granularity;
  start: string;
  end: string | null;
  timezone: string;
  endOffset: number;
  count: number;
  firstKey: string | null;
  lastKey: string | null;
}

export interface Freshness {
  status: FreshnessStatus;
  lagSeconds: number | null;
  policy: string;
  lastMaterializedAt: string | null;
  reason: string;
}

export interface GraphNode {
  key: string;
  group: string;
  isSource: boolean;
  computeKind: string;
  partitionsDef: Pick<PartitionsDef, 'granularity' | 'count'> | null;
  status: AssetStatus;
}

export interface AssetEdge {
  from: string;
  to: string;
  mapping: string;
}

export interface AssetGraph {
  nodes: GraphNode[];
  edges: AssetEdge[];
}

export interface AssetRef {
  key: string;
  status: AssetStatus;
}

export interface AssetDetail {
  key: string;
  group: string;
  description: string;
  owners: string[];
  tags: string[];
  codeVersion: string;
  isSource: boolean;
  computeKind: string;
  partitionsDef: PartitionsDef | null;
  upstream: AssetRef[];
  downstream: AssetRef[];
  status: AssetStatus;
  freshness: Freshness | null;
}

export interface PartitionRange {
  start: string;
  end: string;
  status: PartitionStatus;
  count: number;
}

export interface Cause {
  kind: string;
  asset: string;
  partition: string;
}

export type JSONValue = string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

export interface MaterializationEvent {
  seq: string;
  kind: string;
  asset: string;
  partition: string;
  at: string;
  runId: string | null;
  stepId: string | null;
  dataVersion: string;
  dataChanged: boolean;
  codeVersion: string | null;
  metadata: JSONValue;
  error: string | null;
}

export interface PartitionDetail {
  key: string;
  status: PartitionStatus;
  causes: Cause[];
  dataVersion: string | null;
  metadata: JSONValue;
  latestMaterialization: MaterializationEvent | null;
  history: MaterializationEvent[];
}

export interface NamedCount {
  name: string;
  count: number;
}

/** One asset of a plan summed up: its steps, the span of its partitions, why. */
export interface PlanAssetSummary {
  asset: string;
  steps: number;
  partitions: number;
  firstPartition: string;
  lastPartition: string;
  statuses: NamedCount[];
  causes: NamedCount[];
  examples: string[];
}

export interface BlockedGroup {
  asset: string;
  reason: string;
  partitions: number;
  firstPartition: string;
  lastPartition: string;
}

/** A plan summed up by the server, whatever its size (the preview's query). */
export interface PlanSummary {
  steps: number;
  partitions: number;
  blockedPartitions: number;
  assets: PlanAssetSummary[];
  blocked: BlockedGroup[];
}

export interface Plan {
  summary: PlanSummary;
}

export interface StepCounts {
  pending: number;
  ready: number;
  running: number;
  succeeded: number;
  failed: number;
  skippedFresh: number;
  upstreamFailed: number;
  canceled: number;
  total: number;
}

export interface Step {
  id: string;
  asset: string;
  partitions: string[];
  status: StepStatus;
  attempt: number;
  maxAttempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

export interface RunSummary {
  id: string;
  status: RunStatus;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  trigger: string;
  selection: string;
  from: string | null;
  to: string | null;
  force: boolean;
  backfillId: string | null;
  parentRunId: string | null;
  counts: StepCounts;
}

export interface Run extends RunSummary {
  steps: Step[];
}

export interface RunEvent {
  runId: string;
  runStatus: RunStatus;
  step: Step | null;
  at: string;
}

export interface LogLine {
  no: number;
  attempt: number;
  stream: string;
  at: string;
  text: string;
}

export interface LogPage {
  lines: LogLine[];
  next: number;
  droppedLines: number;
  droppedBytes: number;
}

export interface Backfill {
  id: string;
  selection: string;
  from: string | null;
  to: string | null;
  mode: string;
  maxParallel: number;
  status: string;
  createdAt: string;
  finishedAt: string | null;
  targeted: number;
  done: number;
  failed: number;
  inFlight: number;
  canceled: number;
  pending: number;
  runIds: string[];
}

export interface FreshnessRow {
  asset: { key: string; group: string };
  freshness: Freshness;
}

export interface FreshnessEvent {
  id: string;
  asset: string;
  at: string;
  status: FreshnessStatus;
  previous: FreshnessStatus | null;
  lagSeconds: number | null;
  reason: string;
}

export interface ScheduleTick {
  at: string;
  status: string;
  runId: string | null;
  reason: string | null;
}

export interface Schedule {
  name: string;
  cron: string;
  timezone: string;
  selection: string;
  nextTick: string | null;
  lastTick: ScheduleTick | null;
  ticks: ScheduleTick[];
}

export interface DefinitionsInfo {
  dir: string;
  assets: number;
  loadedAt: string;
}
