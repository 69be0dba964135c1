import { describe, expect, it } from 'vitest';
import type { GraphNode } from '../api/types';
import { hitTest } from './FarLayer';
import { NODE_HEIGHT, NODE_WIDTH, type Layout } from './geometry';

const node = (key: string): GraphNode => ({
  key,
  group: '',
  isSource: false,
  computeKind: 'command',
  partitionsDef: null,
  status: { fresh: 0, stale: 0, missing: 1, failed: 0, running: 0, queued: 0, total: 1 },
});

describe('hitTest', () => {
  const nodes = [node('a'), node('b')];
  const layout: Layout = {
    positions: new Map([
      ['a', { x: 0, y: 0 }],
      ['b', { x: 0, y: NODE_HEIGHT + 28 }],
    ]),
    width: NODE_WIDTH,
    height: 2 * NODE_HEIGHT + 28,
    ms: 0,
  };
  it('finds the block under a point', () => {
    expect(hitTest(nodes, layout, 10, 10)).toBe('a');
    expect(hitTest(nodes, layout, NODE_WIDTH, NODE_HEIGHT + 30)).toBe('b');
    expect(hitTest(nodes, layout, NODE_WIDTH + 50, 10)).toBeUndefined();
    expect(hitTest(nodes, layout, 10, NODE_HEIGHT + 14)).toBeUndefined();
  });
  it('counts a little slack around blocks, and prefers the nearest', () => {
    expect(hitTest(nodes, layout, 10, NODE_HEIGHT + 5, 8)).toBe('a');
    expect(hitTest(nodes, layout, 10, NODE_HEIGHT + 24, 8)).toBe('b');
    expect(hitTest(nodes, layout, 10, NODE_HEIGHT + 14, 8)).toBeUndefined();
  });
});
