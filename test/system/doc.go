// Package system holds tidewatch's system tests: the built binary against the
// test bed's real Docker engine and registry (see test/testbed). Run them with
// `make test`, which starts the test bed; without it they are skipped.
package system
