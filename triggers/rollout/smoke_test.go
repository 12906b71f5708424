package rollout

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSmokeHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" || calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if err := SmokeHTTP(ctx, srv.Client(), srv.URL+"/", 10*time.Second); err != nil {
		t.Errorf("a service that answers 200 after two 503s: %v", err)
	}
	err := SmokeHTTP(ctx, srv.Client(), srv.URL+"/broken", time.Second)
	if err == nil || !strings.Contains(err.Error(), "GET "+srv.URL+"/broken") || !strings.Contains(err.Error(), "still failing after 1s") {
		t.Errorf("a service that never answers 2xx = %v", err)
	}
}

func TestSmokeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if err := SmokeTCP(context.Background(), addr, 5*time.Second); err != nil {
		t.Errorf("an open port: %v", err)
	}
	ln.Close()
	if err := SmokeTCP(context.Background(), addr, time.Second); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("a closed port = %v, want an error naming it", err)
	}
}
