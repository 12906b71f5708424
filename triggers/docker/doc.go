// Package docker is the built-in docker trigger: continuous deployment of
// plain containers (those `docker run` made), with a health gate and
// automatic rollback. For each update it recreates the container on the new
// image with everything else as it was, waits until the new container is
// healthy and passes the smoke checks, and, when anything fails, puts the
// previous container back and says so. tidewatch serves it with
// `tidewatch trigger serve docker`; users configure an instance as
// TIDEWATCH_TRIGGER_DOCKER_<name>_<OPTION>.
//
// A rollout takes minutes, not seconds: the DEADLINE of a deploying
// trigger defaults to 10m; keep it at least twice HEALTH_TIMEOUT plus the
// time a pull takes. The rollout keeps the second half of the deadline (at
// most HEALTH_TIMEOUT+30s) for a rollback.
//
// # Options
//
//	DOCKER_HOST     unix:///var/run/docker.sock   the engine (the plugin process has no environment:
//	                             the DOCKER_HOST of tidewatch's own does not reach it)
//	DOCKER_CAFILE, DOCKER_CERTFILE, DOCKER_KEYFILE  TLS files for a tcp:// engine
//	HEALTH_TIMEOUT  120s         how long the new container has to become healthy; also each smoke check's
//	STABLE_FOR      10s          without a healthcheck: how long it must run without restarting
//	SMOKE_HTTP      (none)       URLs that must answer 2xx, comma-separated
//	SMOKE_TCP       (none)       host:port addresses that must accept a connection, comma-separated
//	LOG_LINES       50           log lines of the failed container in a rollback report
//	PRUNE           false        remove the previous image after a successful rollout
//	DRYRUN          false        report the steps, touch nothing
//	SELF_CONTAINER  (detected)   IDs or names of tidewatch's own container
//	SELF_UPDATE     true         update tidewatch's own container through a helper container; false refuses it
//
// # What the new container keeps
//
// The new container is what `docker run` with the same options would give
// on the new image. The engine's view of a container mixes what the user set
// with what the image gave it; copying it whole would freeze the old image's
// defaults into the new container (the classic trap of recreating from an
// inspected configuration). So each value is compared with the old image's:
// environment entries, entrypoint and command, working dir, user, labels,
// healthcheck fields, stop signal, VOLUMEs and EXPOSEd ports that equal the
// old image's are the image's, and left to the new image; everything else
// — and all of the host configuration: ports, mounts, restart policy,
// resources, devices, capabilities, sysctls, tmpfs, logging, and the
// networks with their aliases and static addresses — is kept. A value the
// user set equal to the old image's default cannot be told apart from it,
// and follows the image. Anonymous volumes are carried over (mounted by name
// where they were) when the user or the new image wants a volume there; one
// only the old image declared stays on the engine, unmounted, and the
// report names it. No volume is ever removed.
//
// # A rollout
//
//  1. inspect: the update's container (by ID, or by name once replaced).
//     Refused, touching nothing: a compose service (the compose trigger
//     updates it, rewriting its file), a Swarm task (Swarm replaces it), a
//     container started with --rm (the engine would remove it when it stops,
//     leaving nothing to roll back to), one created from an image ID, one of
//     another repository than the update's. tidewatch's own container is
//     updated through a helper (below).
//  2. lock: one rollout per container at a time, across processes (an
//     flock in STATE_DIR, removed when the rollout ends). A rollout record
//     left there by a rollout cut short (tidewatch killed) is settled
//     first: applied, its clean-up is finished; its rollback decided, the
//     rollback is finished; otherwise it is undone (the new containers
//     removed, the old one renamed back, started and checked), and, when it
//     was this delivery's, done again from the start.
//  3. pull: the new reference, written as the container's (its spelling of
//     the repository, the candidate's tag, its digest when the container
//     pinned one), with the registry's credentials (sdk.Update.RegistryAuth).
//     A failed pull changes nothing: a permanent failure, event
//     update-failed. When the container already runs the pulled image (the
//     same delivery fired again), the result is applied at once.
//  4. recreate: the container is renamed <name>-tidewatch-old, its
//     replacement created under its name, the old one stopped, the new one
//     started (created before the stop: a configuration the engine refuses
//     stops nothing).
//  5. health: running and healthy within HEALTH_TIMEOUT, or, without a
//     healthcheck, running without restart for STABLE_FOR.
//  6. smoke: SMOKE_HTTP and SMOKE_TCP, each retried until HEALTH_TIMEOUT.
//  7. followers: containers in its network namespace (--network
//     container:<it>, which the engine pins to the old container's ID) and
//     containers with a legacy link to it (--link <it>:alias, which the
//     engine renamed with the old container) are recreated on their own
//     image, pointing at the new one, and started and checked when they ran.
//  8. On success: event update-applied; the old containers are removed
//     (their volumes stay), and with PRUNE the old image. On failure of 4–7,
//     rollback: the failed container's last LOG_LINES lines are kept, the
//     new containers removed, the old ones renamed back and started, the
//     followers restarted after it, and the old container checked running
//     and healthy; a tag a digest update moved is pointed at the old image
//     again. The result is a permanent failure with event
//     update-rolled-back, or update-failed when the rollback failed too (a
//     person must look; the record stays, and tidewatch serve fires the
//     trigger again with the delivery's key and the event update-failed,
//     which settles the record without rolling anything out: settle.go).
//
// Before the rename, the rollout writes its record (rollout.Record: the
// container, whether it ran, the name it is kept aside under, its
// followers; the new containers as they are created) in STATE_DIR, and
// updates it at each phase; it is removed once the rollout has ended.
//
// The trigger says it deploys (sdk.Description.Deploys); its result carries
// an sdk.Rollout: the outcome, every step with its start and duration, the
// failed step, the reason, the log lines, and for a dry run the plan.
//
// # Updating tidewatch itself
//
// A process cannot recreate the container it runs in. When the update is
// for tidewatch's own container (found from /proc/self/mountinfo,
// /proc/self/cgroup and the hostname, or named in SELF_CONTAINER), the
// trigger pulls the new image and starts a helper container from
// tidewatch's current image, with tidewatch's volumes (the engine's socket,
// the store folder), running `tidewatch self-update`. The helper replaces
// tidewatch's container as above, its health gate being tidewatch's own
// HEALTHCHECK (`tidewatch healthcheck`), rolls back when it fails, writes
// the outcome into the store folder (self-update/<key>.json) and exits.
// Stopping the old container cuts the delivery short; the tidewatch that
// runs afterwards resumes it with the same key, finds the outcome, and
// reports it: the history and the notifications (update-applied,
// update-rolled-back) come from it. The store folder must be on a volume or
// bind mount (the image declares VOLUME /data).
package docker
