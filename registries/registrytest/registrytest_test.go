package registrytest

import (
	"encoding/json"
	"net/http"
	"strings"
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
