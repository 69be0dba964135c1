package assets

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads definitions from path: one YAML file, or a folder whose *.yaml and *.yml
// files (not recursive, hidden files skipped) are read in name order and merged. Assets,
// schedules and notifiers are concatenated in file order, so indices in error paths
// count across files; connections are merged, and a name defined twice is an error.
// Definitions.Dir is set to the absolute path of the folder holding the definitions.
//
// Problems in the definitions are returned together as an Errors, every one of them
// (structural ones and those of Definitions.Validate) positioned at FILE:LINE:COL, with
// FILE spelled as path was given, and sorted by file, line and column. Failing to read
// the path (it does not exist, a folder holds no YAML files, a file is unreadable) is a
// plain error wrapping the cause.
func Load(path string) (*Definitions, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load definitions: %w", err)
	}
	dir := filepath.Dir(path)
	files := []string{path}
	if info.IsDir() {
		dir, files = path, nil
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("load definitions: %w", err)
		}
		for _, e := range entries { // sorted by name
			name := e.Name()
			ext := strings.ToLower(filepath.Ext(name))
			if e.IsDir() || strings.HasPrefix(name, ".") || ext != ".yaml" && ext != ".yml" {
				continue
			}
			files = append(files, filepath.Join(path, name))
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("load definitions: folder %s holds no *.yaml or *.yml files", path)
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("load definitions: %w", err)
	}
	l := newLoader()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("load definitions: %w", err)
		}
		l.parseFile(f, data)
	}
	defs, err := l.finish()
	if err != nil {
		return nil, err
	}
	defs.Dir = abs
	return defs, nil
}

// Parse reads the definitions of one YAML file held in memory; name is the file name
// used in error positions. Empty input gives empty Definitions. Dir is left empty.
// Errors are reported as by Load.
func Parse(name string, data []byte) (*Definitions, error) {
	if name == "" {
		name = "<input>"
	}
	l := newLoader()
	l.parseFile(name, data)
	return l.finish()
}

// The fields each mapping of a definitions file allows.
var (
	topFields         = []string{"assets", "schedules", "connections", "notifiers"}
	assetFields       = []string{"key", "description", "group", "owners", "tags", "code_version", "partitions", "deps", "compute", "observe", "retries", "timeout", "freshness", "batch", "concurrency"}
	granularityFields = []string{"hourly", "daily", "weekly", "monthly"}
	windowFields      = []string{"start", "end", "timezone", "end_offset"}
	depFields         = []string{"asset", "mapping", "start_offset", "end_offset"}
	computeKinds      = []string{"command", "sql", "http"}
	computeFields     = []string{"command", "sql", "http", "env", "dir", "connection", "headers"}
	retriesFields     = []string{"max", "backoff", "max_backoff"}
	freshnessFields   = []string{"max_lag", "warn_lag", "deadline"}
	deadlineFields    = []string{"cron", "timezone"}
	batchFields       = []string{"max_partitions"}
	scheduleFields    = []string{"name", "cron", "timezone", "select", "action"}
	connectionFields  = []string{"postgres"}
	urlFields         = []string{"url", "url_env"}
	notifierFields    = []string{"log", "webhook", "slack"}
)

// companion fields of a compute kind, and the kind they belong to.
var computeCompanions = map[string]string{"env": "command", "dir": "command", "connection": "sql", "headers": "http"}

// loader decodes yaml.Node trees into Definitions, collecting every problem, then runs
// Validate and positions its errors through the field paths recorded while decoding.
type loader struct {
	defs *Definitions
	errs Errors

	// pos maps a field path ("assets[2].deps[0].asset") to where it is written.
	pos map[string]Position
	// poisoned paths already have a structural error (or stand for a field the user
	// misspelled); Validate's errors at or under them would only repeat it.
	poisoned map[string]bool
	// incomplete is set when some file could not be read in full (it is not valid YAML,
	// or its aliases expand too far): validating the rest would report references to
	// the missing definitions as unknown.
	incomplete bool

	file      string
	fileOrder map[string]int
	budget    int // node visits left; aliases can make a small file expand enormously
	stopped   bool
	depRefs   []depRef
	connPos   map[string]Position
}

// depRef is one dependency as written, checked once every asset key is known.
type depRef struct {
	asset, dep int
	raw        string
	pos        Position
}

func newLoader() *loader {
	return &loader{
		defs:      &Definitions{},
		pos:       map[string]Position{},
		poisoned:  map[string]bool{},
		fileOrder: map[string]int{},
		connPos:   map[string]Position{},
	}
}

// maxVisits bounds the nodes visited per file beyond a few per byte (a file without
// aliases visits each node once), so that a document whose aliases multiply (a
// "billion laughs") is refused instead of expanded.
const maxVisits = 200_000

func (l *loader) parseFile(name string, data []byte) {
	l.file = name
	if _, ok := l.fileOrder[name]; !ok {
		l.fileOrder[name] = len(l.fileOrder)
	}
	l.budget, l.stopped = maxVisits+4*len(data), false

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err != io.EOF {
			l.syntaxError(err, data)
		}
		return
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		l.syntaxError(err, data)
	default:
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			n := extra.Content[0]
			l.add(l.at(n), "", "", "a definitions file holds one YAML document; this second one (after ---) would be ignored: put its definitions in the first document or in another file")
			l.incomplete = true
		}
	}
	if len(doc.Content) == 0 {
		return
	}
	root := doc.Content[0]
	if isNull(root) {
		return
	}
	fs, ok := l.mapping(root, "", topFields, "assets: [...]")
	if !ok {
		return
	}
	if f, ok := fs.get("assets"); ok {
		for _, n := range l.list(f.val, "assets", "a list of assets, each a mapping starting with key:") {
			l.asset(n)
		}
	}
	if f, ok := fs.get("schedules"); ok {
		for _, n := range l.list(f.val, "schedules", `a list of schedules, like [{name: nightly, cron: "0 2 * * *", select: "*"}]`) {
			l.schedule(n)
		}
	}
	if f, ok := fs.get("connections"); ok {
		l.connections(f.val)
	}
	if f, ok := fs.get("notifiers"); ok {
		for _, n := range l.list(f.val, "notifiers", "a list of notifiers, like [{log: true}]") {
			l.notifier(n)
		}
	}
}

// finish checks the dependency keys, validates the definitions as a whole and returns
// them, or every problem found.
func (l *loader) finish() (*Definitions, error) {
	l.checkDeps()
	if !l.incomplete {
		for _, e := range l.defs.Validate() {
			if l.isPoisoned(e.Path) {
				continue
			}
			e.Pos = l.position(e.Path)
			l.errs = append(l.errs, e)
		}
	}
	if len(l.errs) == 0 {
		return l.defs, nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool {
		a, b := l.errs[i].Pos, l.errs[j].Pos
		if a.File != b.File {
			return l.fileRank(a.File) < l.fileRank(b.File)
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return nil, l.errs
}

func (l *loader) fileRank(f string) int {
	if r, ok := l.fileOrder[f]; ok {
		return r
	}
	return len(l.fileOrder)
}

// checkDeps validates the upstream keys of every dependency. A dependency spelled like
// an asset whose own key is malformed is not reported again: the asset's key error is
// the one mistake.
func (l *loader) checkDeps() {
	badKeys := map[Key]bool{}
	for _, a := range l.defs.Assets {
		if a.Key != "" {
			if _, err := ParseKey(string(a.Key)); err != nil {
				badKeys[a.Key] = true
			}
		}
	}
	for _, d := range l.depRefs {
		path := fmt.Sprintf("assets[%d].deps[%d].asset", d.asset, d.dep)
		_, err := ParseKey(d.raw)
		if err == nil {
			continue
		}
		if !badKeys[Key(d.raw)] {
			l.add(d.pos, path, l.assetKey(d.asset), "%v", err)
		}
		l.poisoned[path] = true
	}
}

// assetKey returns asset i's key when it is valid, for naming it in errors.
func (l *loader) assetKey(i int) Key {
	k := l.defs.Assets[i].Key
	if _, err := ParseKey(string(k)); err != nil {
		return ""
	}
	return k
}

// ---- errors, positions and paths

func (l *loader) add(pos Position, path string, asset Key, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: pos, Path: path, Asset: asset, Msg: fmt.Sprintf(format, args...)})
}

// bad reports a problem with the value at path, written at n, and poisons path.
func (l *loader) bad(n *yaml.Node, path, format string, args ...any) {
	l.add(l.at(n), path, "", format, args...)
	l.poisoned[path] = true
}

func (l *loader) at(n *yaml.Node) Position {
	line, col := n.Line, n.Column
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return Position{File: l.file, Line: line, Col: col}
}

func (l *loader) record(path string, n *yaml.Node) { l.pos[path] = l.at(n) }

// position returns where path, or its nearest recorded ancestor, is written.
func (l *loader) position(path string) Position {
	for p := path; ; p = parentPath(p) {
		if pos, ok := l.pos[p]; ok {
			return pos
		}
		if p == "" {
			break
		}
	}
	for f, r := range l.fileOrder {
		if r == 0 {
			return Position{File: f, Line: 1, Col: 1}
		}
	}
	return Position{File: "<input>", Line: 1, Col: 1}
}

func (l *loader) isPoisoned(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if l.poisoned[p] {
			return true
		}
	}
	return false
}

// parentPath strips the last segment of a field path: "a.b[2]" → "a.b" → "a" → "".
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// yamlParserProblems are the problems yaml.v3's parser (as opposed to its scanner)
// reports; it numbers their lines from 0.
var yamlParserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: line (\d+): `)
	yamlAnchorRE = regexp.MustCompile(`anchor '([^']*)'`)
)

// syntaxError reports a YAML syntax error at the line yaml.v3 names, or at the byte it
// complains about when it names none.
func (l *loader) syntaxError(err error, data []byte) {
	l.incomplete = true
	msg := err.Error()
	line, col := 0, 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
		if yamlParserProblems[msg] {
			line++ // yaml.v3 reports parser (not scanner) errors with 0-based lines
		}
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
		off := -1
		switch {
		case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode"):
			off = firstInvalidUTF8(data)
		case strings.Contains(msg, "control characters"):
			off = firstControl(data)
		case strings.HasPrefix(msg, "unknown anchor"):
			if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
				off = findAnchor(data, '*', m[1])
			}
		case strings.HasPrefix(msg, "anchor "):
			if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil {
				off = findAnchor(data, '&', m[1])
			}
		}
		if off >= 0 {
			line, col = lineCol(data, off)
		}
	}
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 {
		line = 1
	}
	if line > len(lines) {
		line = len(lines)
	}
	if col < 1 {
		// Point at the line's first character that is not blank.
		text := lines[line-1]
		indent := text[:len(text)-len(bytes.TrimLeft(text, " \t"))]
		col = len(indent) + 1
		if bytes.IndexByte(indent, '\t') >= 0 {
			msg += " (YAML is indented with spaces; this line has a tab)"
		}
	}
	l.add(Position{File: l.file, Line: line, Col: col}, "", "", "YAML syntax error: %s", msg)
}

func lineCol(data []byte, off int) (line, col int) {
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return -1
}

func firstControl(data []byte) int {
	for i, r := range string(data) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r <= 0x9f && r != 0x85 || r == 0xfffe || r == 0xffff {
			return i
		}
	}
	return -1
}

// findAnchor returns the offset of the first "&name" or "*name" in data.
func findAnchor(data []byte, sigil byte, name string) int {
	pat := append([]byte{sigil}, name...)
	for off := 0; ; {
		i := bytes.Index(data[off:], pat)
		if i < 0 {
			return -1
		}
		end := off + i + len(pat)
		if end == len(data) || bytes.IndexByte([]byte(" \t\r\n,]}"), data[end]) >= 0 {
			return off + i
		}
		off += i + 1
	}
}

// ---- generic node decoding

// spend takes one node visit from the budget; once it is exhausted, decoding stops
// with one error.
func (l *loader) spend(n *yaml.Node) bool {
	if l.stopped {
		return false
	}
	l.budget--
	if l.budget < 0 {
		l.stopped, l.incomplete = true, true
		l.add(l.at(n), "", "", "the document expands to too many nodes through aliases (anchors used inside anchors); write it out or use fewer aliases")
		return false
	}
	return true
}

// resolve follows aliases to the node they stand for.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 1000; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || n.Kind == yaml.AliasNode ||
		n.Kind == yaml.DocumentNode && len(n.Content) == 0 ||
		n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "got …" in error messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case isNull(n):
		return "nothing (null)"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.ScalarNode:
		v := n.Value
		if utf8.RuneCountInString(v) > 40 {
			v = string([]rune(v)[:40]) + "…"
		}
		switch n.ShortTag() {
		case "!!bool":
			return "the boolean " + v
		case "!!int", "!!float":
			return "the number " + v
		case "!!timestamp":
			return "the date " + v
		}
		return fmt.Sprintf("the string %q", v)
	}
	return "a document"
}

type field struct {
	name     string
	key, val *yaml.Node
}

// fieldSet is a mapping's fields, merge keys (<<) expanded.
type fieldSet struct {
	list    []field
	byName  map[string]int
	unknown int // how many fields were not allowed
}

func (fs *fieldSet) get(name string) (field, bool) {
	i, ok := fs.byName[name]
	if !ok {
		return field{}, false
	}
	return fs.list[i], true
}

// mapping decodes n as a mapping whose field names are in allowed (any name when
// allowed is nil), reporting unknown and repeated fields, and records each field's
// position under path. A null n is an empty mapping.
func (l *loader) mapping(n *yaml.Node, path string, allowed []string, example string) (*fieldSet, bool) {
	fs := &fieldSet{byName: map[string]int{}}
	rn := resolve(n)
	if isNull(rn) {
		return fs, true
	}
	if rn.Kind != yaml.MappingNode {
		if path == "" {
			l.bad(n, path, "the file must be a mapping with the fields %s, got %s", strings.Join(allowed, ", "), describe(n))
		} else {
			l.bad(n, path, "must be a mapping, like %s, got %s", example, describe(n))
		}
		return fs, false
	}
	var suggested []string
	l.collect(rn, path, allowed, fs, false, &suggested, map[*yaml.Node]bool{})
	// A misspelled field stands for the one it resembles: do not also report that one
	// as missing or invalid.
	for _, s := range suggested {
		if _, given := fs.byName[s]; !given {
			l.poisoned[join(path, s)] = true
		}
	}
	for _, f := range fs.list {
		l.recordField(join(path, f.name), f)
	}
	return fs, true
}

// recordField records where a field is: at its value when that is a scalar (the text
// that is wrong), at its name when the value is a mapping or a list.
func (l *loader) recordField(path string, f field) {
	if rv := resolve(f.val); rv != nil && (rv.Kind == yaml.MappingNode || rv.Kind == yaml.SequenceNode) {
		l.record(path, f.key)
	} else {
		l.record(path, f.val)
	}
}

// collect adds n's fields to fs: its own first, then those of the mappings it merges
// (<<), each of those only when not given before, and each merged mapping only once.
func (l *loader) collect(n *yaml.Node, path string, allowed []string, fs *fieldSet, merged bool, suggested *[]string, seen map[*yaml.Node]bool) {
	if seen[n] {
		return
	}
	seen[n] = true
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !l.spend(k) {
			return
		}
		rk := resolve(k)
		if rk.Kind == yaml.ScalarNode && rk.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if rk.Kind != yaml.ScalarNode || isNull(rk) {
			l.add(l.at(k), path, "", "field names must be plain strings, got %s", describe(k))
			fs.unknown++
			continue
		}
		name := rk.Value
		if allowed != nil && !contains(allowed, name) {
			fs.unknown++
			hint := ""
			if s := closest(name, allowed); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
				*suggested = append(*suggested, s)
			}
			l.add(l.at(k), path, "", "unknown field %q%s; allowed: %s", name, hint, strings.Join(allowed, ", "))
			continue
		}
		if j, dup := fs.byName[name]; dup {
			if !merged {
				l.add(l.at(k), path, "", "field %q is given twice (first at line %d)", name, fs.list[j].key.Line)
			}
			continue
		}
		fs.byName[name] = len(fs.list)
		fs.list = append(fs.list, field{name: name, key: k, val: v})
	}
	for _, m := range merges {
		rm := resolve(m)
		switch rm.Kind {
		case yaml.MappingNode:
			l.collect(rm, path, allowed, fs, true, suggested, seen)
		case yaml.SequenceNode:
			for _, item := range rm.Content {
				if ri := resolve(item); ri.Kind == yaml.MappingNode {
					l.collect(ri, path, allowed, fs, true, suggested, seen)
				} else {
					l.add(l.at(item), path, "", "a merge (<<) takes a mapping or a list of mappings, got %s", describe(item))
				}
			}
		default:
			l.add(l.at(m), path, "", "a merge (<<) takes a mapping or a list of mappings, got %s", describe(m))
		}
	}
}

// list decodes n as a list and returns its items. Items that are definitions (assets,
// deps, schedules, notifiers) have their positions recorded as path[i]; plain strings
// need not be, as errors about them are reported here with their own position.
// A null n is an empty list.
func (l *loader) list(n *yaml.Node, path, want string) []*yaml.Node {
	return l.items(n, path, want, true)
}

func (l *loader) items(n *yaml.Node, path, want string, record bool) []*yaml.Node {
	rn := resolve(n)
	if isNull(rn) {
		return nil
	}
	if rn.Kind != yaml.SequenceNode {
		l.bad(n, path, "must be %s, got %s", want, describe(n))
		return nil
	}
	items := make([]*yaml.Node, 0, len(rn.Content))
	for i, item := range rn.Content {
		if !l.spend(item) {
			break
		}
		if record {
			l.record(fmt.Sprintf("%s[%d]", path, i), item)
		}
		items = append(items, item)
	}
	return items
}

// str decodes a string field: any scalar, kept as written (code_version: 1 is "1",
// start: 2026-01-01 is "2026-01-01"). Null is "".
func (l *loader) str(n *yaml.Node, path string) (string, bool) {
	rn := resolve(n)
	if isNull(rn) {
		return "", true
	}
	if rn.Kind != yaml.ScalarNode {
		l.bad(n, path, "must be a string, got %s", describe(n))
		return "", false
	}
	return rn.Value, true
}

func (l *loader) strList(n *yaml.Node, path string) []string {
	var out []string
	for i, item := range l.items(n, path, "a list of strings, like [a, b]", false) {
		if isNull(item) {
			l.bad(item, fmt.Sprintf("%s[%d]", path, i), "must be a string, got nothing (null)")
			continue
		}
		if s, ok := l.str(item, fmt.Sprintf("%s[%d]", path, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

// strMap decodes a mapping of names to strings (env, headers). Null values are "".
func (l *loader) strMap(n *yaml.Node, path, example string, validName func(string) error) map[string]string {
	fs, ok := l.mapping(n, path, nil, example)
	if !ok || len(fs.list) == 0 {
		return nil
	}
	m := make(map[string]string, len(fs.list))
	for _, f := range fs.list {
		p := join(path, f.name)
		if validName != nil {
			if err := validName(f.name); err != nil {
				l.add(l.at(f.key), p, "", "%v", err)
				l.poisoned[p] = true
				continue
			}
		}
		if s, ok := l.str(f.val, p); ok {
			m[f.name] = s
		}
	}
	return m
}

// integer decodes an integer field; null is 0.
func (l *loader) integer(n *yaml.Node, path string) (int, bool) {
	rn := resolve(n)
	if isNull(rn) {
		return 0, true
	}
	if rn.Kind != yaml.ScalarNode || rn.ShortTag() != "!!int" {
		l.bad(n, path, "must be an integer, got %s", describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(rn.Value, "_", ""), 0, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		l.bad(n, path, "must be an integer, got %q", rn.Value)
		return 0, false
	}
	if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		l.bad(n, path, "integer %s is out of range: give one between %d and %d", rn.Value, math.MinInt32, math.MaxInt32)
		return 0, false
	}
	return int(v), true
}

func (l *loader) duration(n *yaml.Node, path string) (time.Duration, bool) {
	rn := resolve(n)
	if isNull(rn) {
		return 0, true
	}
	if rn.Kind != yaml.ScalarNode {
		l.bad(n, path, "must be a duration such as 30s, 10m, 1h30m or 2d, got %s", describe(n))
		return 0, false
	}
	d, err := ParseDuration(rn.Value)
	if err != nil {
		l.bad(n, path, "%v", err)
		return 0, false
	}
	return d, true
}

func (l *loader) boolean(n *yaml.Node, path string) (bool, bool) {
	rn := resolve(n)
	if isNull(rn) {
		return false, true
	}
	if rn.Kind != yaml.ScalarNode || rn.ShortTag() != "!!bool" {
		l.bad(n, path, "must be true or false, got %s", describe(n))
		return false, false
	}
	return strings.EqualFold(rn.Value, "true"), true
}

// ParseDuration parses a duration as written in definitions: Go syntax ("30s", "10m",
// "1h30m", "26h") or a whole number of days, optionally followed by Go syntax ("2d",
// "1d12h"). A day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("bad duration %q: want a number and a unit (ms, s, m, h or d), such as 30s, 10m, 1h30m or 2d", s)
	}
	body, neg := s, false
	if strings.HasPrefix(body, "-") || strings.HasPrefix(body, "+") {
		body, neg = body[1:], body[0] == '-'
	}
	i := 0
	for i < len(body) && body[i] >= '0' && body[i] <= '9' {
		i++
	}
	if i == 0 || i == len(body) || body[i] != 'd' {
		if body == "" || body[0] == '-' || body[0] == '+' {
			return bad()
		}
		d, err := time.ParseDuration(body)
		if err != nil {
			if strings.Contains(err.Error(), "missing unit") {
				return 0, fmt.Errorf("bad duration %q: give a unit, such as %ss, %sm, %sh or %sd", s, body, body, body, body)
			}
			return bad()
		}
		if neg {
			d = -d
		}
		return d, nil
	}
	const day = 24 * time.Hour
	days, err := strconv.ParseInt(body[:i], 10, 64)
	if err != nil || days > int64(math.MaxInt64/day) {
		return 0, fmt.Errorf("bad duration %q: too long", s)
	}
	d := time.Duration(days) * day
	if rest := body[i+1:]; rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return bad()
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return bad()
		}
		if r > math.MaxInt64-d {
			return 0, fmt.Errorf("bad duration %q: too long", s)
		}
		d += r
	}
	if neg {
		d = -d
	}
	return d, nil
}

// ---- the definitions schema

func (l *loader) asset(n *yaml.Node) {
	i := len(l.defs.Assets)
	p := fmt.Sprintf("assets[%d]", i)
	a := &Asset{}
	l.defs.Assets = append(l.defs.Assets, a)
	first := len(l.errs)
	fs, ok := l.mapping(n, p, assetFields, "{key: sales/raw_orders, compute: {command: [python3, fetch.py]}}")
	if !ok {
		return
	}
	if f, ok := fs.get("key"); ok && !isNull(f.val) {
		s, _ := l.str(f.val, p+".key")
		a.Key = Key(s) // Validate checks it
	} else if !l.poisoned[p+".key"] {
		l.bad(n, p+".key", "missing: every asset needs a key, like key: sales/raw_orders")
	}

	for _, f := range fs.list {
		fp := join(p, f.name)
		switch f.name {
		case "description":
			a.Description, _ = l.str(f.val, fp)
		case "group":
			a.Group, _ = l.str(f.val, fp)
		case "owners":
			a.Owners = l.strList(f.val, fp)
		case "tags":
			a.Tags = l.strList(f.val, fp)
		case "code_version":
			a.CodeVersion, _ = l.str(f.val, fp)
		case "partitions":
			if !isNull(f.val) {
				a.Partitions = l.partitions(f.val, fp)
			}
		case "deps":
			items := l.list(f.val, fp, "a list of upstream assets, like [sales/raw_orders, {asset: sales/rates, start_offset: -1}]")
			for j, item := range items {
				a.Deps = append(a.Deps, l.dep(item, i, j))
			}
		case "compute":
			a.Compute = l.compute(f.val, fp)
		case "observe":
			a.Observe = l.compute(f.val, fp)
		case "retries":
			rs, ok := l.mapping(f.val, fp, retriesFields, "{max: 3, backoff: 30s, max_backoff: 10m}")
			if !ok {
				continue
			}
			if v, ok := rs.get("max"); ok {
				a.Retries.Max, _ = l.integer(v.val, fp+".max")
			}
			if v, ok := rs.get("backoff"); ok {
				a.Retries.Backoff, _ = l.duration(v.val, fp+".backoff")
			}
			if v, ok := rs.get("max_backoff"); ok {
				a.Retries.MaxBackoff, _ = l.duration(v.val, fp+".max_backoff")
			}
		case "timeout":
			a.Timeout, _ = l.duration(f.val, fp)
		case "freshness":
			if !isNull(f.val) {
				a.Freshness = l.freshness(f.val, fp)
			}
		case "batch":
			bs, ok := l.mapping(f.val, fp, batchFields, "{max_partitions: 31}")
			if !ok {
				continue
			}
			if v, ok := bs.get("max_partitions"); ok {
				a.Batch.MaxPartitions, _ = l.integer(v.val, fp+".max_partitions")
			}
		case "concurrency":
			a.Concurrency, _ = l.integer(f.val, fp)
		}
	}
	// Now that the key is known, name the asset in its errors.
	if k := l.assetKey(i); k != "" {
		for _, e := range l.errs[first:] {
			if e.Asset == "" {
				e.Asset = k
			}
		}
	}
}

// placeholderStart is a Monday and the first of a month, valid for every granularity.
const placeholderStart = "2001-01-01"

// partitions decodes {daily: {start, end, timezone, end_offset}}. When that fails the
// asset still gets partitions (a placeholder, as the definitions are not returned), so
// the one mistake is not echoed as "needs both sides partitioned" elsewhere.
func (l *loader) partitions(n *yaml.Node, p string) *Partitions {
	first := len(l.errs)
	spec := PartitionsSpec{Granularity: Daily}
	placeholder := func() *Partitions {
		parts, _ := NewPartitions(PartitionsSpec{Granularity: spec.Granularity, Start: placeholderStart})
		return parts
	}
	fs, ok := l.mapping(n, p, granularityFields, "{daily: {start: 2026-01-01}}")
	if !ok {
		return placeholder()
	}
	switch {
	case len(fs.list) == 0:
		if fs.unknown == 0 {
			l.bad(n, p, "needs one of hourly, daily, weekly or monthly, like {daily: {start: 2026-01-01}}")
		}
		return placeholder()
	case len(fs.list) > 1:
		l.bad(fs.list[1].key, p, "give one granularity, not both %s and %s", fs.list[0].name, fs.list[1].name)
		return placeholder()
	}
	f := fs.list[0]
	spec.Granularity, _ = ParseGranularity(f.name)
	gp := join(p, f.name)
	ws, ok := l.mapping(f.val, gp, windowFields, "{start: 2026-01-01, timezone: UTC}")
	if !ok {
		return placeholder()
	}
	for _, w := range ws.list {
		wp := join(gp, w.name)
		switch w.name {
		case "start":
			spec.Start, _ = l.str(w.val, wp)
		case "end":
			spec.End, _ = l.str(w.val, wp)
		case "timezone":
			spec.Timezone, _ = l.str(w.val, wp)
		case "end_offset":
			spec.EndOffset, _ = l.integer(w.val, wp)
		}
	}
	// NewPartitions stops at the first problem; retry past a bad timezone so a bad
	// start is reported in the same run.
	for {
		parts, err := NewPartitions(spec)
		if err == nil {
			if len(l.errs) > first {
				return placeholder()
			}
			return parts
		}
		var se *SpecError
		if !errors.As(err, &se) {
			l.bad(n, p, "%v", err)
			return placeholder()
		}
		fp := join(gp, se.Field)
		if !l.isPoisoned(fp) {
			l.add(l.position(fp), fp, "", "%s", se.Msg)
			l.poisoned[fp] = true
		}
		if se.Field == "timezone" {
			spec.Timezone = ""
			continue
		}
		if se.Field == "start" && spec.End != "" {
			if _, _, _, _, _, err := parseLocalDateTime(spec.End); err != nil && !l.isPoisoned(gp+".end") {
				l.add(l.position(gp+".end"), gp+".end", "", "%v", err)
			}
		}
		return placeholder()
	}
}

func (l *loader) dep(n *yaml.Node, ai, j int) Dep {
	dp := fmt.Sprintf("assets[%d].deps[%d]", ai, j)
	rn := resolve(n)
	switch {
	case rn.Kind == yaml.ScalarNode && !isNull(rn):
		l.record(dp+".asset", n)
		l.depRefs = append(l.depRefs, depRef{asset: ai, dep: j, raw: rn.Value, pos: l.at(n)})
		return Dep{Asset: Key(rn.Value)}
	case rn.Kind == yaml.MappingNode:
		var d Dep
		fs, _ := l.mapping(n, dp, depFields, "")
		if f, ok := fs.get("asset"); ok && !isNull(f.val) {
			if s, ok := l.str(f.val, dp+".asset"); ok {
				d.Asset = Key(s)
				l.depRefs = append(l.depRefs, depRef{asset: ai, dep: j, raw: s, pos: l.at(f.val)})
			}
		} else if !l.poisoned[dp+".asset"] {
			l.bad(n, dp+".asset", "missing: name the upstream asset, like {asset: sales/raw_orders}")
		}
		if f, ok := fs.get("mapping"); ok {
			s, _ := l.str(f.val, dp+".mapping")
			d.Mapping = Mapping(s) // Validate checks it
		}
		if f, ok := fs.get("start_offset"); ok {
			d.StartOffset, _ = l.integer(f.val, dp+".start_offset")
		}
		if f, ok := fs.get("end_offset"); ok {
			d.EndOffset, _ = l.integer(f.val, dp+".end_offset")
		}
		return d
	default:
		l.bad(n, dp, "must be an upstream asset key, or a mapping like {asset: sales/raw_orders, start_offset: -1}, got %s", describe(n))
		return Dep{}
	}
}

// compute decodes compute or observe: exactly one of command, sql or http. When the
// field is given but cannot be decoded, the result is a placeholder command, so the
// asset is not then also reported as a source.
func (l *loader) compute(n *yaml.Node, p string) Compute {
	if isNull(n) {
		return nil
	}
	first := len(l.errs)
	c := l.decodeCompute(n, p)
	if c == nil && len(l.errs) > first {
		return CommandCompute{Argv: []string{"<invalid>"}}
	}
	return c
}

func (l *loader) decodeCompute(n *yaml.Node, p string) Compute {
	fs, ok := l.mapping(n, p, computeFields, "{command: [python3, build.py, \"{partition}\"]}")
	if !ok {
		return nil
	}
	var kinds []field
	for _, f := range fs.list {
		if contains(computeKinds, f.name) {
			kinds = append(kinds, f)
		}
	}
	switch {
	case len(kinds) == 0:
		if fs.unknown == 0 {
			l.bad(n, p, "needs one of command (an argv list), sql (a file, with connection) or http (a URL)")
		}
		return nil
	case len(kinds) > 1:
		l.bad(kinds[1].key, p, "give exactly one of command, sql or http, not both %s and %s", kinds[0].name, kinds[1].name)
		return nil
	}
	kind := kinds[0]
	for _, f := range fs.list {
		if owner, ok := computeCompanions[f.name]; ok && owner != kind.name {
			l.bad(f.key, join(p, f.name), "%s applies only to %s compute, and this one is %s", f.name, owner, kind.name)
		}
	}
	get := func(name string) *yaml.Node {
		if f, ok := fs.get(name); ok {
			return f.val
		}
		return nil
	}
	switch kind.name {
	case "command":
		argv, ok := l.argv(kind.val, p+".command")
		if !ok {
			return nil
		}
		c := CommandCompute{Argv: argv}
		if v := get("env"); v != nil {
			c.Env = l.strMap(v, p+".env", "{NAME: value}", validEnvName)
		}
		if v := get("dir"); v != nil {
			c.Dir, _ = l.str(v, p+".dir")
		}
		return c
	case "sql":
		var c SQLCompute
		c.File, _ = l.str(kind.val, p+".sql")
		if v := get("connection"); v != nil {
			c.Connection, _ = l.str(v, p+".connection")
		}
		return c
	default:
		var c HTTPCompute
		c.URL, _ = l.str(kind.val, p+".http")
		if v := get("headers"); v != nil {
			c.Headers = l.strMap(v, p+".headers", "{Authorization: Bearer xyz}", nil)
		}
		return c
	}
}

// argv decodes a command: a list of arguments, never a shell string.
func (l *loader) argv(n *yaml.Node, p string) ([]string, bool) {
	rn := resolve(n)
	if rn.Kind == yaml.ScalarNode && !isNull(rn) {
		l.bad(n, p, "must be an argv list, not a string: commands are never run through a shell; write %s (or [sh, -c, \"...\"] to use a shell on purpose)", suggestArgv(rn.Value))
		return nil, false
	}
	first := len(l.errs)
	var argv []string
	for i, item := range l.items(n, p, "an argv list, like [python3, fetch.py, --date, \"{partition}\"]", false) {
		ip := fmt.Sprintf("%s[%d]", p, i)
		ri := resolve(item)
		if ri.Kind != yaml.ScalarNode || isNull(ri) {
			hint := ""
			if ri.Kind == yaml.MappingNode {
				hint = " (quote arguments that contain \": \")"
			}
			l.bad(item, ip, "each argument must be a string, got %s%s", describe(item), hint)
			continue
		}
		argv = append(argv, ri.Value)
	}
	return argv, len(l.errs) == first
}

// suggestArgv writes a shell-like command line as a YAML argv list.
func suggestArgv(s string) string {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return `[python3, fetch.py, --date, "{partition}"]`
	}
	for i, f := range fields {
		if strings.ContainsAny(f, "{}[],:#&*!|>'\"%@`?") {
			fields[i] = strconv.Quote(f)
		}
	}
	return "[" + strings.Join(fields, ", ") + "]"
}

func validEnvName(name string) error {
	if name == "" || strings.ContainsAny(name, "=\x00") {
		return fmt.Errorf("%q is not a valid environment variable name", name)
	}
	return nil
}

func (l *loader) freshness(n *yaml.Node, p string) *FreshnessPolicy {
	fs, ok := l.mapping(n, p, freshnessFields, "{max_lag: 26h} or {deadline: {cron: \"0 9 * * *\"}}")
	if !ok {
		return nil
	}
	f := &FreshnessPolicy{}
	for _, v := range fs.list {
		vp := join(p, v.name)
		switch v.name {
		case "max_lag":
			f.MaxLag, _ = l.duration(v.val, vp)
		case "warn_lag":
			f.WarnLag, _ = l.duration(v.val, vp)
		case "deadline":
			if isNull(v.val) {
				continue
			}
			ds, ok := l.mapping(v.val, vp, deadlineFields, `{cron: "0 9 * * *", timezone: Europe/Berlin}`)
			d := &Deadline{}
			if ok {
				if c, ok := ds.get("cron"); ok {
					d.Cron, _ = l.str(c.val, vp+".cron")
				}
				if c, ok := ds.get("timezone"); ok {
					d.Timezone, _ = l.str(c.val, vp+".timezone")
				}
			} else {
				d.Cron = "0 0 * * *" // placeholder: the deadline was reported
			}
			f.Deadline = d
		}
	}
	return f
}

func (l *loader) schedule(n *yaml.Node) {
	i := len(l.defs.Schedules)
	p := fmt.Sprintf("schedules[%d]", i)
	l.defs.Schedules = append(l.defs.Schedules, Schedule{})
	fs, ok := l.mapping(n, p, scheduleFields, `{name: nightly, cron: "0 2 * * *", select: "*"}`)
	if !ok {
		return
	}
	s := &l.defs.Schedules[i]
	for _, f := range fs.list {
		fp := join(p, f.name)
		switch f.name {
		case "name":
			s.Name, _ = l.str(f.val, fp)
		case "cron":
			s.Cron, _ = l.str(f.val, fp)
		case "timezone":
			s.Timezone, _ = l.str(f.val, fp)
		case "select":
			s.Select, _ = l.str(f.val, fp)
		case "action":
			s.Action, _ = l.str(f.val, fp)
		}
	}
}

var connectionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (l *loader) connections(n *yaml.Node) {
	fs, ok := l.mapping(n, "connections", nil, "{warehouse: {postgres: {url_env: WAREHOUSE_URL}}}")
	if !ok {
		return
	}
	for _, f := range fs.list {
		p := "connections." + f.name
		if prev, dup := l.connPos[f.name]; dup {
			l.add(l.at(f.key), p, "", "connection %q is already defined at %s", f.name, prev)
			continue
		}
		l.connPos[f.name] = l.at(f.key)
		first := len(l.errs)
		if !connectionNameRE.MatchString(f.name) {
			l.add(l.at(f.key), p, "", "connection name %q may use only letters, digits, _ and -", f.name)
		}
		var c Connection
		cs, ok := l.mapping(f.val, p, connectionFields, "{postgres: {url_env: WAREHOUSE_URL}}")
		if ok {
			if pg, ok := cs.get("postgres"); ok {
				c.Postgres = &PostgresConnection{}
				c.Postgres.URL, c.Postgres.URLEnv = l.url(pg.val, p+".postgres", "{url_env: WAREHOUSE_URL}")
			}
		}
		if len(l.errs) > first {
			// Reported: keep the name defined so references to it are not echoed.
			c = Connection{Postgres: &PostgresConnection{URLEnv: "-"}}
		}
		if l.defs.Connections == nil {
			l.defs.Connections = map[string]Connection{}
		}
		l.defs.Connections[f.name] = c
	}
}

// url decodes {url | url_env}.
func (l *loader) url(n *yaml.Node, p, example string) (url, env string) {
	us, ok := l.mapping(n, p, urlFields, example)
	if !ok {
		return "", ""
	}
	if f, ok := us.get("url"); ok {
		url, _ = l.str(f.val, p+".url")
	}
	if f, ok := us.get("url_env"); ok {
		env, _ = l.str(f.val, p+".url_env")
	}
	return url, env
}

func (l *loader) notifier(n *yaml.Node) {
	i := len(l.defs.Notifiers)
	p := fmt.Sprintf("notifiers[%d]", i)
	l.defs.Notifiers = append(l.defs.Notifiers, Notifier{})
	first := len(l.errs)
	var nt Notifier
	fs, ok := l.mapping(n, p, notifierFields, "{webhook: {url_env: ALERT_WEBHOOK_URL}}")
	if ok {
		for _, f := range fs.list {
			fp := join(p, f.name)
			switch f.name {
			case "log":
				nt.Log, _ = l.boolean(f.val, fp)
			case "webhook", "slack":
				w := &WebhookNotifier{}
				w.URL, w.URLEnv = l.url(f.val, fp, "{url_env: ALERT_WEBHOOK_URL}")
				if f.name == "webhook" {
					nt.Webhook = w
				} else {
					nt.Slack = w
				}
			}
		}
	}
	if len(l.errs) > first {
		l.poisoned[p] = true
	}
	l.defs.Notifiers[i] = nt
}

// ---- small helpers

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// closest returns the allowed name a misspelled one most likely stands for, or "".
func closest(name string, allowed []string) string {
	best, bestDist := "", 3
	for _, a := range allowed {
		d := osaDistance(strings.ToLower(name), a)
		limit := 2
		if len(a) <= 4 {
			limit = 1
		}
		if d <= limit && d < bestDist {
			best, bestDist = a, d
		}
	}
	return best
}

// osaDistance is the edit distance counting a swap of two adjacent letters as one edit.
func osaDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
