package flow

import (
	"bytes"
	"testing"
	"time"
)

// Server content waiting for the client (held) plus a hole in the server
// direction, with the per-connection cap reached.
func TestTmpHeldPlusOOOReorder(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 4096, ReorderWindow: time.Second})
	f := h.conn(100, 900)
	f.handshake(0)
	s1, s2, s3 := bytes.Repeat([]byte("1"), 100), bytes.Repeat([]byte("2"), 100), bytes.Repeat([]byte("3"), 100)
	// s1 acknowledges 50 client bytes not seen yet: held.
	f.sAck(0, s1, 50, 1*ms)
	// s3 arrives before s2: buffered out of order.
	f.sAck(200, s3, 50, 2*ms)
	// s2 fills the hole.
	f.sAck(100, s2, 50, 3*ms)
	r := h.only()
	t.Logf("server bytes handed over: %q", r.data[1])
	t.Logf("events %q gaps stat %d held %d timeouts %d", r.evs(), h.stats.Gaps.Load(), h.stats.Held.Load(), h.stats.HeldTimeouts.Load())
	want := append(append(append([]byte{}, s1...), s2...), s3...)
	if len(r.data[1]) > 0 && !bytes.Equal(r.data[1], want[:len(r.data[1])]) {
		t.Errorf("server stream reordered")
	}
}
