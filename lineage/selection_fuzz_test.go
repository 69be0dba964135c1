package lineage

import (
	"errors"
	"slices"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that its errors are *SyntaxError values
// pointing inside the expression, that a parsed selection's canonical form parses back
// to the same selection and the same form, and that resolving never panics.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"*", "key:*", "sales/raw_orders", "sales/*", "sales/raw_*", "key:sales/*/x",
		"group:sales", "tag:pii", "owner:team:data-eng", "owner:alice@example.com",
		"+x", "2+x", "x+", "x+3", "+x+", "2+x+1", "007+x+010", "+*",
		"tag:pii,group:sales", "a b,c", "+finance/report,tag:pii", "  a \t b\n",
		"key:42+", "1+2", "2024_budget", "12a+",
		"", "sales/x++", "grp:sales", "group:", ":x", "0+x", "x+99999999999", ",a", "a,",
		"a ,b", "Sales/X", "sales//x", "x/", "2+", "2+ x", "tag:a*", "ab\xff", "tag:é x++",
		"a\u00a0b", "owner:a\u200bb",
	} {
		f.Add(seed)
	}
	g := testGraph(f)
	f.Fuzz(func(t *testing.T, expr string) {
		// Nothing in the parser depends on length beyond a few selectors, and the
		// fuzzer's minimization of a long new input runs O(len²) executions, which
		// stalled whole minutes of fuzzing before this cap.
		if len(expr) > 512 {
			return
		}
		sel, err := Parse(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q): error %T %v, want a *SyntaxError", expr, err, err)
			}
			if se.Expr != expr || se.Column < 0 || se.Column > utf8.RuneCountInString(expr)+1 {
				t.Fatalf("Parse(%q): error %#v points outside the expression", expr, se)
			}
			return
		}
		canonical := sel.String()
		again, err := Parse(canonical)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse: %v", expr, canonical, err)
		}
		if got := again.String(); got != canonical {
			t.Fatalf("Parse(%q) = %q, which parses to %q", expr, canonical, got)
		}
		if !slices.EqualFunc(again.terms, sel.terms, slices.Equal) {
			t.Fatalf("Parse(%q) = %+v, but its canonical form %q parses to %+v", expr, sel.terms, canonical, again.terms)
		}
		set, err := sel.Resolve(g)
		var ue *UnknownAssetError
		switch {
		case err != nil && !errors.As(err, &ue):
			t.Fatalf("Resolve(%q): error %T %v, want an *UnknownAssetError", expr, err, err)
		case err == nil && len(set) != g.Len():
			t.Fatalf("Resolve(%q): %d entries, want %d", expr, len(set), g.Len())
		}
	})
}
