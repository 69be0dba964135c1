package lineage

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
)

// Selection is a parsed selection expression: a union of terms, each the intersection
// of one or more selectors. It is immutable and safe for concurrent use.
type Selection struct {
	terms [][]selector
}

// selector is one atom with its graph operators.
type selector struct {
	atom atom
	// up and down are the graph operator depths: 0 for no operator, unlimited for a
	// bare "+", or a number of levels. unlimited is also graph.Closure's "no limit".
	up, down int
}

const (
	unlimited = -1
	// maxDepth bounds a depth number; graphs are never nearly this deep.
	maxDepth = 1_000_000
)

type atomKind uint8

const (
	atomAll atomKind = iota
	atomKey
	atomPattern
	atomGroup
	atomTag
	atomOwner
)

type atom struct {
	kind  atomKind
	value string // empty for atomAll
}

// SyntaxError is a selection expression that does not parse.
type SyntaxError struct {
	Expr   string
	Column int // 1-based, in characters; 0 when the error is about the whole expression
	Msg    string
}

func (e *SyntaxError) Error() string {
	if e.Column == 0 {
		return fmt.Sprintf("selection %q: %s", e.Expr, e.Msg)
	}
	return fmt.Sprintf("selection %q: column %d: %s", e.Expr, e.Column, e.Msg)
}

// UnknownAssetError is an exact asset key that names no asset in the graph.
type UnknownAssetError struct {
	Key assets.Key
	// Suggestion is the closest existing key, or empty when none is close.
	Suggestion assets.Key
}

func (e *UnknownAssetError) Error() string {
	if e.Suggestion == "" {
		return fmt.Sprintf("unknown asset %q", e.Key)
	}
	return fmt.Sprintf("unknown asset %q (did you mean %q?)", e.Key, e.Suggestion)
}

// Parse parses a selection expression (see the package documentation for the syntax).
// Errors are *SyntaxError values naming the column and the offending text.
func Parse(expr string) (*Selection, error) {
	if !utf8.ValidString(expr) {
		b := 0
		for b < len(expr) {
			r, size := utf8.DecodeRuneInString(expr[b:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			b += size
		}
		return nil, &SyntaxError{Expr: expr, Column: utf8.RuneCountInString(expr[:b]) + 1, Msg: "invalid UTF-8"}
	}
	p := &parser{expr: expr, rs: []rune(expr)}
	s := &Selection{}
	for {
		for p.i < len(p.rs) && unicode.IsSpace(p.rs[p.i]) {
			p.i++
		}
		if p.i == len(p.rs) {
			break
		}
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		s.terms = append(s.terms, t)
	}
	if len(s.terms) == 0 {
		return nil, &SyntaxError{Expr: expr, Msg: `empty expression (want "*", an asset key, or group:NAME, tag:NAME, owner:NAME)`}
	}
	return s, nil
}

type parser struct {
	expr string
	rs   []rune
	i    int // index into rs
}

func (p *parser) errAt(i int, format string, args ...any) error {
	return &SyntaxError{Expr: p.expr, Column: i + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) at(r rune) bool { return p.i < len(p.rs) && p.rs[p.i] == r }

// endOfSelector reports whether the current selector ends at p.i.
func (p *parser) endOfSelector() bool {
	return p.i == len(p.rs) || p.rs[p.i] == ',' || unicode.IsSpace(p.rs[p.i])
}

func (p *parser) strayComma(i int) error {
	return p.errAt(i, `stray "," (a comma joins two selectors into an intersection, with no spaces around it: tag:pii,group:sales)`)
}

// term parses selectors joined by commas.
func (p *parser) term() ([]selector, error) {
	var t []selector
	for {
		if p.at(',') {
			return nil, p.strayComma(p.i)
		}
		sel, err := p.selector()
		if err != nil {
			return nil, err
		}
		t = append(t, sel)
		if !p.at(',') {
			return t, nil
		}
		p.i++
		if p.endOfSelector() {
			return nil, p.strayComma(p.i - 1)
		}
	}
}

// selector parses [N]+? atom +[N]?.
func (p *parser) selector() (selector, error) {
	var sel selector
	start := p.i
	digits := p.digits()
	switch {
	case digits == 0 && p.at('+'):
		sel.up = unlimited
		p.i++
	case digits > 0 && p.i+digits < len(p.rs) && p.rs[p.i+digits] == '+':
		d, err := p.depth(p.i, p.i+digits)
		if err != nil {
			return sel, err
		}
		sel.up = d
		p.i += digits + 1
	}
	if p.i > start {
		prefix := string(p.rs[start:p.i])
		if p.endOfSelector() {
			msg := fmt.Sprintf("expected a selector after %q", prefix)
			switch {
			case p.i < len(p.rs) && unicode.IsSpace(p.rs[p.i]):
				msg += " (no space goes between a + and its selector)"
			case digits > 0:
				key := prefix[:len(prefix)-1]
				msg += fmt.Sprintf("; leading digits and + are a depth, so for the asset %s and its downstream write key:%s+", key, key)
			}
			return sel, p.errAt(start, "%s", msg)
		}
		if p.at('+') {
			return sel, p.errAt(p.i, `unexpected "+"`)
		}
	}

	atomStart := p.i
	for !p.endOfSelector() && !p.at('+') {
		p.i++
	}
	a, err := p.atom(atomStart, p.i)
	if err != nil {
		return sel, err
	}
	sel.atom = a

	if p.at('+') {
		p.i++
		if n := p.digits(); n > 0 {
			d, err := p.depth(p.i, p.i+n)
			if err != nil {
				return sel, err
			}
			sel.down = d
			p.i += n
		} else {
			sel.down = unlimited
		}
	}
	if !p.endOfSelector() {
		return sel, p.errAt(p.i, "unexpected %q", string(p.rs[p.i]))
	}
	return sel, nil
}

// digits counts the ASCII digits at p.i.
func (p *parser) digits() int {
	n := 0
	for p.i+n < len(p.rs) && p.rs[p.i+n] >= '0' && p.rs[p.i+n] <= '9' {
		n++
	}
	return n
}

// depth parses the depth number rs[i:j].
func (p *parser) depth(i, j int) (int, error) {
	s := string(p.rs[i:j])
	d, err := strconv.Atoi(s)
	switch {
	case err != nil || d > maxDepth:
		return 0, p.errAt(i, "depth %q is too large (at most %d; a bare + means unlimited)", s, maxDepth)
	case d == 0:
		return 0, p.errAt(i, "depth %q selects no levels (want 1 or more, or a bare + for unlimited)", s)
	}
	return d, nil
}

// atom parses rs[i:j]: "*", a key or pattern, or method:value.
func (p *parser) atom(i, j int) (atom, error) {
	text := string(p.rs[i:j])
	if text == "*" {
		return atom{kind: atomAll}, nil
	}
	colon := strings.IndexByte(text, ':')
	if colon < 0 {
		return p.keyPattern(i, j)
	}
	method, value := text[:colon], text[colon+1:]
	vi := i + utf8.RuneCountInString(method) + 1
	if method == "" {
		return atom{}, p.errAt(i, `missing method before ":" (want group:, tag:, owner: or key:)`)
	}
	var kind atomKind
	switch method {
	case "key":
		if value == "" {
			return atom{}, p.errAt(i, `empty value in "key:" (want key:sales/orders or key:sales/*)`)
		}
		if value == "*" {
			return atom{kind: atomAll}, nil
		}
		return p.keyPattern(vi, j)
	case "group":
		kind = atomGroup
	case "tag":
		kind = atomTag
	case "owner":
		kind = atomOwner
	default:
		return atom{}, p.errAt(i, "unknown method %q (want group, tag, owner or key)", method)
	}
	if value == "" {
		return atom{}, p.errAt(i, "empty value in %q (want %sNAME)", method+":", method+":")
	}
	for k := vi; k < j; k++ {
		switch r := p.rs[k]; {
		case r == '*':
			return atom{}, p.errAt(k, `invalid character "*" in %s %q: patterns work only on keys`, method, value)
		case !unicode.IsPrint(r):
			return atom{}, p.errAt(k, "invalid character %q in %s %q", string(r), method, value)
		}
	}
	return atom{kind: kind, value: value}, nil
}

// keyPattern parses rs[i:j] as an asset key, or a key pattern when it contains "*".
func (p *parser) keyPattern(i, j int) (atom, error) {
	text := string(p.rs[i:j])
	segStart := i
	for k := i; k <= j; k++ {
		if k == j || p.rs[k] == '/' {
			if k == segStart {
				at := k
				if k == j {
					at = k - 1 // the trailing "/"
				}
				return atom{}, p.errAt(at, "empty segment in key %q (keys are identifiers joined by single slashes, like sales/raw_orders)", text)
			}
			segStart = k + 1
			continue
		}
		r := p.rs[k]
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '*') {
			msg := fmt.Sprintf(`invalid character %q in key %q: keys are lowercase identifiers [a-z0-9_] joined by "/"`, string(r), text)
			if lower := strings.ToLower(text); lower != text && validKeyText(lower) {
				msg += fmt.Sprintf(" (did you mean %q?)", lower)
			}
			return atom{}, p.errAt(k, "%s", msg)
		}
	}
	if strings.ContainsRune(text, '*') {
		return atom{kind: atomPattern, value: text}, nil
	}
	return atom{kind: atomKey, value: text}, nil
}

// validKeyText reports whether s is a valid key or key pattern.
func validKeyText(s string) bool {
	p := &parser{expr: s, rs: []rune(s)}
	_, err := p.keyPattern(0, len(p.rs))
	return err == nil
}

// String returns the canonical form of the selection: terms separated by one space,
// depths without leading zeros, and key: written only where it is needed (before a
// key that starts with a digit). Parse(s.String()) gives back an equal selection.
func (s *Selection) String() string {
	var b strings.Builder
	for i, t := range s.terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		for j, sel := range t {
			if j > 0 {
				b.WriteByte(',')
			}
			sel.writeTo(&b)
		}
	}
	return b.String()
}

func (sel selector) writeTo(b *strings.Builder) {
	if sel.up > 0 {
		b.WriteString(strconv.Itoa(sel.up))
	}
	if sel.up != 0 {
		b.WriteByte('+')
	}
	switch a := sel.atom; a.kind {
	case atomAll:
		b.WriteByte('*')
	case atomKey, atomPattern:
		if a.value[0] >= '0' && a.value[0] <= '9' {
			b.WriteString("key:")
		}
		b.WriteString(a.value)
	case atomGroup:
		b.WriteString("group:" + a.value)
	case atomTag:
		b.WriteString("tag:" + a.value)
	case atomOwner:
		b.WriteString("owner:" + a.value)
	}
	if sel.down != 0 {
		b.WriteByte('+')
	}
	if sel.down > 0 {
		b.WriteString(strconv.Itoa(sel.down))
	}
}

// Resolve evaluates the selection on g and reports, per node, whether it is selected.
//
// Every exact key must name an asset of g; the error then lists each unknown key, as
// an *UnknownAssetError, with the closest existing key as a suggestion. A group, tag,
// owner or key pattern that matches nothing is not an error: it selects nothing.
func (s *Selection) Resolve(g *graph.Graph) ([]bool, error) {
	var errs []error
	seen := map[string]bool{}
	for _, t := range s.terms {
		for _, sel := range t {
			if sel.atom.kind != atomKey || seen[sel.atom.value] {
				continue
			}
			seen[sel.atom.value] = true
			if _, ok := g.Index(assets.Key(sel.atom.value)); !ok {
				errs = append(errs, unknownAsset(g, assets.Key(sel.atom.value)))
			}
		}
	}
	switch len(errs) {
	case 0:
	case 1:
		return nil, errs[0]
	default:
		return nil, errors.Join(errs...)
	}

	out := make([]bool, g.Len())
	for _, t := range s.terms {
		acc := t[0].resolve(g)
		for _, sel := range t[1:] {
			for i, ok := range sel.resolve(g) {
				acc[i] = acc[i] && ok
			}
		}
		for i, ok := range acc {
			out[i] = out[i] || ok
		}
	}
	return out, nil
}

// Select parses expr and resolves it on g.
func Select(g *graph.Graph, expr string) ([]bool, error) {
	s, err := Parse(expr)
	if err != nil {
		return nil, err
	}
	return s.Resolve(g)
}

// resolve returns the nodes the selector selects; exact keys are known to exist.
func (sel selector) resolve(g *graph.Graph) []bool {
	set := make([]bool, g.Len())
	a := sel.atom
	if a.kind == atomKey {
		i, _ := g.Index(assets.Key(a.value))
		set[i] = true
	} else {
		for i := range set {
			set[i] = a.matches(g.Asset(i))
		}
	}
	if sel.up == 0 && sel.down == 0 {
		return set
	}
	var roots []int
	for i, ok := range set {
		if ok {
			roots = append(roots, i)
		}
	}
	if len(roots) == 0 {
		return set
	}
	for _, op := range []struct {
		depth int
		dir   graph.Direction
	}{{sel.up, graph.Upstream}, {sel.down, graph.Downstream}} {
		if op.depth == 0 {
			continue
		}
		for i, d := range g.Closure(roots, op.dir, op.depth) {
			if d >= 0 {
				set[i] = true
			}
		}
	}
	return set
}

func (a atom) matches(x *assets.Asset) bool {
	switch a.kind {
	case atomAll:
		return true
	case atomKey:
		return string(x.Key) == a.value
	case atomPattern:
		// The parser admits only [a-z0-9_*/], so the pattern is never malformed.
		ok, _ := path.Match(a.value, string(x.Key))
		return ok
	case atomGroup:
		return x.Group == a.value
	case atomTag:
		return slices.Contains(x.Tags, a.value)
	case atomOwner:
		return slices.Contains(x.Owners, a.value)
	}
	return false
}

// unknownAsset builds the error for key k, which is not in g, with a suggestion: a key
// one edit away, else a key ending in "/"+k (raw_orders → sales/raw_orders), else the
// closest key within a third of k's length.
func unknownAsset(g *graph.Graph, k assets.Key) *UnknownAssetError {
	u := string(k)
	var best, suffix string
	bestDist := -1
	for i := range g.Len() {
		c := string(g.Asset(i).Key)
		if d := assets.EditDistance(u, c); bestDist < 0 || d < bestDist || d == bestDist && c < best {
			best, bestDist = c, d
		}
		if strings.HasSuffix(c, "/"+u) && (suffix == "" || c < suffix) {
			suffix = c
		}
	}
	e := &UnknownAssetError{Key: k}
	switch {
	case bestDist == 1:
		e.Suggestion = assets.Key(best)
	case suffix != "":
		e.Suggestion = assets.Key(suffix)
	case bestDist >= 0 && bestDist <= max(2, len(u)/3):
		e.Suggestion = assets.Key(best)
	}
	return e
}
