package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/tidewatch/tidewatch/core/config"
)

// healthcheckCommand is `tidewatch healthcheck`: the container image's
// HEALTHCHECK, for an image that has no curl. It asks the local daemon's
// /healthz (over TLS when the server has a certificate, without verifying
// it: the peer is loopback) and exits 0 when it answers 200.
func healthcheckCommand(ctx context.Context, cfg config.Config, stderr io.Writer) int {
	scheme := "http"
	client := &http.Client{Timeout: 4 * time.Second}
	if cfg.Server.TLS() {
		scheme = "https"
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // loopback
	}
	url := scheme + "://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Server.Port)) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch healthcheck: %v\n", err)
		return exitError
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "tidewatch healthcheck: %v\n", err)
		return exitError
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "tidewatch healthcheck: %s answered %s\n", url, resp.Status)
		return exitError
	}
	return exitOK
}
