package assets

import (
	"fmt"
	"strings"
)

// Position is a place in a definitions file (1-based line and column).
type Position struct {
	File string
	Line int
	Col  int
}

func (p Position) String() string {
	if p.File == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Error is one problem in a set of definitions. Path is the field path from the
// definitions' root, for example "assets[2].deps[0].asset"; Asset names the asset it
// concerns, if any.
type Error struct {
	Pos   Position
	Path  string
	Asset Key
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	field := e.Path
	if e.Asset != "" {
		fmt.Fprintf(&b, "asset %s: ", e.Asset)
		// Within an asset, name the field relative to it.
		if i := strings.Index(field, "]."); strings.HasPrefix(field, "assets[") && i >= 0 {
			field = field[i+2:]
		} else if strings.HasPrefix(field, "assets[") {
			field = ""
		}
	}
	if field != "" {
		b.WriteString(field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found at once, one per line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns es as an error, or nil when there are none.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
