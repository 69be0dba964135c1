import { describe, expect, it } from 'vitest';
import { NODE_HEIGHT, NODE_WIDTH } from './geometry';
import { quickLayout } from './quickLayout';

describe('quickLayout', () => {
  it('puts each asset one layer right of its deepest upstream', () => {
    const l = quickLayout({
      nodes: ['raw', 'clean', 'loaded', 'rates', 'report', 'weekly'],
      edges: [
        { from: 'raw', to: 'clean' },
        { from: 'clean', to: 'loaded' },
        { from: 'loaded', to: 'report' },
        { from: 'rates', to: 'report' },
        { from: 'loaded', to: 'weekly' },
      ],
    });
    const x = (k: string) => l.positions.get(k)!.x;
    expect(x('raw')).toBe(0);
    expect(x('rates')).toBe(0);
    expect(x('clean')).toBeGreaterThan(x('raw'));
    expect(x('loaded')).toBeGreaterThan(x('clean'));
    expect(x('report')).toBe(x('weekly'));
    expect(x('report')).toBeGreaterThan(x('loaded'));
  });

  it('never overlaps two nodes, and bounds them all', () => {
    const nodes = Array.from({ length: 300 }, (_, i) => `a${i}`);
    const edges = nodes.slice(30).map((k, i) => ({ from: nodes[i % 30 + Math.floor(i / 30) * 30]!, to: k }));
    const l = quickLayout({ nodes, edges });
    const seen = new Set<string>();
    for (const p of l.positions.values()) {
      const cell = `${p.x}:${Math.round(p.y / NODE_HEIGHT)}`;
      expect(seen.has(cell)).toBe(false);
      seen.add(cell);
      expect(p.x + NODE_WIDTH).toBeLessThanOrEqual(l.width + 0.001);
      expect(p.y).toBeGreaterThanOrEqual(0);
      expect(p.y + NODE_HEIGHT).toBeLessThanOrEqual(l.height + 0.001);
    }
    expect(l.positions.size).toBe(300);
  });

  it('lays out 10,000 assets in a blink (linear time)', () => {
    const nodes = Array.from({ length: 10_000 }, (_, i) => `n${i}`);
    const edges = nodes.slice(100).flatMap((k, i) => [{ from: nodes[i]!, to: k }, { from: nodes[(i * 7) % (i + 1)]!, to: k }]);
    const l = quickLayout({ nodes, edges });
    expect(l.positions.size).toBe(10_000);
    expect(l.ms).toBeLessThan(250);
  });
});
