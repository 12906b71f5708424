package rollout

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// smokeInterval is the pause between two attempts of a smoke check.
const smokeInterval = 500 * time.Millisecond

// retry calls try until it succeeds, ctx ends or timeout passes, and
// returns its last error.
func retry(ctx context.Context, timeout time.Duration, try func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := try(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still failing after %s)", err, timeout)
		case <-time.After(smokeInterval):
		}
	}
}

// SmokeHTTP GETs url until it answers 2xx, within timeout, through hc.
func SmokeHTTP(ctx context.Context, hc *http.Client, url string, timeout time.Duration) error {
	err := retry(ctx, timeout, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// SmokeTCP connects to addr until it accepts, within timeout.
func SmokeTCP(ctx context.Context, addr string, timeout time.Duration) error {
	err := retry(ctx, timeout, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	})
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", addr, err)
	}
	return nil
}
