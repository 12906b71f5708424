package sources

import (
	"context"
	"testing"
)

// BenchmarkSyncInSync is the cost of one interval sync that finds nothing
// new: a fetch over HTTP from a local git server (git http-backend), the
// state read from the store.
func BenchmarkSyncInSync(b *testing.B) {
	f := newFixtureTB(b)
	if res, _ := f.r.Sync(context.Background(), "prod"); res.Outcome != ResultDeployed {
		b.Fatalf("first sync = %+v", res)
	}
	for b.Loop() {
		if res, _ := f.r.Sync(context.Background(), "prod"); res.Outcome != ResultInSync {
			b.Fatalf("sync = %+v, want in-sync", res)
		}
	}
}
