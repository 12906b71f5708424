package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/credential"
)

// Timeouts of the HTTP server.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	// WriteTimeout is long: a deploy answers when its rollout is done. The
	// event stream lifts it.
	WriteTimeout = 5 * time.Minute
	IdleTimeout  = 2 * time.Minute
	// ShutdownGrace is how long requests in flight may take to finish once
	// the server is asked to stop.
	ShutdownGrace = 10 * time.Second
	// Heartbeat is how often an idle event stream sends a comment line.
	Heartbeat = 15 * time.Second
	// MaxBodyBytes caps request bodies.
	MaxBodyBytes = 64 << 10
	// MaxHeaderBytes caps request headers.
	MaxHeaderBytes = 1 << 20
)

// Config is what the server listens on and whom it lets in. The daemon
// fills it from TIDEWATCH_SERVER_* (core/config.Server, which checks it).
type Config struct {
	// Address is the IP address or host name to listen on; Port its TCP port.
	Address string
	Port    int
	// TLSCert and TLSKey are PEM files; with both set the server speaks HTTPS only.
	TLSCert, TLSKey string
	// Users may log in with HTTP Basic; Tokens are API tokens (Bearer).
	// Without either, authentication is off, and only a loopback Address
	// may be served.
	Users  []credential.User
	Tokens []credential.Token
	// AllowedHosts are more Host names answered while authentication is
	// off, besides loopback and Address (DNS rebinding: see host.go).
	AllowedHosts []string
}

// Addr returns "address:port" for net.Listen.
func (c Config) Addr() string { return net.JoinHostPort(c.Address, strconv.Itoa(c.Port)) }

// TLS reports whether the server speaks HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" && c.TLSKey != "" }

// Server is tidewatch's HTTP server: API, health, metrics, events and UI.
type Server struct {
	deps      Deps
	cfg       Config
	log       *slog.Logger
	ui        fs.FS
	auth      *authenticator
	metrics   *Metrics
	cache     listCache
	heartbeat time.Duration
	handler   http.Handler
	// allowedHosts are the Host names answered without authentication
	// besides loopback: the configured address and AllowedHosts.
	allowedHosts []string

	closing      context.Context // ends when the server shuts down: event streams end
	closeStreams context.CancelFunc
}

// New returns a server over deps, configured by cfg.
func New(deps Deps, cfg Config, log *slog.Logger) *Server {
	if deps.Metrics == nil {
		deps.Metrics = NewMetrics()
	}
	s := &Server{
		deps:      deps,
		cfg:       cfg,
		log:       log.With("component", "web"),
		ui:        deps.UI,
		auth:      newAuthenticator(cfg.Users, cfg.Tokens),
		metrics:   deps.Metrics,
		heartbeat: Heartbeat,
	}
	s.allowedHosts = append([]string{strings.ToLower(strings.TrimSuffix(strings.Trim(cfg.Address, "[]"), "."))}, cfg.AllowedHosts...)
	s.closing, s.closeStreams = context.WithCancel(context.Background())
	s.metrics.watch(deps)
	s.handler = s.routes()
	return s
}

// Handler returns the server's whole handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics returns the server's metrics, for the daemon to record into.
func (s *Server) Metrics() *Metrics { return s.metrics }

// ListenAndServe listens on the configured address (HTTPS when TLS files are
// set) and serves until ctx ends, then shuts down gracefully.
func (s *Server) ListenAndServe(ctx context.Context) error {
	if !core.IsLoopback(s.cfg.Address) && !s.auth.enabled() {
		return fmt.Errorf("refusing to serve on %s without authentication: set TIDEWATCH_SERVER_AUTH_USERS or TIDEWATCH_SERVER_API_TOKENS, or listen on a loopback address", s.cfg.Addr())
	}
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Addr(), err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then stops accepting, ends event
// streams and gives requests in flight ShutdownGrace to finish. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	srv.RegisterOnShutdown(s.closeStreams)
	if s.cfg.TLS() {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate %s: %w", s.cfg.TLSCert, err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	scheme := "http"
	if s.cfg.TLS() {
		scheme = "https"
	}
	s.log.Info("serving", "url", scheme+"://"+ln.Addr().String(), "auth", s.auth.enabled())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		s.closeStreams()
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		srv.Close()
		return fmt.Errorf("shutting down HTTP server: %w", err)
	}
	s.log.Info("HTTP server stopped")
	return nil
}

func isUnsupported(err error) bool { return errors.Is(err, http.ErrNotSupported) }
