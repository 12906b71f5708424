// Package conformance holds the recreate conformance test: a corpus of
// compose services (corpus.go), each recreated on a new tag by the compose
// v2 CLI, Debian's docker-compose 1.29 and tidewatch's engine mode, whose
// containers are compared field by field (docker inspect), every field left
// out named with its reason (exclusions_test.go).
//
// Run: go run ./test/bedctl up; TIDEWATCH_TESTBED_REQUIRED=1 go test -count=1 ./test/conformance/
// (a sample of the corpus); with -tags faults (make faults) the whole corpus.
// The compose v2 CLI is the docker CLI plugin the test bed builds (its part
// "compose v2", run standalone).
//
// Beside it, the docker-run conformance test (dockerrun_test.go): a corpus
// of `docker run` variants (dockerrun_corpus.go) started with the docker
// CLI on an image whose defaults all change in the next version, each
// recreated by the docker trigger and compared with `docker create` of the
// same options on the new version, and with itself before (only what the
// image gives may differ); exclusions in dockerrun_exclusions_test.go.
package conformance
