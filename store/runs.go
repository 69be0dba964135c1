package store

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/freshetdev/freshet/assets"
)

// StepPartitionsProblem says what is wrong with the partition keys of a step of asset
// under its synced partitions definition p (nil: unpartitioned), or "" when
// nothing is: a partitioned asset's step builds partitions of the definition,
// consecutive in index order; an unpartitioned asset's step builds [""].
// Both drivers' CreateRun check every step with it.
func StepPartitionsProblem(asset assets.Key, p *assets.Partitions, keys []string) string {
	if p == nil {
		for _, k := range keys {
			if k != "" {
				return fmt.Sprintf("partition %q: %s is not partitioned: its step builds [\"\"]", k, asset)
			}
		}
		if len(keys) != 1 {
			return fmt.Sprintf("%d partitions: %s is not partitioned: its step builds [\"\"]", len(keys), asset)
		}
		return ""
	}
	prev := 0
	for n, k := range keys {
		if k == "" {
			return fmt.Sprintf("partition \"\": %s is partitioned (%s): name its partitions, such as %q", asset, p.Granularity(), p.Key(0))
		}
		i, err := p.Index(k)
		if err != nil {
			return fmt.Sprintf("not a partition of %s: %v", asset, err)
		}
		if n > 0 && i != prev+1 {
			return fmt.Sprintf("partition %s after %s: a step's partitions are consecutive, in order (%s comes after %s)",
				k, keys[n-1], p.Key(prev+1), keys[n-1])
		}
		prev = i
	}
	return ""
}

// KeysText lists partition keys in messages, quoted, up to 20 of them and a
// count of the rest.
func KeysText(keys []string) string {
	const most = 20
	quoted := make([]string, 0, min(len(keys), most))
	for _, k := range keys[:min(len(keys), most)] {
		quoted = append(quoted, strconv.Quote(k))
	}
	text := strings.Join(quoted, ", ")
	if len(keys) > most {
		text += fmt.Sprintf(" and %d more", len(keys)-most)
	}
	return text
}
