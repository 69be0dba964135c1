package materialize

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/store"
)

// DefaultFreshnessInterval is how often the leader checks the freshness policies.
const DefaultFreshnessInterval = 30 * time.Second

// FreshnessChecker evaluates every freshness policy on an interval, on the
// leader only, records each change of an asset's status (with its time and
// reason) and sends it to the definitions' notifiers. The status an asset had is
// read from the store whenever this process becomes the leader, so that a
// handover neither repeats nor loses a change.
type FreshnessChecker struct {
	Engine   *Engine
	Leader   interface{ IsLeader() bool }
	Interval time.Duration // 0: DefaultFreshnessInterval
	Logger   hclog.Logger  // nil: no logging
	// Client posts to the webhooks (nil: one with a 10s timeout).
	Client *http.Client

	leading bool
	last    map[assets.Key]string   // each asset's recorded status
	pending []store.FreshnessChange // recorded, not yet sent to every notifier
}

// Run checks until ctx ends.
func (c *FreshnessChecker) Run(ctx context.Context) error {
	if c.Interval <= 0 {
		c.Interval = DefaultFreshnessInterval
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: 10 * time.Second}
	}
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	for {
		if c.Leader.IsLeader() {
			if _, err := c.Check(ctx); err != nil && ctx.Err() == nil {
				c.Logger.Warn("check freshness", "error", err)
			}
		} else {
			c.leading = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Check evaluates every policy once, records the changes and notifies them; it
// returns the changes recorded.
func (c *FreshnessChecker) Check(ctx context.Context) ([]store.FreshnessChange, error) {
	q := c.Engine.Store()
	if !c.leading || c.last == nil {
		latest, err := q.LatestFreshness(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the freshness statuses: %w", err)
		}
		c.last = make(map[assets.Key]string, len(latest))
		for k, ch := range latest {
			c.last[k] = ch.Status
		}
		c.leading = true
	}
	g, st, err := c.Engine.State(ctx)
	if err != nil {
		return nil, err
	}
	now := c.Engine.Now()
	evals, err := EvaluateFreshness(ctx, q, g, st, now)
	if err != nil {
		return nil, err
	}
	var changes []store.FreshnessChange
	for _, e := range evals {
		key := g.Asset(e.Asset).Key
		status := string(e.Status)
		prev := c.last[key]
		if status == prev {
			continue
		}
		changes = append(changes, store.FreshnessChange{Asset: key, At: now, Status: status, Previous: prev, LagSeconds: e.LagSeconds(), Reason: e.Reason})
	}
	if len(changes) > 0 {
		recorded, err := q.RecordFreshness(ctx, changes)
		if err != nil {
			return nil, fmt.Errorf("record freshness changes: %w", err)
		}
		for _, ch := range recorded {
			c.last[ch.Asset] = ch.Status
			c.Logger.Info("freshness changed", "asset", ch.Asset, "from", orNone(ch.Previous), "to", ch.Status, "reason", ch.Reason)
			// A first UNKNOWN (a policy not yet evaluable) is no news.
			if !(ch.Status == store.FreshnessUnknown && ch.Previous == "") {
				c.pending = append(c.pending, ch)
			}
		}
		changes = recorded
	}
	c.notify(ctx)
	return changes, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// notify sends the pending changes to every notifier of the definitions and
// marks those sent; a change a notifier refused stays pending for the next check.
func (c *FreshnessChecker) notify(ctx context.Context) {
	if len(c.pending) == 0 {
		return
	}
	notifiers := c.Engine.Project().Defs.Notifiers
	var sent []int64
	var keep []store.FreshnessChange
	for _, ch := range c.pending {
		ok := true
		for _, n := range notifiers {
			if err := c.send(ctx, n, ch); err != nil {
				c.Logger.Warn("notify a freshness change: will try again at the next check", "asset", ch.Asset, "status", ch.Status, "error", err)
				ok = false
			}
		}
		if ok {
			sent = append(sent, ch.ID)
		} else {
			keep = append(keep, ch)
		}
	}
	c.pending = keep
	if len(sent) > 0 {
		if err := c.Engine.Store().MarkNotified(ctx, sent, time.Now()); err != nil {
			c.Logger.Warn("record that freshness changes were sent", "error", err)
		}
	}
}

// FreshnessNotice is the JSON body a webhook notifier receives, one per change.
type FreshnessNotice struct {
	Asset      string    `json:"asset"`
	Status     string    `json:"status"`
	Previous   string    `json:"previous,omitempty"`
	At         time.Time `json:"at"`
	LagSeconds *float64  `json:"lag_seconds,omitempty"`
	Reason     string    `json:"reason"`
}

func (c *FreshnessChecker) send(ctx context.Context, n assets.Notifier, ch store.FreshnessChange) error {
	notice := FreshnessNotice{Asset: string(ch.Asset), Status: ch.Status, Previous: ch.Previous, At: ch.At, LagSeconds: ch.LagSeconds, Reason: ch.Reason}
	switch {
	case n.Log:
		c.Logger.Info("freshness notice", "asset", notice.Asset, "status", notice.Status, "previous", orNone(notice.Previous), "reason", notice.Reason)
		return nil
	case n.Webhook != nil:
		return c.post(ctx, n.Webhook, notice)
	case n.Slack != nil:
		icon := map[string]string{store.FreshnessPass: ":large_green_circle:", store.FreshnessWarn: ":large_yellow_circle:", store.FreshnessFail: ":red_circle:"}[ch.Status]
		if icon == "" {
			icon = ":white_circle:"
		}
		return c.post(ctx, n.Slack, map[string]string{"text": fmt.Sprintf("%s *%s* is %s (was %s): %s", icon, ch.Asset, ch.Status, orNone(ch.Previous), ch.Reason)})
	}
	return nil
}

// post sends body as JSON to the webhook; any 2xx is success.
func (c *FreshnessChecker) post(ctx context.Context, w *assets.WebhookNotifier, body any) error {
	target := w.URL
	if w.URLEnv != "" {
		if target = os.Getenv(w.URLEnv); target == "" {
			return fmt.Errorf("webhook: $%s is not set", w.URLEnv)
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "freshet")
	resp, err := c.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("webhook: %s answered %s: %s", webhookHost(target), resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// webhookHost shows a webhook by its host: its path often holds the secret
// (Slack's does).
func webhookHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "the webhook"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
