package materialize

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/freshetdev/freshet/assets"
)

// Limits of the HTTP executor.
const (
	// httpErrorBody is how much of a failed response's body the error quotes.
	httpErrorBody = 1 << 10
	// httpResponseMax caps the body of a successful response read for an Output.
	httpResponseMax = 1 << 20
)

// httpExecutor POSTs a JSON description of the step to a URL: the way to drive
// work that lives behind a service (a Cloud Run job, an Airbyte sync, an
// internal API). Success is any 2xx status; the call lasts as long as the
// request, so the service should answer when the work is done.
type httpExecutor struct {
	e   *Executors
	c   assets.HTTPCompute
	url *url.URL
}

func (e *Executors) httpExecutor(c assets.HTTPCompute) (Executor, error) {
	if c.URL == "" {
		return nil, errors.New("http compute has no URL")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("http compute URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("http compute URL %q must be an absolute http:// or https:// URL", redactURL(u))
	}
	return &httpExecutor{e: e, c: c, url: u}, nil
}

// httpStep is the request body. Start and End are null for an unpartitioned
// asset, and Partitions is then empty, as in assets.StepInput.
type httpStep struct {
	Asset      string   `json:"asset"`
	Partitions []string `json:"partitions"`
	Start      *string  `json:"start"`
	End        *string  `json:"end"`
	RunID      string   `json:"run_id"`
	StepID     string   `json:"step_id"`
	Attempt    int      `json:"attempt"`
}

func (e *Executors) httpClient() *http.Client {
	if e.HTTPClient != nil {
		return e.HTTPClient
	}
	e.httpOnce.Do(func() {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 10 * time.Second
		t.IdleConnTimeout = 90 * time.Second
		// No Client.Timeout and no ResponseHeaderTimeout: the step's timeout bounds
		// the call through ctx, and a synchronous endpoint answers when its job is
		// done, however long the asset's timeout allows.
		e.http = &http.Client{Transport: t}
	})
	return e.http
}

// Execute POSTs the step and reads the answer. A 2xx JSON body with
// data_version and/or metadata is the step's Output; any other 2xx body is
// ignored (services answer {"status": "ok"} and the like). Headers are sent as
// given: secrets belong in the definitions' environment handling, not here.
func (x *httpExecutor) Execute(ctx context.Context, inv Invocation, log LogSink) (Output, error) {
	log = sinkOrDiscard(log)
	target := redactURL(x.url)
	if ctx.Err() != nil {
		return Output{}, stopped(ctx, "POST "+target+" not sent")
	}
	body := httpStep{
		Asset:      inv.assetKey(),
		Partitions: inv.keys(),
		RunID:      inv.RunID.String(),
		StepID:     inv.StepID.String(),
		Attempt:    inv.Attempt,
	}
	if body.Partitions == nil {
		body.Partitions = []string{}
	}
	if s := formatTime(inv.Start); s != "" {
		body.Start = &s
	}
	if s := formatTime(inv.End); s != "" {
		body.End = &s
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return Output{}, fmt.Errorf("encode the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.c.URL, bytes.NewReader(payload))
	if err != nil {
		return Output{}, fmt.Errorf("POST %s: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "freshet")
	for k, v := range x.c.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v // net/http ignores a Host entry in Header
			continue
		}
		req.Header.Set(k, v)
	}

	systemf(log, "POST %s", target)
	start := time.Now()
	resp, err := x.e.httpClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, stopped(ctx, "POST "+target+" canceled")
		}
		return Output{}, fmt.Errorf("POST %s: %w", target, unwrapURLError(err))
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, httpErrorBody+1))
		if ctx.Err() != nil {
			return Output{}, stopped(ctx, "POST "+target+" canceled")
		}
		systemf(log, "%s after %v", resp.Status, time.Since(start).Round(time.Millisecond))
		text := strings.TrimSpace(cleanText(string(b[:min(len(b), httpErrorBody)])))
		if len(b) > httpErrorBody {
			text += "…"
		}
		msg := fmt.Sprintf("POST %s: %s", target, resp.Status)
		if text != "" {
			msg += ": " + text
		}
		return Output{}, errors.New(msg)
	}

	b, err := io.ReadAll(io.LimitReader(resp.Body, httpResponseMax+1))
	if err != nil {
		if ctx.Err() != nil {
			return Output{}, stopped(ctx, "POST "+target+" canceled")
		}
		return Output{}, fmt.Errorf("POST %s: %s, but reading the response failed: %w", target, resp.Status, err)
	}
	systemf(log, "%s after %v", resp.Status, time.Since(start).Round(time.Millisecond))
	return responseOutput(b, target)
}

// responseOutput reads an Output from a successful response body. Only a JSON
// object that names data_version or metadata counts; when it does, their types
// must be right, since the service clearly meant to report them.
func responseOutput(b []byte, target string) (Output, error) {
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || trimmed[0] != '{' || len(b) > httpResponseMax {
		return Output{}, nil
	}
	var o stepOutput
	if err := json.Unmarshal(trimmed, &o); err != nil {
		return Output{}, nil // not JSON after all: not a report
	}
	out, err := o.toOutput()
	if err != nil {
		return Output{}, fmt.Errorf("POST %s: response: %w", target, err)
	}
	return out, nil
}

// redactURL drops the password and the query (where tokens tend to live) of a URL
// shown in logs and errors.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, ok := c.User.Password(); ok {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	if c.RawQuery != "" {
		c.RawQuery = ""
		c.ForceQuery = true
	}
	c.Fragment = ""
	return c.String()
}

// unwrapURLError drops *url.Error's "Post \"<full url>\":" prefix, which would
// print the unredacted URL, keeping the cause.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
