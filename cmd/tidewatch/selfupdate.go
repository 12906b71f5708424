package main

import (
	"context"
	"io"
	"strings"

	"github.com/tidewatch/tidewatch/triggers/rollout"
)

// selfUpdateCommand is the hidden `tidewatch self-update`: the helper
// container a deploying trigger starts to update tidewatch's own container
// from outside it. Its request is in $TIDEWATCH_SELF_UPDATE (JSON); it
// writes its outcome into the store folder, where the tidewatch that runs
// afterwards reads it. It takes no arguments.
func selfUpdateCommand(ctx context.Context, args, environ []string, stderr io.Writer) int {
	if len(args) > 0 {
		io.WriteString(stderr, "usage: tidewatch self-update (started by tidewatch itself, with its request in "+rollout.EnvSelfUpdate+")\n")
		return exitUsage
	}
	getenv := func(name string) string {
		v := ""
		for _, e := range environ {
			if k, val, ok := strings.Cut(e, "="); ok && k == name {
				v = val
			}
		}
		return v
	}
	return rollout.RunSelfUpdate(ctx, getenv, stderr)
}
