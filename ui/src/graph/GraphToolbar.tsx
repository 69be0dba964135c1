import { useEffect, useState, type FormEvent } from 'react';

export interface GraphToolbarProps {
  selection: string;
  group: string;
  groups: string[];
  search: string;
  matchCount: number;
  onSelection: (s: string) => void;
  onGroup: (g: string) => void;
  onSearch: (q: string) => void;
  onSearchEnter: () => void;
}

/** The graph's filters: selection syntax, group, and a search by key. */
export function GraphToolbar(p: GraphToolbarProps) {
  const [draft, setDraft] = useState(p.selection);
  useEffect(() => setDraft(p.selection), [p.selection]);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    p.onSelection(draft.trim());
  };
  return (
    <div className="toolbar">
      <form className="toolbar-item selection-form" onSubmit={apply} role="search" aria-label="Filter by selection">
        <input
          name="selection"
          value={draft}
          onChange={(e) => setDraft(e.target.value)}
          placeholder="Selection, e.g. group:sales or +sales/daily_report"
          spellCheck={false}
          aria-label="Selection"
        />
        <button type="submit" className="btn">
          Apply
        </button>
        {p.selection && (
          <button type="button" className="btn btn-ghost" onClick={() => p.onSelection('')}>
            Clear
          </button>
        )}
      </form>
      <label className="toolbar-item">
        <span className="muted">Group</span>
        <select value={p.group} onChange={(e) => p.onGroup(e.target.value)} aria-label="Group">
          <option value="">All groups</option>
          {p.groups.map((g) => (
            <option key={g} value={g}>
              {g}
            </option>
          ))}
        </select>
      </label>
      <div className="toolbar-item search">
        <input
          type="search"
          value={p.search}
          onChange={(e) => p.onSearch(e.target.value)}
          onKeyDown={(e) => e.key === 'Enter' && p.onSearchEnter()}
          placeholder="Search by key"
          aria-label="Search by key"
        />
        {p.search && <span className="muted small">{p.matchCount === 0 ? 'no match' : `${p.matchCount} match${p.matchCount === 1 ? '' : 'es'}`}</span>}
      </div>
    </div>
  );
}
