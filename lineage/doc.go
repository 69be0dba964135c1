// Package lineage owns what Freshet answers about the asset graph as a whole: which
// assets a selection names, how an asset connects up- and downstream, and whether
// an asset meets its freshness policy.
//
// # Selection syntax
//
// The CLI (--select), GraphQL and schedules (select:) share one selection syntax, the
// one dbt users know. A selection is a list of terms separated by whitespace; it
// selects every asset that any term selects (a union):
//
//	sales/raw_orders       one asset, by its exact key
//	*                      every asset
//	sales/*                a key pattern: * matches within one segment and never
//	sales/raw_*            crosses "/", so sales/* does not match sales/eu/orders
//	key:sales/raw_orders   the explicit form of a key or pattern (key:* is every asset)
//	group:sales            the assets of a group
//	tag:pii                the assets carrying a tag
//	owner:team:data-eng    the assets an owner owns; everything after the first colon
//	                       is the owner, so this is owner "team:data-eng"
//
// In a shell, quote selections that contain "*" or several terms:
// freshet plan --select 'sales/* +finance/report'.
//
// Group, tag and owner values match exactly and case-sensitively. They may contain any
// visible character except whitespace, "," and "+" (those are syntax) and "*"
// (patterns work on keys only). Keys are lowercase identifiers ([a-z0-9_]+) joined by
// "/"; patterns may add "*".
//
// # Graph operators
//
// Any selector can carry graph operators. "+" before it adds its upstream (the assets it
// is built from, transitively), "+" after it adds its downstream; a number on the outer
// side of the "+" limits the number of levels:
//
//	+sales/orders_clean      orders_clean and everything upstream of it
//	2+sales/orders_clean     orders_clean and two levels of upstream
//	sales/orders_clean+      orders_clean and everything downstream of it
//	sales/orders_clean+1     orders_clean and the assets that read it directly
//	+sales/orders_clean+     both directions
//	2+tag:pii+1              the pii assets, two levels up and one level down
//
// Leading digits followed by "+" are always a depth, so the asset with the all-digit
// key 2024 is written key:2024+ when it takes a downstream operator; the canonical form
// (Selection.String) writes key: before every key that starts with a digit.
//
// # Intersections
//
// A comma with no spaces around it joins selectors into an intersection, which binds
// tighter than the whitespace union:
//
//	tag:pii,group:sales      assets that are both tagged pii and in group sales
//	+finance/report,tag:pii  the pii assets among finance/report and its upstream
//	a b,c                    a, plus the assets both in b and in c
//
// # Errors
//
// Parse reports syntax errors with the column (counted in characters, from 1) and the
// offending text, for example
//
//	selection "sales/x++": column 9: unexpected "+"
//
// Resolving a selection against a graph fails when an exact key names no asset, with
// the closest key as a suggestion, since a typo in a key would otherwise silently
// select nothing. A group, tag, owner or key pattern that matches no asset is not an
// error: it selects nothing, so a schedule on tag:nightly keeps working while no asset
// carries the tag.
//
// # Lineage
//
// Traverse walks the graph from one asset, upstream, downstream or both, optionally to
// a depth, and returns the nodes with their signed distance from the asset and the
// dependency edges between them with their partition mappings. WriteText renders the
// result as the indented tree that freshet lineage prints.
//
// # Freshness
//
// EvaluateFreshness judges one asset's freshness SLA at an instant, from what is
// recorded about it (how many partitions exist, which are materialized, the last
// success), without I/O: PASS, WARN, FAIL or UNKNOWN, with the data time, lag, the
// deadline tick and a one-sentence reason for alerts. For max_lag, a partitioned
// asset's data is complete only through its first missing partition.
package lineage
