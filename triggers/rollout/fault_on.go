//go:build faulthook

package rollout

// This file is compiled into test binaries only (go build -tags faulthook):
// the fault tests (test/system, make faults) stop a rollout at a chosen
// point and kill tidewatch there. Production builds hold fault_off.go.
//
// The fault file is TIDEWATCH_FAULT_FILE, else the running executable's
// path with ".fault" appended (a plugin process starts with an empty
// environment and re-executes tidewatch's binary, so both find the same
// file). It holds JSON: {"point": "stop:after", "n": 1}. The n-th time this
// process reaches point, it writes <fault file>.hit ({"pid": …, "point":
// …}, fsynced) and blocks for good: the test then kills it.
//
// Points in code are "<step>:before" and "<step>:after" (Fault's argument).
// Through FaultHost, engine calls are points too: pull (POST /images/create),
// create, start, stop, kill, rename (POST /containers/…), remove (DELETE
// /containers/…); ":before" stops before the engine gets the call,
// ":after" once it has answered, before the caller hears it.
//
// With "fail": true, an engine call's ":before" point does not stop: from
// the n-th time on, for as long as the fault file says so, the call fails
// (500, never reaching the engine), as an engine that refuses it would.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
)

// FaultsCompiled reports whether this binary was built with the faulthook tag.
const FaultsCompiled = true

// FaultSpec is the fault file's content.
type FaultSpec struct {
	// Point is where to stop: "write:before", "stop:after", …
	Point string `json:"point"`
	// N is which time reaching Point stops; default 1.
	N int `json:"n,omitempty"`
	// Fail makes an engine call's ":before" point fail the call from the
	// N-th time on instead of stopping.
	Fail bool `json:"fail,omitempty"`
}

// FaultHit is the hit file's content.
type FaultHit struct {
	PID   int    `json:"pid"`
	Point string `json:"point"`
}

var faults struct {
	mu     sync.Mutex
	counts map[string]int
}

// FaultFile is the fault file this process reads.
func FaultFile() string {
	if f := os.Getenv("TIDEWATCH_FAULT_FILE"); f != "" {
		return f
	}
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return exe + ".fault"
}

// faultDue reports whether reaching point now is the fault file's stop.
func faultDue(point string) bool {
	spec, ok := faultSpec(point)
	if !ok || spec.Fail {
		return false
	}
	faults.mu.Lock()
	defer faults.mu.Unlock()
	if faults.counts == nil {
		faults.counts = map[string]int{}
	}
	faults.counts[point]++
	return faults.counts[point] == max(spec.N, 1)
}

// faultSpec returns the fault file's spec when it names point.
func faultSpec(point string) (FaultSpec, bool) {
	file := FaultFile()
	if file == "" {
		return FaultSpec{}, false
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return FaultSpec{}, false
	}
	var spec FaultSpec
	if json.Unmarshal(data, &spec) != nil || spec.Point != point {
		return FaultSpec{}, false
	}
	return spec, true
}

// faultFails reports whether the engine call at point (":before") is to
// fail now: the fault file names it with Fail, and it is reached for the
// N-th time or later.
func faultFails(point string) bool {
	spec, ok := faultSpec(point)
	if !ok || !spec.Fail {
		return false
	}
	faults.mu.Lock()
	defer faults.mu.Unlock()
	if faults.counts == nil {
		faults.counts = map[string]int{}
	}
	faults.counts[point]++
	return faults.counts[point] >= max(spec.N, 1)
}

// hit says where this process stopped, then blocks for good.
func hit(point string) {
	data, _ := json.Marshal(FaultHit{PID: os.Getpid(), Point: point})
	_ = writeDurably(FaultFile()+".hit", data)
	select {}
}

// Fault stops here for good when the fault file names point.
func Fault(point string) {
	if faultDue(point) {
		hit(point)
	}
}

var proxies struct {
	mu sync.Mutex
	m  map[string]string
}

// FaultHost returns the address of a proxy in this process between the
// caller and the engine at host (unix:// only; others are returned as they
// are), at which engine calls are fault points.
func FaultHost(host string) string {
	sock, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return host
	}
	proxies.mu.Lock()
	defer proxies.mu.Unlock()
	if p, ok := proxies.m[host]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "tidewatch-fault-")
	if err != nil {
		return host
	}
	front := filepath.Join(dir, "docker.sock")
	l, err := net.Listen("unix", front)
	if err != nil {
		return host
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(&url.URL{Scheme: "http", Host: "docker"}) },
		Transport:     tr,
		FlushInterval: -1,
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		point := apiPoint(r)
		if point == "" {
			rp.ServeHTTP(w, r)
			return
		}
		if faultFails(point + ":before") {
			http.Error(w, `{"message":"fault injected at `+point+`:before"}`, http.StatusInternalServerError)
			return
		}
		Fault(point + ":before")
		if !faultPending(point + ":after") {
			rp.ServeHTTP(w, r)
			return
		}
		// Let the engine act, read its whole answer, then stop before the
		// caller hears it.
		out := r.Clone(r.Context())
		out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = "http", "docker", "docker", ""
		resp, err := tr.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Fault(point + ":after")
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, bytes.NewReader(body))
	}))
	if proxies.m == nil {
		proxies.m = map[string]string{}
	}
	proxies.m[host] = "unix://" + front
	return proxies.m[host]
}

// faultPending reports whether the fault file names point (without
// counting it).
func faultPending(point string) bool {
	data, err := os.ReadFile(FaultFile())
	if err != nil {
		return false
	}
	var spec FaultSpec
	return json.Unmarshal(data, &spec) == nil && spec.Point == point
}

var apiPath = regexp.MustCompile(`^(?:/v[0-9.]+)?/(images/create|containers/create|containers/[^/]+(?:/(start|stop|kill|rename))?)$`)

// apiPoint names the engine call r as a fault point, "" for calls that
// are not.
func apiPoint(r *http.Request) string {
	m := apiPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return ""
	}
	switch {
	case r.Method == http.MethodPost && m[1] == "images/create":
		return "pull"
	case r.Method == http.MethodPost && m[1] == "containers/create":
		return "create"
	case r.Method == http.MethodPost && m[2] != "":
		return m[2]
	case r.Method == http.MethodDelete && m[2] == "" && m[1] != "containers/create":
		return "remove"
	}
	return ""
}
