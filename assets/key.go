package assets

import (
	"fmt"
	"strings"
)

// Key identifies an asset: lowercase identifiers ([a-z0-9_]+) joined by "/",
// for example "sales/raw_orders".
type Key string

// ParseKey validates s as an asset key.
func ParseKey(s string) (Key, error) {
	if s == "" {
		return "", fmt.Errorf("asset key is empty")
	}
	for i, part := range strings.Split(s, "/") {
		if part == "" {
			return "", fmt.Errorf("asset key %q has an empty segment (segment %d): keys are identifiers joined by single slashes, like sales/raw_orders", s, i+1)
		}
		for _, r := range part {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
				return "", fmt.Errorf("asset key %q contains %q: segments may use only lowercase letters, digits and _", s, r)
			}
		}
	}
	return Key(s), nil
}

func (k Key) String() string { return string(k) }
