package registrytest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func get(t *testing.T, method, url, token string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestPaginationAndCounts(t *testing.T) {
	s := New(t, WithPageSize(3))
	want := []string{"a", "b", "c", "d", "e", "f", "g"}
	for _, tag := range want {
		s.Push(t, "team/app", tag)
	}
	if got := s.Counts().Total; got != 0 {
		t.Fatalf("Counts().Total after pushes = %d, want 0 (set-up is not counted)", got)
	}
	var got []string
	next := s.URL + "/v2/team/app/tags/list?n=1000"
	pages := 0
	for next != "" {
		resp := get(t, http.MethodGet, next, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", next, resp.StatusCode)
		}
		var body struct{ Tags []string }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		got = append(got, body.Tags...)
		pages++
		next = ""
		if link := resp.Header.Get("Link"); link != "" {
			next = s.URL + link[1:strings.Index(link, ">")]
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tags over all pages (-want +got):\n%s", diff)
	}
	c := s.Counts()
	if pages != 3 || c.TagList != 3 || c.PerRepo["team/app"] != 3 {
		t.Errorf("pages = %d, Counts.TagList = %d, PerRepo[team/app] = %d; want 3, 3, 3", pages, c.TagList, c.PerRepo["team/app"])
	}
}

func TestBearerFlow(t *testing.T) {
	s := New(t, WithBearerAuth("", ""), WithTokenTTL(time.Second))
	s.Push(t, "app", "1.0")

	resp := get(t, http.MethodGet, s.URL+"/v2/", "")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="`+s.URL+`/token"`) {
		t.Fatalf("ping without token = %d %q, want 401 with realm", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = get(t, http.MethodGet, s.URL+"/token?service=registrytest&scope=repository:other:pull", "")
	var tok struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token == "" || tok.ExpiresIn != 1 {
		t.Fatalf("token response = %+v, %v; want a token with expires_in 1", tok, err)
	}
	resp = get(t, http.MethodHead, s.URL+"/v2/app/manifests/1.0", tok.Token)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="repository:app:pull"`) {
		t.Fatalf("HEAD with wrong-scope token = %d %q, want 401 naming the scope", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp = get(t, http.MethodGet, s.URL+"/token?service=registrytest&scope=repository:app:pull", "")
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		t.Fatal(err)
	}
	if resp := get(t, http.MethodHead, s.URL+"/v2/app/manifests/1.0", tok.Token); resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD with right token = %d, want 200", resp.StatusCode)
	}
	s.ExpireTokens()
	if resp := get(t, http.MethodHead, s.URL+"/v2/app/manifests/1.0", tok.Token); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("HEAD with expired token = %d, want 401", resp.StatusCode)
	}
}

func TestBearerChecksPassword(t *testing.T) {
	s := New(t, WithBearerAuth("alice", "secret"))
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/token?scope=repository:app:pull", nil)
	req.SetBasicAuth("alice", "wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token with wrong password = %d, want 401", resp.StatusCode)
	}
}

func TestFailures(t *testing.T) {
	s := New(t)
	s.Push(t, "app", "1.0")
	s.Push(t, "broken", "1.0")
	s.FailNext("/tags/list", http.StatusTooManyRequests, 2, "7")
	s.FailAlways("brok", http.StatusBadGateway)

	for i, want := range []int{429, 429, 200} {
		resp := get(t, http.MethodGet, s.URL+"/v2/app/tags/list", "")
		if resp.StatusCode != want {
			t.Fatalf("request %d = %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == 429 && resp.Header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After = %q, want 7", resp.Header.Get("Retry-After"))
		}
	}
	if resp := get(t, http.MethodHead, s.URL+"/v2/broken/manifests/1.0", ""); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("HEAD broken = %d, want 502", resp.StatusCode)
	}
	if resp := get(t, http.MethodHead, s.URL+"/v2/app/manifests/1.0", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD app = %d, want 200", resp.StatusCode)
	}
	c := s.Counts()
	if c.TagList != 3 || c.ManifestHead != 2 || c.Total != 5 {
		t.Errorf("Counts = %+v, want TagList 3, ManifestHead 2, Total 5", c)
	}
	s.ResetCounts()
	if c := s.Counts(); c.Total != 0 || len(c.PerRepo) != 0 {
		t.Errorf("Counts after ResetCounts = %+v, want zero", c)
	}
}

func TestPushIndexAndTag(t *testing.T) {
	s := New(t, WithoutDigestHeader())
	idx, children := s.PushIndex(t, "multi", "1.0", "linux/amd64", "linux/arm/v7")
	if len(children) != 2 || children["linux/amd64"] == children["linux/arm/v7"] {
		t.Fatalf("children = %v, want two different digests", children)
	}
	s.Tag(t, "multi", "latest", idx)
	resp := get(t, http.MethodHead, s.URL+"/v2/multi/manifests/latest", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Docker-Content-Digest") != "" {
		t.Errorf("HEAD latest = %d with digest %q, want 200 without digest header", resp.StatusCode, resp.Header.Get("Docker-Content-Digest"))
	}
	resp = get(t, http.MethodGet, s.URL+"/v2/multi/manifests/latest", "")
	if got := resp.Header.Get("Docker-Content-Digest"); got != idx {
		t.Errorf("GET latest digest = %q, want %q", got, idx)
	}
}

// statuses sends each request in order and returns the status of each, 0
// when the connection was closed without an answer.
func statuses(t *testing.T, s *Server, uris []string) []int {
	t.Helper()
	out := make([]int, len(uris))
	for i, u := range uris {
		resp, err := http.Get(s.URL + u)
		if err != nil {
			continue // a reset: 0
		}
		resp.Body.Close()
		out[i] = resp.StatusCode
	}
	return out
}

func TestFaultsAreDeterministic(t *testing.T) {
	plan := Faults{Seed: 42, ErrorRate: 0.3, ResetRate: 0.1}
	var uris []string
	for i := range 40 {
		repo := fmt.Sprintf("app%02d", i%8)
		uris = append(uris, "/v2/"+repo+"/tags/list")
	}
	a := New(t, WithFaults(plan))
	b := New(t, WithFaults(plan))
	for i := range 8 {
		a.Push(t, fmt.Sprintf("app%02d", i), "1")
		b.Push(t, fmt.Sprintf("app%02d", i), "1")
	}
	got := statuses(t, a, uris)
	// The same requests in the opposite order meet the same faults, each
	// request by how often it was made before.
	rev := slices.Clone(uris)
	slices.Reverse(rev)
	gotRev := statuses(t, b, rev)
	slices.Reverse(gotRev)
	byRepo := func(st []int) map[string][]int {
		m := map[string][]int{}
		for i, u := range uris {
			m[u] = append(m[u], st[i])
		}
		return m
	}
	ra, rb := byRepo(got), byRepo(gotRev)
	for u := range ra {
		slices.Reverse(rb[u]) // b saw each URI's requests in reverse
	}
	if diff := cmp.Diff(ra, rb); diff != "" {
		t.Errorf("faults depend on arrival order (-forward +reverse):\n%s", diff)
	}
	seen := map[string]int{}
	failed, resets := 0, 0
	for i, u := range uris {
		k := seen[u]
		seen[u]++
		want := plan.Fails(http.MethodGet, u, k)
		if (got[i] != http.StatusOK) != want {
			t.Errorf("request %d (%s, time %d) = %d; Fails says %v", i, u, k, got[i], want)
		}
		switch got[i] {
		case http.StatusServiceUnavailable:
			failed++
		case 0:
			resets++
		}
	}
	if failed == 0 || resets == 0 || failed+resets > 30 {
		t.Errorf("503s %d and resets %d of 40 at rates 0.3 and 0.1: want some of each, not nearly all", failed, resets)
	}
	if c := a.Counts(); c.Injected != failed+resets || c.Throttled != 0 {
		t.Errorf("Counts.Injected = %d, Throttled = %d; want %d and 0", c.Injected, c.Throttled, failed+resets)
	}
}

func TestFaultsThrottleEvery(t *testing.T) {
	s := New(t, WithFaults(Faults{ThrottleEvery: 3, RetryAfter: "1"}))
	s.Push(t, "app", "1")
	for i := 1; i <= 9; i++ {
		resp := get(t, http.MethodGet, s.URL+"/v2/app/tags/list", "")
		want, wantRA := http.StatusOK, ""
		if i%3 == 0 {
			want, wantRA = http.StatusTooManyRequests, "1"
		}
		if resp.StatusCode != want || resp.Header.Get("Retry-After") != wantRA {
			t.Errorf("request %d = %d with Retry-After %q, want %d with %q", i, resp.StatusCode, resp.Header.Get("Retry-After"), want, wantRA)
		}
	}
	if c := s.Counts(); c.Throttled != 3 || c.Injected != 3 {
		t.Errorf("Counts.Throttled = %d, Injected = %d; want 3 and 3", c.Throttled, c.Injected)
	}
	if c := s.Counts(); c.IgnoredRetryAfter != 0 {
		t.Errorf("Counts.IgnoredRetryAfter = %d, want 0: requests right after a 429 may not have read it yet", c.IgnoredRetryAfter)
	}
	// The ninth request's 429 opened a 1s window; a request 300ms into it
	// ignores it. (Sleeping is the scenario here, not a wait for something.)
	time.Sleep(300 * time.Millisecond)
	get(t, http.MethodGet, s.URL+"/v2/app/tags/list", "")
	if c := s.Counts(); c.IgnoredRetryAfter != 1 {
		t.Errorf("Counts.IgnoredRetryAfter = %d, want 1", c.IgnoredRetryAfter)
	}
}

func TestCapacityQueuesRequests(t *testing.T) {
	const latency = 60 * time.Millisecond
	s := New(t, WithCapacity(2), WithLatency(latency))
	s.Push(t, "app", "1")
	start := time.Now()
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(s.URL + "/v2/app/tags/list")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	wg.Wait()
	// Six requests, two at a time: three rounds of the latency.
	if d := time.Since(start); d < 3*latency {
		t.Errorf("6 requests at capacity 2 took %v, want at least %v", d, 3*latency)
	}
	if c := s.Counts(); c.MaxInFlight != 6 {
		t.Errorf("MaxInFlight = %d, want 6 (requests waiting for capacity are in flight)", c.MaxInFlight)
	}
}

func TestSlowFault(t *testing.T) {
	plan := Faults{Seed: 1, SlowRate: 1, Slow: 300 * time.Millisecond}
	s := New(t, WithFaults(plan))
	s.Push(t, "app", "1")
	client := &http.Client{Timeout: 50 * time.Millisecond}
	resp, err := client.Get(s.URL + "/v2/app/tags/list")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET with SlowRate 1 answered %d within 50ms, want a timeout", resp.StatusCode)
	}
	if plan.Fails(http.MethodGet, "/v2/app/tags/list", 0) {
		t.Error("Fails reports a slow request as failed; it is only slow")
	}
}
