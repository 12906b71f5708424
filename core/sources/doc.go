// Package sources runs tidewatch's git sources: repositories whose compose
// files say what runs (harbormaster's job). For each source a Runner keeps
// tidewatch's own shallow clone (gitsync.Mirror) under one folder and syncs
// it at start, every Interval, and when a signed push webhook names it:
//
//  1. fetch the branch (bounded by Timeout);
//  2. gitsync.Next decides from the State: in sync, a new commit to deploy,
//     or the commit that failed last (skipped until a newer one arrives);
//  3. for a new commit: what the last deploy of the source left in flight
//     at a stop is waited for (Settler), then the compose files that
//     changed since the commit deployed (gitsync.Mirror.Changes), a copy of
//     their previous contents, the clone checked out at the new commit, and
//     the Deployer rolls the changed services out and brings the removed
//     ones down (OutboxDeployer: one delivery per service in the
//     dispatcher's outbox, to the source's compose trigger: pull, health
//     gate, smoke checks, rollback);
//  4. a deploy that succeeded becomes the commit deployed; one that failed
//     is marked failed (gitsync.Record.Marked) and the clone is put back at
//     the commit deployed before.
//
// Every deploy and every failure is written to the history (Recorder) with
// its commit id; a failure that repeats the last one is not written again.
// Without a Deployer, sources are fetched and their drift shown, and
// nothing is deployed.
//
// The Runner starts one goroutine per source in Run and none elsewhere; a
// source's syncs run one at a time.
package sources
