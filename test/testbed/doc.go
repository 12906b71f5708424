// Package testbed installs, starts and reaches the real parts that
// tidewatch's system tests run against: a Docker engine and a registry
// (Debian's docker-registry, CNCF distribution v2), two mail servers
// (mailpit) and an MQTT broker (Debian's mosquitto) on 127.0.0.1, and the
// programs the tests run: Debian's docker-compose 1.29, the compose v2 CLI
// plugin, chromium and git.
//
// Install puts every missing part on the machine once, before any test
// package starts: the Debian packages in one apt-get step that waits for the
// locks of other package managers, the Go parts (mailpit, the compose v2
// plugin) with the go command. Test packages never install anything: a
// missing part fails the test under make test and CI, and skips it otherwise
// (Bed.Part, MissingPart).
//
// Up installs, starts what is missing and records it in a state file
// (state.json in the state folder; bedctl uses .testbed under the module
// root); Down stops only what Up started and removes the containers the tests
// left. An engine that was already running is reused and left running.
//
// Tests call Require, which finds the state file (TIDEWATCH_TESTBED_STATE, else
// .testbed/state.json under the module root) and skips the test when the bed is
// not up, or fails it when TIDEWATCH_TESTBED_REQUIRED=1 or CI=true. The Bed it
// returns builds the test app (package test/testapp) into a one-layer image FROM
// scratch, pushes it to the registry, and runs containers from it, each labelled
// tidewatch.test=1 and removed when the test ends; it runs compose projects with
// either compose CLI (ComposeUpWith), and names the broker (MQTT) and the mail
// servers (Messages, WaitMessage).
package testbed
