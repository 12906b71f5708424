// Package swarm is the built-in swarm trigger: continuous deployment of
// Docker Swarm services, where the engine does the rolling update and the
// rollback. For each update it sets the service's image to the new tag
// pinned by digest, with the registry credentials tidewatch reads that
// registry with (so that every node can pull, as `docker service update
// --with-registry-auth` does), waits until the engine says the update
// completed or was rolled back, and reports how it went. tidewatch serves
// it with `tidewatch trigger serve swarm`; users configure an instance as
// TIDEWATCH_TRIGGER_SWARM_<name>_<OPTION>, on a swarm manager.
//
// `docker service update` exits 0 even when the engine rolled the update
// back; this trigger reads the service's UpdateStatus instead, and reports
// update-applied, update-rolled-back (with the engine's message, the failed
// tasks' errors and the last log lines of the newest) or update-failed.
//
// A rolling update takes as long as its tasks take to start and be
// monitored: the delivery's deadline (the common option DEADLINE, 10m by
// default for a trigger that deploys) is split in two, the first half to
// wait for the update, the second for a rollback the trigger asks for.
//
// # Options
//
//	DOCKER_HOST     unix:///var/run/docker.sock   the manager's engine
//	DOCKER_CAFILE, DOCKER_CERTFILE, DOCKER_KEYFILE  TLS files for a tcp:// engine
//	FAILURE_ACTION  rollback     \
//	MONITOR         15s           | the update config given to a service that has none of
//	ORDER           start-first   | its own (a stack file without update_config); a service's
//	PARALLELISM     1             | own update config is used as it is. start-first becomes
//	DELAY           (none)       /  stop-first where the service publishes ports in host mode
//	PAUSED          rollback     when the engine pauses the update (the service's own failure
//	                             action is pause, docker service create's default): rollback asks the
//	                             engine to roll back; leave reports update-failed and leaves it paused
//	STACK_FILE      (none)       stack files to keep true: stack=/path/stack.yml, or a path for every
//	                             stack with {stack} for its name; as on the host, through PATH_MAP
//	PATH_MAP        (none)       host-prefix:local-prefix pairs: /srv/stacks:/stacks
//	BACKUPS         3            timestamped backups of a stack file kept beside it
//	LOG_LINES       50           log lines of the failed task in a rollback report
//	DRYRUN          false        report what would be done, touch nothing
//	SELF_CONTAINER  (detected)   tidewatch's own container: its service is refused
//
// # A rollout
//
//  1. inspect: the update's service (by ID, else by name: a stack deployed
//     anew gives it another ID); a container, tidewatch's own service, or a
//     service of another repository are refused.
//  2. lock: one rollout per service at a time.
//  3. resolve: the new image is the spec's repository with the update's
//     tag, pinned to the digest the update found (a digest update) or to
//     the one the registry gives the tag now, asked through the manager
//     with the credentials. When the service already runs it, the result
//     is applied at once (the same delivery fired again).
//  4. stack-plan: for a service of a stack (label com.docker.stack.namespace)
//     with a STACK_FILE: where its image is set, and the rewrite (package
//     composefile: only the bytes of the tag, or tag@digest when the file
//     pins one). A tag set by a variable is not rewritten: docker stack
//     deploy takes variables from its environment, not from a file. A
//     file that cannot be rewritten fails this step only: the rollout goes
//     on, its outcome and reason are the update's, and the report says why
//     the file was not rewritten.
//  5. update: the service's spec gets the image, and, when it has none, the
//     update config above (and a rollback config); the engine is asked for
//     the image's platforms, as the CLI does, so that tasks land on nodes
//     that can run it.
//  6. rollout: the service is read every half second until its update
//     completes, pauses or is rolled back, or half the deadline passes. A
//     service without tasks to roll has completed once every task meant to
//     run is a running task of the new image.
//  7. On completion: event update-applied, and the stack file rewritten
//     (a backup kept). On a rollback by the engine: update-rolled-back with
//     the reason. On a pause (PAUSED=rollback) or the deadline: the trigger
//     asks the engine to roll back and waits; rolled back, the result is
//     update-rolled-back, otherwise update-failed. A rolled-back update is
//     not retried.
//
// Without a STACK_FILE for its stack, the report says that the stack file
// was not rewritten, and that the next `docker stack deploy` will put the
// old image back.
package swarm
