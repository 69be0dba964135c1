import { memo } from 'react';
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';
import type { GraphNode } from '../api/types';
import { StatusBar } from '../components/StatusBar';
import { assetHealth, fmtCount, statusSummary } from '../lib/status';

export interface AssetNodeData extends Record<string, unknown> {
  asset: GraphNode;
  selected: boolean;
  match: boolean;
}

export type AssetFlowNode = Node<AssetNodeData, 'asset'>;

function splitKey(key: string): { prefix: string; name: string } {
  const i = key.lastIndexOf('/');
  return i < 0 ? { prefix: '', name: key } : { prefix: key.slice(0, i + 1), name: key.slice(i + 1) };
}

function kindText(a: GraphNode): string {
  if (a.isSource) return a.partitionsDef ? `source · ${a.partitionsDef.granularity}` : 'source';
  if (a.partitionsDef) return `${a.partitionsDef.granularity} · ${fmtCount(a.partitionsDef.count)}`;
  return a.computeKind;
}

/** One asset on the graph: its name, kind, status colour and partition shares. */
export const AssetNode = memo(function AssetNode({ data }: NodeProps<AssetFlowNode>) {
  const a = data.asset;
  const health = assetHealth(a.status);
  const { prefix, name } = splitKey(a.key);
  return (
    <div
      className={`asset-node health-${health}${data.selected ? ' selected' : ''}${data.match ? ' match' : ''}`}
      data-key={a.key}
      data-status={health}
      title={`${a.key}: ${statusSummary(a.status)}`}
    >
      <div className="an-head">
        <span className={`dot health-${health}`} />
        <span className="an-name">{name}</span>
      </div>
      <div className="an-sub">
        <span className="an-prefix">{prefix}</span>
        <span className="an-kind">{kindText(a)}</span>
      </div>
      <StatusBar status={a.status} height={5} />
      <div className="an-counts">{statusSummary(a.status)}</div>
      <Anchors />
    </div>
  );
});

/** Where edges attach (React Flow measures them; AssetGraphView also gives them up front). */
function Anchors() {
  return (
    <>
      <Handle type="target" position={Position.Left} isConnectable={false} />
      <Handle type="source" position={Position.Right} isConnectable={false} />
    </>
  );
}
