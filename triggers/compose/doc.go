// Package compose is the built-in compose trigger: continuous deployment
// with a health gate and automatic rollback. For each update it rewrites
// the service's image in its compose file (only the bytes of the tag, see
// package composefile), recreates that one service, waits until the new
// container is healthy and passes the smoke checks, and, when anything
// fails, puts the file and the previous container back and says so. tidewatch
// serves it with `tidewatch trigger serve compose`; users configure an
// instance as TIDEWATCH_TRIGGER_COMPOSE_<name>_<OPTION>.
//
// A rollout takes minutes, not seconds: set the common option DEADLINE (the
// deadline of one delivery, 30s by default) to 5m or more, at least twice
// HEALTH_TIMEOUT plus the time a pull takes. The rollout keeps the second
// half of the deadline (at most HEALTH_TIMEOUT+30s) for a rollback.
//
// # Options
//
//	FILE            (labels)     the compose file(s), comma-separated, as tidewatch sees them; default: the
//	                             container's com.docker.compose.project.config_files (relative to
//	                             com.docker.compose.project.working_dir for docker-compose 1.x)
//	PATH_MAP        (none)       host-prefix:local-prefix pairs for when tidewatch sees the host's project
//	                             folders under another path: /srv/stacks:/stacks
//	ENV_FILE        .env         the env file compose reads, default .env in the project's working dir
//	RECREATE        auto         cli, engine, or auto: cli when a compose CLI is found, else engine
//	COMPOSE         (search)     the CLI: a docker-compose, or a docker whose compose plugin is used;
//	                             default: docker compose, else docker-compose, in PATH or DefaultPath
//	DOCKER_HOST     unix:///var/run/docker.sock   the engine (the plugin process has no environment:
//	                             the DOCKER_HOST of tidewatch's own does not reach it)
//	DOCKER_CAFILE, DOCKER_CERTFILE, DOCKER_KEYFILE  TLS files for a tcp:// engine
//	HEALTH_TIMEOUT  120s         how long the new container has to become healthy; also each smoke check's
//	STABLE_FOR      10s          without a healthcheck: how long it must run without restarting
//	SMOKE_HTTP      (none)       URLs that must answer 2xx, comma-separated
//	SMOKE_TCP       (none)       host:port addresses that must accept a connection, comma-separated
//	BACKUPS         3            timestamped backups of the file kept beside it
//	PRUNE           false        remove the previous image after a successful rollout
//	DRYRUN          false        report the diff and the steps, touch nothing
//	LOG_LINES       50           log lines of the failed container in a rollback report
//	SELF_CONTAINER  (detected)   IDs or names of tidewatch's own container, refused
//
// MODE is not the recreate option's name because MODE is one of tidewatch's
// common trigger options (once or batch).
//
// # A rollout
//
//  1. inspect: the update's container (or, when it is gone, the service's
//     current one, by its compose labels); tidewatch's own is refused.
//  2. lock: one rollout per compose project at a time; others wait.
//  3. locate: the compose file and the rewrite (a built service, a service
//     without image, an image that cannot be rewritten safely are refused;
//     nothing is touched).
//  4. pull: the new image, through the engine. A failed pull changes
//     nothing: the result is a permanent failure with event update-failed.
//     When the file already names the new image and the service runs it
//     (the same delivery fired again), the result is applied at once.
//  5. write: the file is rewritten, a backup kept.
//  6. recreate: cli runs `<cli> -p <project> --project-directory <dir> -f
//     <file>… up -d --no-deps <service>` in the project's folder (compose
//     reads the .env there itself); engine renames the old container to
//     <name>-tidewatch-old, stops it, creates <name> like it (configuration,
//     host configuration, networks and aliases; what came from the old
//     image is left to the new image) and starts it.
//  7. health: running and healthy within HEALTH_TIMEOUT, or, without a
//     healthcheck, running without restart for STABLE_FOR.
//  8. smoke: SMOKE_HTTP and SMOKE_TCP, each retried until HEALTH_TIMEOUT.
//  9. On success: event update-applied; the old container is removed
//     (engine), and with PRUNE the old image. On failure of 6–8, rollback:
//     the failed container's last LOG_LINES lines are kept, the file is
//     restored byte for byte, and the previous container comes back (engine:
//     the new one removed, the old one renamed back and started; cli: up
//     again with the restored file, the old image still being local). The
//     result is a permanent failure (a rolled-back update is not retried)
//     with event update-rolled-back, or update-failed when even the rollback
//     failed.
//
// The trigger says it deploys (sdk.Description.Deploys); its result carries
// an sdk.Rollout: the outcome, every step with its start and duration, the
// file changed and its backup, the failed step, the reason, the log lines,
// and for a dry run the diff and the plan.
//
// # Caveats
//
// In cli mode, the CLI runs where tidewatch runs: relative bind mounts in
// the compose file resolve against the folder tidewatch sees, so mount the
// project folders into tidewatch's container at the same path as on the host
// (PATH_MAP is then not needed). In engine mode, the new container keeps the
// compose labels of the old one, with its config hash: the next
// `docker compose up` of the project recreates it once more, to the same image.
//
// # Updating tidewatch itself
//
// A rollout of the container tidewatch runs in would stop tidewatch in its
// middle, so it is refused. Update tidewatch from outside: pull its new image
// and recreate its container, e.g. `docker compose pull tidewatch && docker
// compose up -d tidewatch`. tidewatch finds its own container from
// /proc/self/mountinfo, /proc/self/cgroup and its hostname; where it cannot
// (a custom hostname under cgroup v2), name it in SELF_CONTAINER.
package compose
