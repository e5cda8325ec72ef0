package flow

import (
	"net/netip"
	"testing"

	"github.com/apitap/apitap/internal/decode"
)

// A skipped (TLS) connection's out-of-order bytes still take the worker's
// buffer and evict the hole of a parsed connection.
func TestTmpSkippedConnEvictsParsed(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 64 << 10, MaxBufferBytes: 64 << 10})
	// conn 1: HTTP, has a hole with one buffered segment.
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, pattern(100, 1), 0, 1*ms)
	f.c(1500, pattern(1000, 2), 0, 2*ms) // hole [100,1500)
	// conn 2: TLS, skipping after its first bytes.
	tls := &tcp{h: h, vni: 7, cli: netip.MustParseAddrPort("10.1.0.5:40005"), srv: srvAP, cisn: 1000, sisn: 2000}
	tls.handshake(3 * ms)
	h.recs[1].skipAfter = 1
	tls.c(0, []byte("\x16\x03\x01"), 0, 4*ms)
	for i := 0; i < 40; i++ { // a burst of reordered TLS segments
		p := mkPkt(7, tls.cli, tls.srv, tls.cisn+1+uint32(3+1400+i*1400), decode.ACK, pattern(1400, i))
		p.Ack = tls.sisn + 1
		h.send(p, 5*ms)
	}
	r := h.recs[0]
	t.Logf("parsed conn gaps %v (hole declared early by TLS bytes: %v), overflows %d, skipped bytes %d",
		r.gaps[0], len(r.gaps[0]) > 0, h.stats.BufferOverflows.Load(), h.stats.SkippedBytes.Load())
}
