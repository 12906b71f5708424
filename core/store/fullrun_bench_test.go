package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tidewatch/tidewatch/core"
)

// BenchmarkRecordFullRun300 records a full run of 300 containers with an
// update each: cold (a new store) and warm (the same checks again).
func BenchmarkRecordFullRun300(b *testing.B) {
	checks := make([]core.Check, 300)
	for i := range checks {
		checks[i] = check(fmt.Sprintf("c%03d", i), "1.0.0", "2.0.0", core.KindMajor)
		checks[i].Container.ID = fmt.Sprintf("id-%03d", i)
	}
	ctx := context.Background()
	for _, warm := range []bool{false, true} {
		b.Run(map[bool]string{false: "cold", true: "warm"}[warm], func(b *testing.B) {
			s, err := Open(ctx, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if warm {
				if _, err := s.RecordFullRun(ctx, "local", checks, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				if !warm {
					b.StopTimer()
					s.Close()
					if s, err = Open(ctx, b.TempDir()); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				if _, err := s.RecordFullRun(ctx, "local", checks, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
