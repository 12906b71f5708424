package notify

import "sync"

// maxRemembered bounds how many (update, service) sends a process remembers.
const maxRemembered = 100_000

// sentKey is one update's message taken by one service.
type sentKey struct {
	key   string
	index int
}

// sentSet remembers which services took which updates, so that a retry of
// a delivery (or of a batch, even made up anew) sends only to the services
// that have not taken it. It forgets the oldest entries beyond its bound,
// and everything when the plugin process restarts.
type sentSet struct {
	mu    sync.Mutex
	max   int
	set   map[sentKey]struct{}
	order []sentKey
}

func newSentSet(max int) *sentSet { return &sentSet{max: max, set: map[sentKey]struct{}{}} }

func (s *sentSet) has(key string, index int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.set[sentKey{key, index}]
	return ok
}

func (s *sentSet) add(key string, index int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := sentKey{key, index}
	if _, ok := s.set[k]; ok {
		return
	}
	s.set[k] = struct{}{}
	s.order = append(s.order, k)
	if len(s.order) > s.max {
		drop := len(s.order) - s.max
		for _, old := range s.order[:drop] {
			delete(s.set, old)
		}
		s.order = append(s.order[:0:0], s.order[drop:]...)
	}
}
