package bench

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// TestRequestBudget checks the request count of whole runs through the watch
// loop and the registry client: N containers over M repositories cost one
// ping and one token per registry when cold, then exactly M tag listings
// (plus pages) and one HEAD per digest-watched tag, and no manifest GET.
func TestRequestBudget(t *testing.T) {
	const ctrs, repos, pageSize = 120, 30, 2
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""), registrytest.WithPageSize(pageSize))
	var e engine
	digests := map[int]string{}
	for r := range repos {
		repo := fmt.Sprintf("app%02d", r)
		d := s.Push(t, repo, "1.0.0")
		digests[r] = d
		for _, tag := range []string{"1.1.0", "latest"} {
			s.Tag(t, repo, tag, d)
		}
	}
	for i := range ctrs {
		r := i % repos
		tag := "1.0.0"
		if i%4 == 3 { // a quarter of the containers run `latest`, watched by digest
			tag = "latest"
		}
		image := fmt.Sprintf("%s/app%02d:%s", s.Host, r, tag)
		// The running image is the one pushed: its RepoDigests name it.
		repoDigests := []string{fmt.Sprintf("%s/app%02d@%s", s.Host, r, digests[r])}
		e.ctrs = append(e.ctrs, core.Container{ID: strconv.Itoa(i), Name: fmt.Sprintf("c%03d", i), Image: image, ImageID: "sha256:" + strings.Repeat("0", 64), RepoDigests: repoDigests, State: "running"})
	}
	// Which repositories have a container on `latest`: one HEAD each per run.
	heads := map[int]bool{}
	for i := range ctrs {
		if i%4 == 3 {
			heads[i%repos] = true
		}
	}
	pages := (3 + pageSize - 1) / pageSize // 3 tags per repository

	s.ResetCounts()
	reg := registries.New(registries.Options{}, quiet())
	w := watch.New(watch.Options{Host: "budget", WatchByDefault: true}, e, reg, nil, quiet())
	for run := range 3 {
		checks, err := w.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range checks {
			if c.Err != nil {
				t.Fatalf("run %d: %s: %v", run, c.Container.Name, c.Err)
			}
		}
		got := s.Counts()
		s.ResetCounts()
		want := registrytest.Counts{TagList: repos * pages, ManifestHead: len(heads)}
		if run == 0 {
			want.Ping, want.Token = 1, 1
		}
		if got.Ping != want.Ping || got.Token != want.Token || got.TagList != want.TagList || got.ManifestHead != want.ManifestHead || got.ManifestGet != 0 {
			t.Errorf("run %d: ping %d token %d tag pages %d HEAD %d GET %d; want ping %d token %d tag pages %d HEAD %d GET 0",
				run, got.Ping, got.Token, got.TagList, got.ManifestHead, got.ManifestGet, want.Ping, want.Token, want.TagList, want.ManifestHead)
		}
	}
}
