// Package command is the built-in command trigger: it runs a program for
// each update (in batch mode, once per run's updates), with the update in
// environment variables and the webhook trigger's JSON payload on stdin.
// tidewatch serves it with `tidewatch trigger serve command`; users
// configure an instance as TIDEWATCH_TRIGGER_COMMAND_<name>_<OPTION>.
//
// # Options
//
//	COMMAND  required          an absolute path, or a name looked up on the plugin's PATH (DefaultPath when
//	                           it has none); checked at start-up. Never run through a shell.
//	ARGS     (none)            the arguments, a JSON array of strings: ["--channel", "ops"]. No quoting,
//	                           globbing or variable expansion happens; write a script for that.
//	TIMEOUT  30s               the longest a run may take
//	ENV      (none), secret    extra variables, "NAME=VALUE" pairs separated by commas, or by newlines when
//	                           a value holds a comma; names starting with TIDEWATCH_ are refused
//	DIR      (none)            the working directory; default the plugin process's
//
// # Environment
//
// A program does not inherit the plugin's environment (which holds
// go-plugin's handshake variables): it gets PATH (the plugin's, else
// DefaultPath), HOME, USER, LOGNAME, LANG, LC_ALL, LC_CTYPE, TZ and TMPDIR
// when the plugin has them, then ENV, then:
//
//	TIDEWATCH_TRIGGER           the trigger instance's name
//	TIDEWATCH_KEY               the idempotency key: the update's, or for a batch sdk.Key of all of them
//	TIDEWATCH_COUNT             how many updates the run is for (all of them are on stdin)
//	TIDEWATCH_EVENT             update-available, update-applied, update-failed or update-rolled-back
//	TIDEWATCH_HOST              the Docker host (watcher)
//	TIDEWATCH_CONTAINER         the container's display name
//	TIDEWATCH_CONTAINER_ID      its engine ID
//	TIDEWATCH_IMAGE             the repository
//	TIDEWATCH_CURRENT           the running tag, and TIDEWATCH_CURRENT_DIGEST its digest
//	TIDEWATCH_CANDIDATE         the tag offered, and TIDEWATCH_CANDIDATE_DIGEST its digest
//	TIDEWATCH_KIND              major, minor, patch, prerelease or digest
//	TIDEWATCH_LINK              the release-notes link, "" when none
//	TIDEWATCH_DETECTED_AT       when the candidate was first found, RFC 3339 UTC
//	TIDEWATCH_DETAIL            what happened, for rollout events
//
// In batch mode these describe the first update; stdin has them all.
// Stdin is the JSON document of sdk.Payload; a program may ignore it.
//
// # Exit codes and results
//
//	0             delivered (detail "exit 0")
//	75            EX_TEMPFAIL: retried later by tidewatch, with backoff
//	anything else permanent, as is a program killed by a signal it did not get from us
//	timeout       the program's process group is killed (SIGKILL), and the delivery retried
//	not started   (removed or replaced since start-up, out of resources) retried
//
// The program runs in a process group of its own, so a timeout also kills
// what it started; on Linux it is also killed if the plugin process dies
// (tidewatch cutting the plugin off), though what it started in the
// background then is not. A run that should not repeat its effect can
// remember TIDEWATCH_KEY: the same key may be fired again after a retry or
// a crash.
//
// # Output
//
// Each line the program writes on stdout or stderr is logged at info level
// with the trigger's name and "stream": stdout or stderr; tidewatch shows
// it with the plugin's name. A line is cut at 1,024 bytes, and at most 200
// lines a run are logged (then how many were not). An error quotes the last
// 5 lines, each cut at 200 bytes.
package command
