package main

import (
	"testing"

	"github.com/tidewatch/tidewatch/core/config"
)

// TestRegistryConcurrencyPinned: TIDEWATCH_REGISTRY_<type>_<name>_CONCURRENCY
// reaches the registries client as a pin for that registry's host only.
func TestRegistryConcurrencyPinned(t *testing.T) {
	cfg, err := config.Load([]string{"TIDEWATCH_REGISTRY_HUB_SLOW_CONCURRENCY=2", "TIDEWATCH_REGISTRY_GHCR_ME_TOKEN=t"})
	if err != nil {
		t.Fatal(err)
	}
	o := registryOptions(cfg)
	if len(o.PinConcurrency) != 1 || o.PinConcurrency["index.docker.io"] != 2 {
		t.Errorf("PinConcurrency = %v, want index.docker.io pinned at 2 and nothing else", o.PinConcurrency)
	}
}
