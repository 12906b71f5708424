// Package watch is the watch loop of one Docker host: it lists the host's
// containers, chooses those to watch, asks each image repository once per
// run for its tags (and, where a policy watches digests, the digest of a tag
// by HEAD), selects the best candidate per container and hands the results
// to a Recorder.
//
// Watch runs a full check on a schedule and, between runs, checks a single
// container within seconds of the engine starting it. When the engine's
// event stream breaks (the engine restarted), Watch reconnects with backoff
// and runs a full check to reconcile what it missed. Whatever asks for a full
// run, it starts at least LoopOptions.MinGap (default one minute) after the
// previous one ended, and a schedule that never fires is refused.
//
// Defaults: 64 repositories checked at once per run (the registries client
// limits and adapts requests per registry on its own); a repository that a
// registry failed transiently (5xx, timeouts) is asked once more at the
// run's end; containers are watched unless
// labelled tidewatch.watch=false (Options.WatchByDefault); only running
// containers are listed unless Options.WatchAll.
package watch
