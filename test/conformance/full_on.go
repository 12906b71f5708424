//go:build faults

package conformance

// fullCorpus is set by the faults build tag (make faults): every service of
// the corpus is recreated, not only the sample.
const fullCorpus = true
