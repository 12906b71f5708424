// Package bench holds benchmarks of tidewatch's detection cost: one full
// check of many containers over many repositories against the in-process
// registry (registries/registrytest) with latency added to every request.
// `make bench` runs them; they report requests per repository, token
// requests, wall time per run, allocations and the process's peak RSS.
package bench
