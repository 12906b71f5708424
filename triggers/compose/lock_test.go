package compose

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLocksHonourContext(t *testing.T) {
	l := &locks{m: map[string]chan struct{}{}}
	release, err := l.acquire(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	other, err := l.acquire(context.Background(), "q")
	if err != nil {
		t.Fatalf("another project's lock: %v", err)
	}
	other()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(ctx, "p"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire of a held lock = %v, want the context's deadline", err)
	}
	release()
	release() // twice is harmless
	again, err := l.acquire(context.Background(), "p")
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	again()
}
