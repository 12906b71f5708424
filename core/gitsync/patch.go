package gitsync

import "bytes"

// maxContext is how many lines around an edit are used, at most, to find
// the one place it applies.
const maxContext = 3

// replay applies the edit that turned before into after onto another
// version of the same file, onto, and returns the result. It succeeds when
// onto is before (the result is after), when onto already holds the edit
// (the result is onto), or when the lines the edit replaced appear exactly
// once in onto, with up to maxContext lines of context to tell copies apart.
// Otherwise it reports false: the other version changed those lines too, and
// applying the edit would lose someone's work.
//
// The edit is the region between the longest common prefix and suffix of
// before and after, widened to whole lines: one region, as a rollout's
// rewrite of an image value or a .env variable is.
func replay(before, after, onto []byte) ([]byte, bool) {
	if bytes.Equal(onto, before) {
		return after, true
	}
	if bytes.Equal(onto, after) {
		return onto, true
	}
	p := commonPrefix(before, after)
	s := commonSuffix(before[p:], after[p:])
	start := bytes.LastIndexByte(before[:p], '\n') + 1
	end := len(before) - s
	if end == start || before[end-1] != '\n' {
		// Widen to the end of the line the edit ends in (or starts, for a
		// pure insertion at a line start).
		if i := bytes.IndexByte(before[end:], '\n'); i >= 0 {
			end += i + 1
		} else {
			end = len(before)
		}
	}
	oldSeg := before[start:end]
	newSeg := after[start : len(after)-(len(before)-end)]
	for k := 0; k <= maxContext; k++ {
		pre := linesBefore(before, start, k)
		post := linesAfter(before, end, k)
		needle := make([]byte, 0, len(pre)+len(oldSeg)+len(post))
		needle = append(append(append(needle, pre...), oldSeg...), post...)
		if len(needle) == 0 {
			continue
		}
		n := countOverlapping(onto, needle)
		if n == 0 {
			return nil, false
		}
		if n > 1 {
			continue
		}
		i := bytes.Index(onto, needle) + len(pre)
		out := make([]byte, 0, len(onto)-len(oldSeg)+len(newSeg))
		out = append(append(append(out, onto[:i]...), newSeg...), onto[i+len(oldSeg):]...)
		return out, true
	}
	return nil, false
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}

// linesBefore returns the k whole lines that end at offset start (a line
// start) of b.
func linesBefore(b []byte, start, k int) []byte {
	i := start
	for ; k > 0 && i > 0; k-- {
		j := bytes.LastIndexByte(b[:i-1], '\n')
		i = j + 1
	}
	return b[i:start]
}

// linesAfter returns the k whole lines that start at offset end of b.
func linesAfter(b []byte, end, k int) []byte {
	i := end
	for ; k > 0 && i < len(b); k-- {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			i = len(b)
			break
		}
		i += j + 1
	}
	return b[end:i]
}

// countOverlapping counts the occurrences of sep in b, overlapping ones
// included (up to 2: more is as ambiguous as 2).
func countOverlapping(b, sep []byte) int {
	n := 0
	for i := 0; n < 2; {
		j := bytes.Index(b[i:], sep)
		if j < 0 {
			break
		}
		n++
		i += j + 1
	}
	return n
}
