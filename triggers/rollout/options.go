package rollout

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core/docker"
	"github.com/tidewatch/tidewatch/plugins/sdk"
)

// The options every trigger that deploys to an engine shares: where the
// engine is, and how a rollout is checked.
const (
	OptDockerHost    = "DOCKER_HOST"
	OptDockerCAFile  = "DOCKER_CAFILE"
	OptDockerCert    = "DOCKER_CERTFILE"
	OptDockerKey     = "DOCKER_KEYFILE"
	OptHealthTimeout = "HEALTH_TIMEOUT"
	OptStableFor     = "STABLE_FOR"
	OptSmokeHTTP     = "SMOKE_HTTP"
	OptSmokeTCP      = "SMOKE_TCP"
	OptLogLines      = "LOG_LINES"
)

// DefaultDockerHost is the engine address used when DOCKER_HOST is not set.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// EngineOptions declare DOCKER_HOST and its TLS files.
var EngineOptions = []sdk.Option{
	{Name: OptDockerHost, Default: DefaultDockerHost, Description: "the Docker engine to roll out on: unix:///path or tcp://host:port"},
	{Name: OptDockerCAFile, Description: "a PEM file of the CA that signed the engine's certificate (TLS over tcp://)"},
	{Name: OptDockerCert, Description: "a PEM client certificate for the engine (with DOCKER_KEYFILE)"},
	{Name: OptDockerKey, Description: "the PEM key of DOCKER_CERTFILE"},
}

// CheckOptions declare the health gate, the smoke checks and the logs a
// rollback reports.
var CheckOptions = []sdk.Option{
	{Name: OptHealthTimeout, Default: "120s", Description: "how long the new container has to run and, with a healthcheck, be healthy; also each smoke check's time"},
	{Name: OptStableFor, Default: "10s", Description: "without a healthcheck, how long the new container must run without restarting"},
	{Name: OptSmokeHTTP, Description: "URLs, comma-separated, that must answer 2xx to a GET after the rollout (retried until HEALTH_TIMEOUT)"},
	{Name: OptSmokeTCP, Description: "host:port addresses, comma-separated, that must accept a TCP connection after the rollout (retried until HEALTH_TIMEOUT)"},
	{Name: OptLogLines, Default: "50", Description: "how many of the failed container's last log lines a rollback report holds, 0 to 1000"},
}

// ParseEngine reads EngineOptions from o, recording each problem in o.
func ParseEngine(o *sdk.Options) docker.Options {
	e := docker.Options{Host: strings.TrimSpace(o.String(OptDockerHost))}
	if u, err := url.Parse(e.Host); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp") || (u.Scheme == "unix" && u.Path == "") || (u.Scheme == "tcp" && u.Host == "") {
		o.Add(OptDockerHost, "%q is not an engine address; expected unix:///var/run/docker.sock or tcp://host:port", e.Host)
	}
	for _, f := range []struct {
		opt string
		dst *string
	}{{OptDockerCAFile, &e.CAFile}, {OptDockerCert, &e.CertFile}, {OptDockerKey, &e.KeyFile}} {
		*f.dst = strings.TrimSpace(o.String(f.opt))
		if *f.dst == "" {
			continue
		}
		if _, err := os.ReadFile(*f.dst); err != nil {
			o.Add(f.opt, "reading %s: %v", *f.dst, err)
		}
	}
	if (e.CertFile == "") != (e.KeyFile == "") {
		o.Add(OptDockerCert, "DOCKER_CERTFILE and DOCKER_KEYFILE go together; set both or neither")
	}
	return e
}

// Checks say how a rollout is checked once the new container runs.
type Checks struct {
	// HealthTimeout bounds the health gate and each smoke check; default 120s.
	HealthTimeout time.Duration
	// StableFor is how long a container without healthcheck must run; default 10s.
	StableFor time.Duration
	// SmokeHTTP and SmokeTCP are the smoke checks.
	SmokeHTTP, SmokeTCP []string
	// LogLines is how many log lines of a failed container to report; default 50.
	LogLines int
}

// ParseChecks reads CheckOptions from o, recording each problem in o.
func ParseChecks(o *sdk.Options) Checks {
	c := Checks{HealthTimeout: o.Duration(OptHealthTimeout), StableFor: o.Duration(OptStableFor), SmokeHTTP: o.List(OptSmokeHTTP), SmokeTCP: o.List(OptSmokeTCP)}
	for _, raw := range c.SmokeHTTP {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			o.Add(OptSmokeHTTP, "%q is not an http(s) URL; expected http://host:port/path", raw)
		}
	}
	for _, addr := range c.SmokeTCP {
		host, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			o.Add(OptSmokeTCP, "%q is not host:port", addr)
		}
	}
	c.LogLines = o.Int(OptLogLines, 0, 1000)
	return c
}

// Wait is the health gate's options.
func (c Checks) Wait() docker.WaitOptions {
	return docker.WaitOptions{Timeout: c.HealthTimeout, StableFor: c.StableFor}
}

// Smoke returns the smoke checks as one step through hc, or nil when there
// are none.
func (c Checks) Smoke(hc *http.Client) func(ctx context.Context) (string, error) {
	if len(c.SmokeHTTP)+len(c.SmokeTCP) == 0 {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		for _, u := range c.SmokeHTTP {
			if err := SmokeHTTP(ctx, hc, u, c.HealthTimeout); err != nil {
				return "", err
			}
		}
		for _, a := range c.SmokeTCP {
			if err := SmokeTCP(ctx, a, c.HealthTimeout); err != nil {
				return "", err
			}
		}
		return fmt.Sprintf("%d HTTP, %d TCP checks passed", len(c.SmokeHTTP), len(c.SmokeTCP)), nil
	}
}
