package gql

import (
	"context"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/freshetdev/freshet/assets"
)

// The assetGraph query of the UI selects a few plain fields of every asset and
// edge of the graph: over 10,000 assets gqlgen's execution of it cost 100 to
// 150 ms, nearly all of it gqlgen's own, per object and per field (a goroutine,
// a field set and a path per object; a field context, a context, a boxed value
// and a marshaler per field: some 190 allocations per asset), which neither
// plain fields nor precomputed values avoid. So, when everything a query
// selects under an assetGraph root field is plain data of the graph (the fields
// of the shapes below, with their aliases, fragments, @skip/@include and
// __typename), writeAssetGraph writes that field's JSON itself, as gqlgen would
// (the same fields in the same order, collected by gqlgen's CollectFields, the
// same encoding); any other selection (upstream/downstream, a field that reads
// the catalog, @defer) and any error take the generated code. The shapes must
// follow the schema: TestGraphShapesFollowTheSchema checks that they do, and
// TestDirectAssetGraphMatchesGqlgen that the output is gqlgen's byte for byte.
// Written so, the graph of 10,000 assets takes under 2 ms. Field middleware
// (AroundFields) does not run for the fields written here; the server installs
// none.

// graphField names a field the direct writer can write.
type graphField uint8

const (
	fieldTypename graphField = iota

	// AssetGraph
	fieldNodes
	fieldEdges

	// Asset
	fieldKey
	fieldGroup
	fieldDescription
	fieldOwners
	fieldTags
	fieldCodeVersion
	fieldIsSource
	fieldComputeKind
	fieldPartitionsDef
	fieldStatus

	// AssetStatus
	fieldFresh
	fieldStale
	fieldMissing
	fieldFailed
	fieldRunning
	fieldQueued
	fieldTotal

	// PartitionsDef
	fieldGranularity
	fieldStart
	fieldEnd
	fieldTimezone
	fieldEndOffset
	fieldCount
	fieldFirstKey
	fieldLastKey

	// AssetEdge
	fieldFrom
	fieldTo
	fieldMapping
)

// objectShape is what the direct writer can write of an object type: the fields
// it knows, by schema name.
type objectShape struct {
	name string
	// implementors are the generated code's, so that CollectFields collects
	// (and caches for the operation) exactly what the generated code would.
	implementors []string
	fields       map[string]fieldShape
}

type fieldShape struct {
	field  graphField
	object *objectShape // the shape of an object field's value; nil for a scalar or a list of scalars
}

var (
	assetStatusShape = &objectShape{name: "AssetStatus", implementors: assetStatusImplementors, fields: map[string]fieldShape{
		"fresh": {field: fieldFresh}, "stale": {field: fieldStale}, "missing": {field: fieldMissing}, "failed": {field: fieldFailed},
		"running": {field: fieldRunning}, "queued": {field: fieldQueued}, "total": {field: fieldTotal},
	}}
	partitionsDefShape = &objectShape{name: "PartitionsDef", implementors: partitionsDefImplementors, fields: map[string]fieldShape{
		"granularity": {field: fieldGranularity}, "start": {field: fieldStart}, "end": {field: fieldEnd}, "timezone": {field: fieldTimezone},
		"endOffset": {field: fieldEndOffset}, "count": {field: fieldCount}, "firstKey": {field: fieldFirstKey}, "lastKey": {field: fieldLastKey},
	}}
	assetShape = &objectShape{name: "Asset", implementors: assetImplementors, fields: map[string]fieldShape{
		"key": {field: fieldKey}, "group": {field: fieldGroup}, "description": {field: fieldDescription},
		"owners": {field: fieldOwners}, "tags": {field: fieldTags}, "codeVersion": {field: fieldCodeVersion},
		"isSource": {field: fieldIsSource}, "computeKind": {field: fieldComputeKind},
		"partitionsDef": {field: fieldPartitionsDef, object: partitionsDefShape},
		"status":        {field: fieldStatus, object: assetStatusShape},
	}}
	assetEdgeShape = &objectShape{name: "AssetEdge", implementors: assetEdgeImplementors, fields: map[string]fieldShape{
		"from": {field: fieldFrom}, "to": {field: fieldTo}, "mapping": {field: fieldMapping},
	}}
	assetGraphShape = &objectShape{name: "AssetGraph", implementors: assetGraphImplementors, fields: map[string]fieldShape{
		"nodes": {field: fieldNodes, object: assetShape},
		"edges": {field: fieldEdges, object: assetEdgeShape},
	}}
)

// selectedField is one field of a selection the direct writer writes, in
// output order.
type selectedField struct {
	key      []byte // the response key, quoted, with its colon
	field    graphField
	typename string          // the value of __typename
	fields   []selectedField // of an object field's value
}

// directSelection returns what set selects of an object of the shape, when the
// direct writer can write all of it.
func directSelection(oc *graphql.OperationContext, set ast.SelectionSet, shape *objectShape) ([]selectedField, bool) {
	collected := graphql.CollectFields(oc, set, shape.implementors)
	out := make([]selectedField, 0, len(collected))
	keys := make(map[string]bool, len(collected))
	for _, f := range collected {
		if len(f.Deferrables) > 0 {
			return nil, false // incremental delivery is gqlgen's
		}
		if keys[f.Alias] {
			continue // gqlgen writes the first field of a response key only
		}
		keys[f.Alias] = true
		s := selectedField{key: append(appendJSONString(nil, f.Alias), ':')}
		if f.Name == "__typename" {
			s.field, s.typename = fieldTypename, shape.name
			out = append(out, s)
			continue
		}
		fs, ok := shape.fields[f.Name]
		if !ok {
			return nil, false
		}
		s.field = fs.field
		if fs.object != nil {
			if s.fields, ok = directSelection(oc, f.Selections, fs.object); !ok {
				return nil, false
			}
		}
		out = append(out, s)
	}
	return out, true
}

// writeAssetGraph is the root field middleware that writes an assetGraph field
// directly when it can (see the top of this file), and lets gqlgen resolve and
// write every other root field.
func (r *Resolver) writeAssetGraph(ctx context.Context, next graphql.RootResolver) (out graphql.Marshaler) {
	rf := graphql.GetRootFieldContext(ctx)
	if rf == nil || rf.Field.Field == nil || rf.Field.Name != "assetGraph" ||
		rf.Field.ObjectDefinition == nil || rf.Field.ObjectDefinition.Name != "Query" || !graphql.HasOperationContext(ctx) {
		return next(ctx)
	}
	oc := graphql.GetOperationContext(ctx)
	// A panic is reported as gqlgen reports a resolver's: an error, and null.
	// (next recovers its own.)
	defer func() {
		if p := recover(); p != nil {
			oc.Error(ctx, oc.Recover(ctx, p))
			out = graphql.Null
		}
	}()
	sel, ok := directSelection(oc, rf.Field.Selections, assetGraphShape)
	if !ok {
		return next(ctx)
	}
	var selection *string
	switch arg := rf.Field.ArgumentMap(oc.Variables)["selection"].(type) {
	case nil:
	case string:
		selection = &arg
	default:
		return next(ctx) // validation lets nothing else through; gqlgen would say what is wrong
	}
	g, err := (&queryResolver{r}).AssetGraph(ctx, selection)
	if err != nil {
		return next(ctx) // the generated code reports the error where it belongs
	}
	w := graphWriter{now: r.Engine.Now()}
	if selects(sel, fieldStatus) {
		v := viewFrom(ctx)
		if v == nil {
			return next(ctx)
		}
		if w.statuses, err = v.assetStatuses(ctx); err != nil {
			return next(ctx)
		}
	}
	w.buf = make([]byte, 0, w.size(sel, g))
	w.graph(sel, g)
	return rawJSON(w.buf)
}

// selects reports whether a selection selects field at any depth.
func selects(sel []selectedField, field graphField) bool {
	for i := range sel {
		if sel[i].field == field || selects(sel[i].fields, field) {
			return true
		}
	}
	return false
}

// rawJSON is JSON written already.
type rawJSON []byte

func (j rawJSON) MarshalGQL(w io.Writer) { w.Write(j) }

// graphWriter appends an assetGraph's JSON to buf.
type graphWriter struct {
	buf      []byte
	statuses []AssetStatus // by graph node; read only when status is selected
	now      time.Time     // for the partitions that exist
}

func (w *graphWriter) graph(sel []selectedField, g *AssetGraph) {
	w.buf = append(w.buf, '{')
	for i := range sel {
		f := &sel[i]
		w.field(i, f)
		switch f.field {
		case fieldTypename:
			w.buf = appendJSONString(w.buf, f.typename)
		case fieldNodes:
			w.buf = append(w.buf, '[')
			for j, a := range g.Nodes {
				if j > 0 {
					w.buf = append(w.buf, ',')
				}
				w.asset(f.fields, a)
			}
			w.buf = append(w.buf, ']')
		case fieldEdges:
			w.buf = append(w.buf, '[')
			for j, e := range g.Edges {
				if j > 0 {
					w.buf = append(w.buf, ',')
				}
				w.edge(f.fields, e)
			}
			w.buf = append(w.buf, ']')
		}
	}
	w.buf = append(w.buf, '}')
}

// size guesses the size of the graph's JSON from the first item of each list,
// with an eighth to spare, so that the buffer of a large graph is allocated
// once rather than doubled its way there.
func (w *graphWriter) size(sel []selectedField, g *AssetGraph) int {
	n := 64
	for i := range sel {
		f := &sel[i]
		w.buf = w.buf[:0]
		switch {
		case f.field == fieldNodes && len(g.Nodes) > 0:
			w.asset(f.fields, g.Nodes[0])
			n += (len(w.buf) + 1) * len(g.Nodes)
		case f.field == fieldEdges && len(g.Edges) > 0:
			w.edge(f.fields, g.Edges[0])
			n += (len(w.buf) + 1) * len(g.Edges)
		}
	}
	return n + n/8
}

// field writes the separator before the i-th field of an object and its key.
func (w *graphWriter) field(i int, f *selectedField) {
	if i > 0 {
		w.buf = append(w.buf, ',')
	}
	w.buf = append(w.buf, f.key...)
}

func (w *graphWriter) asset(sel []selectedField, a *Asset) {
	w.buf = append(w.buf, '{')
	for i := range sel {
		f := &sel[i]
		w.field(i, f)
		switch f.field {
		case fieldTypename:
			w.buf = appendJSONString(w.buf, f.typename)
		case fieldKey:
			w.buf = appendJSONString(w.buf, a.Key())
		case fieldGroup:
			w.buf = appendJSONString(w.buf, a.Group())
		case fieldDescription:
			w.buf = appendJSONString(w.buf, a.Description())
		case fieldOwners:
			w.strings(a.Owners())
		case fieldTags:
			w.strings(a.Tags())
		case fieldCodeVersion:
			w.buf = appendJSONString(w.buf, a.CodeVersion())
		case fieldIsSource:
			w.buf = strconv.AppendBool(w.buf, a.IsSource())
		case fieldComputeKind:
			w.buf = appendJSONString(w.buf, a.ComputeKind())
		case fieldPartitionsDef:
			if p := partitionsDefOf(a.def, w.now); p != nil {
				w.partitionsDef(f.fields, p)
			} else {
				w.buf = append(w.buf, "null"...)
			}
		case fieldStatus:
			w.status(f.fields, &w.statuses[a.idx])
		}
	}
	w.buf = append(w.buf, '}')
}

func (w *graphWriter) status(sel []selectedField, s *AssetStatus) {
	w.buf = append(w.buf, '{')
	for i := range sel {
		f := &sel[i]
		w.field(i, f)
		switch f.field {
		case fieldTypename:
			w.buf = appendJSONString(w.buf, f.typename)
		case fieldFresh:
			w.buf = strconv.AppendInt(w.buf, int64(s.Fresh), 10)
		case fieldStale:
			w.buf = strconv.AppendInt(w.buf, int64(s.Stale), 10)
		case fieldMissing:
			w.buf = strconv.AppendInt(w.buf, int64(s.Missing), 10)
		case fieldFailed:
			w.buf = strconv.AppendInt(w.buf, int64(s.Failed), 10)
		case fieldRunning:
			w.buf = strconv.AppendInt(w.buf, int64(s.Running), 10)
		case fieldQueued:
			w.buf = strconv.AppendInt(w.buf, int64(s.Queued), 10)
		case fieldTotal:
			w.buf = strconv.AppendInt(w.buf, int64(s.Total), 10)
		}
	}
	w.buf = append(w.buf, '}')
}

func (w *graphWriter) partitionsDef(sel []selectedField, p *PartitionsDef) {
	w.buf = append(w.buf, '{')
	for i := range sel {
		f := &sel[i]
		w.field(i, f)
		switch f.field {
		case fieldTypename:
			w.buf = appendJSONString(w.buf, f.typename)
		case fieldGranularity:
			w.buf = appendJSONString(w.buf, p.Granularity)
		case fieldStart:
			w.buf = appendJSONString(w.buf, p.Start)
		case fieldEnd:
			w.optionalString(p.End)
		case fieldTimezone:
			w.buf = appendJSONString(w.buf, p.Timezone)
		case fieldEndOffset:
			w.buf = strconv.AppendInt(w.buf, int64(p.EndOffset), 10)
		case fieldCount:
			w.buf = strconv.AppendInt(w.buf, int64(p.Count), 10)
		case fieldFirstKey:
			w.optionalString(p.FirstKey)
		case fieldLastKey:
			w.optionalString(p.LastKey)
		}
	}
	w.buf = append(w.buf, '}')
}

func (w *graphWriter) edge(sel []selectedField, e *AssetEdge) {
	w.buf = append(w.buf, '{')
	for i := range sel {
		f := &sel[i]
		w.field(i, f)
		switch f.field {
		case fieldTypename:
			w.buf = appendJSONString(w.buf, f.typename)
		case fieldFrom:
			w.buf = appendJSONString(w.buf, e.From)
		case fieldTo:
			w.buf = appendJSONString(w.buf, e.To)
		case fieldMapping:
			w.buf = appendJSONString(w.buf, e.Mapping)
		}
	}
	w.buf = append(w.buf, '}')
}

func (w *graphWriter) strings(ss []string) {
	w.buf = append(w.buf, '[')
	for i, s := range ss {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = appendJSONString(w.buf, s)
	}
	w.buf = append(w.buf, ']')
}

func (w *graphWriter) optionalString(s *string) {
	if s == nil {
		w.buf = append(w.buf, "null"...)
		return
	}
	w.buf = appendJSONString(w.buf, *s)
}

// appendJSONString appends s quoted as gqlgen's graphql.MarshalString writes
// it: only the control characters, the backslash and the double quote are
// escaped (\t, \r, \n, or \u00XX in upper case), and every other byte is
// written as is (gqlgen reads runes, but those characters are single bytes that
// no multi-byte sequence, valid or not, contains).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '\\' && c != '"' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		case '\n':
			b = append(b, `\n`...)
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// partitionsDefOf is an asset's partitionsDef field at now (nil: the asset is
// not partitioned).
func partitionsDefOf(a *assets.Asset, now time.Time) *PartitionsDef {
	parts := a.Partitions
	if parts == nil {
		return nil
	}
	spec := parts.Spec()
	n := parts.Count(now)
	out := &PartitionsDef{Granularity: spec.Granularity.String(), Start: spec.Start, End: stringOrNil(spec.End),
		Timezone: parts.Location().String(), EndOffset: spec.EndOffset, Count: n}
	if n > 0 {
		first, last := parts.Key(0), parts.Key(n-1)
		out.FirstKey, out.LastKey = &first, &last
	}
	return out
}
