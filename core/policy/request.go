package policy

import "github.com/tidewatch/tidewatch/core"

// RequestKind is the kind of a jump a person asked for from the tag
// current to the tag requested (a deploy from CI), which need not be newer
// nor of the same shape: the kind Kind gives when both are versions of one
// shape, KindDigest when the tag is the same (the same tag pulled again),
// and KindMajor otherwise — a jump tidewatch cannot measure is taken as the
// largest.
func RequestKind(current, requested string) core.UpdateKind {
	if current == requested {
		return core.KindDigest
	}
	a, okA := ParseTag(current)
	b, okB := ParseTag(requested)
	if !okA || !okB || !a.SameShape(b) {
		return core.KindMajor
	}
	if Compare(a, b) > 0 {
		a, b = b, a // a step back is as far as the same step forward
	}
	if k := Kind(a, b); k != core.KindNone {
		return k
	}
	return core.KindMajor
}
