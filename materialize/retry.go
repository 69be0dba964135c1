package materialize

import (
	"math/rand/v2"
	"time"

	"github.com/freshetdev/freshet/assets"
)

// Retry defaults, for assets that set retries.max without a backoff.
const (
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

// backoff returns how long to wait before the attempt after attempt (1 for the
// first retry): the asset's backoff doubled per attempt, capped at max_backoff,
// with "equal jitter" (a uniform pick in the upper half) so that the steps of a
// failed batch do not all hit the same flaky service again at the same instant.
func backoff(r assets.Retries, attempt int, rng func() float64) time.Duration {
	base, ceiling := r.Backoff, r.MaxBackoff
	if base == 0 {
		base = DefaultBackoff
	}
	if ceiling == 0 {
		ceiling = max(DefaultMaxBackoff, base)
	}
	d := base
	for i := 1; i < attempt && d < ceiling; i++ {
		d *= 2
	}
	d = min(d, ceiling)
	if rng == nil {
		rng = rand.Float64
	}
	return d/2 + time.Duration(rng()*float64(d/2))
}
