// Package watch is the watch loop of one Docker host: it lists the host's
// containers, chooses those to watch, asks each image repository once per
// run for its tags (and, where a policy watches digests, the digest of a tag
// by HEAD), selects the best candidate per container and hands the results
// to a Recorder.
//
// A run overlaps its work: registry requests start as soon as the container
// list names the repositories; the images are inspected beside them (what
// an inspect says is kept by image ID for later runs); each repository's
// containers are decided as soon as its answers and their images are in; the
// run is then recorded in one transaction and its updates handed to the
// Dispatcher. Where a run's time went (Phases) is logged and handed to
// Options.OnPhases.
//
// Watch runs a full check on a schedule and, between runs, checks a single
// container within seconds of the engine starting it. When the engine's
// event stream breaks (the engine restarted), Watch reconnects with backoff
// and runs a full check to reconcile what it missed. Whatever asks for a full
// run, it starts at least LoopOptions.MinGap (default one minute) after the
// previous one ended, and a schedule that never fires is refused.
//
// The watchers of one daemon may hold one Share, so that a repository used
// on several hosts is asked once by all of them (see Share). A cooldown
// (the tidewatch.update.min-age label, Options.ReadCreated for the
// triggers' MIN_AGE) makes the watcher read each candidate's creation time,
// once per candidate digest.
//
// Defaults: 64 registry requests of a run under way at once (the registries
// client limits, and adapts, those in flight per registry); 8 image inspects
// at once, an inspect's answer reused for DefaultImageTTL (an hour); a
// repository that a registry failed transiently (5xx, timeouts) is asked
// once more at the run's end; containers are watched unless labelled
// tidewatch.watch=false (Options.WatchByDefault); only running containers
// are listed unless Options.WatchAll; no Share.
package watch
