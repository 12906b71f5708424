// Package testbed starts and reaches the real parts that tidewatch's system
// tests run against: a Docker engine and a registry (Debian's docker-registry,
// CNCF distribution v2) on 127.0.0.1.
//
// Up starts what is missing and records it in a state file (state.json in the
// state folder; bedctl uses .testbed under the module root); Down stops only
// what Up started and removes the containers the tests left. An engine that was
// already running is reused and left running.
//
// Tests call Require, which finds the state file (TIDEWATCH_TESTBED_STATE, else
// .testbed/state.json under the module root) and skips the test when the bed is
// not up, or fails it when TIDEWATCH_TESTBED_REQUIRED=1 or CI=true. The Bed it
// returns builds the test app (package test/testapp) into a one-layer image FROM
// scratch, pushes it to the registry, and runs containers from it, each labelled
// tidewatch.test=1 and removed when the test ends.
package testbed
