package kafka

import "sync"

// maxTopicIDs bounds the topic ids remembered.
const maxTopicIDs = 1 << 14

// topicIDs maps topic ids to names, learned from Metadata responses (v10+)
// and used by the requests that name topics by id (Produce v13+, Fetch
// v13+). One map serves every connection of a Protocol, since clients ask
// for metadata on a connection of their own: a name resolves once any
// connection's Metadata response was seen first. Parsers on several shards
// share it, so it is locked.
type topicIDs struct {
	mu    sync.RWMutex
	names map[[16]byte]string
}

func newTopicIDs() *topicIDs { return &topicIDs{names: make(map[[16]byte]string)} }

func (t *topicIDs) lookup(id [16]byte) string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.names[id]
}

func (t *topicIDs) learn(id [16]byte, name string) {
	if name == "" || id == ([16]byte{}) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.names[id]; !ok && len(t.names) >= maxTopicIDs {
		for k := range t.names { // forget one at random
			delete(t.names, k)
			break
		}
	}
	t.names[id] = name
}
