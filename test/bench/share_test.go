package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/tidewatch/tidewatch/core"
	"github.com/tidewatch/tidewatch/core/watch"
	"github.com/tidewatch/tidewatch/registries"
	"github.com/tidewatch/tidewatch/registries/registrytest"
)

// TestFleetAsksEachRepositoryOnce: four hosts of one daemon run 160
// containers over 40 repositories, each repository on four hosts; those of
// eight repositories run latest, watched by digest. Run together with a
// Share, they send one tag list or one HEAD per repository between them
// (plus the ping and the token), counted by the registry; without it, one
// per host.
func TestFleetAsksEachRepositoryOnce(t *testing.T) {
	const hosts, repos, ctrs = 4, 40, 160
	s := registrytest.New(t, registrytest.WithBearerAuth("", ""))
	digests := map[string]string{}
	for r := range repos {
		repo := fmt.Sprintf("fleet/r%02d", r)
		digests[repo] = s.Push(t, repo, "1.0.0")
		for _, tag := range []string{"2.0.0", "latest"} {
			s.Tag(t, repo, tag, digests[repo])
		}
	}
	engines := make([]*simEngine, hosts)
	onHost := map[string]map[int]bool{} // repo → hosts
	{
		ctrsOf := make([][]core.Container, hosts)
		images := make([]map[string]core.LocalImage, hosts)
		for i := range ctrs {
			r, h := i%repos, (i/repos+i)%hosts
			repo, tag := fmt.Sprintf("fleet/r%02d", r), "1.0.0"
			if i%5 == 0 {
				tag = "latest" // watched by digest: a HEAD
			}
			id, img := simImageID(r), simImage(s.Host, repo, tag)
			img.RepoDigests = []string{s.Host + "/" + repo + "@" + digests[repo]} // as pulled: the registry's digest
			if images[h] == nil {
				images[h] = map[string]core.LocalImage{}
			}
			images[h][id] = img
			ctrsOf[h] = append(ctrsOf[h], simContainer(s.Host, fmt.Sprintf("c%03d", i), repo, tag, id))
			if onHost[repo] == nil {
				onHost[repo] = map[int]bool{}
			}
			onHost[repo][h] = true
		}
		for h := range engines {
			engines[h] = &simEngine{ctrs: ctrsOf[h], images: images[h]}
		}
	}
	for _, shared := range []bool{true, false} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			reg := registries.New(registries.Options{Keychain: authn.NewMultiKeychain()}, quiet())
			var share *watch.Share
			if shared {
				share = watch.NewShare(0)
			}
			s.ResetCounts()
			var wg sync.WaitGroup
			for h, e := range engines {
				w := watch.New(watch.Options{Host: fmt.Sprintf("h%d", h), WatchByDefault: true, Share: share}, e, reg, nil, quiet())
				wg.Add(1)
				go func() {
					defer wg.Done()
					checks, err := w.Run(context.Background())
					if err != nil {
						t.Error(err)
						return
					}
					for _, c := range checks {
						if c.Err != nil {
							t.Errorf("%s: %v", c.Container.Name, c.Err)
						}
					}
				}()
			}
			wg.Wait()
			c := s.Counts()
			// r00, r05, …, r35 run latest only (i%5 == 0 exactly when i%40 is a multiple of 5).
			perRepo := 1
			if !shared {
				perRepo = hosts
			}
			for repo, hs := range onHost {
				if len(hs) != hosts {
					t.Fatalf("%s runs on %d hosts, want %d", repo, len(hs), hosts)
				}
			}
			wantTags, wantHeads := 32*perRepo, 8*perRepo
			if c.TagList != wantTags || c.ManifestHead != wantHeads || c.ManifestGet != 0 || c.Ping != 1 {
				t.Errorf("tag lists %d, HEADs %d, GETs %d, pings %d; want %d, %d, 0, 1", c.TagList, c.ManifestHead, c.ManifestGet, c.Ping, wantTags, wantHeads)
			}
			for repo, n := range c.PerRepo {
				if n != perRepo {
					t.Errorf("%s asked %d times, want %d", repo, n, perRepo)
				}
			}
		})
	}
}
