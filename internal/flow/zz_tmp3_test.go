package flow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
	"github.com/apitap/apitap/internal/http1"
)

func TestTmpSweepCost(t *testing.T) {
	cfg := Config{}
	cfg.setDefaults()
	var stats Stats
	hs := &http1.Stats{}
	w := newWorker(&cfg, &stats, func(id ConnID) Handler {
		return http1.NewConn(&http1.Config{EmitPending: true}, hs, nil)
	}, 2)
	req := []byte("GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	n := 131072
	for i := 0; i < n; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(1024+i%50000))
		p := mkPkt(1, src, srvAP, 1, decode.ACK|decode.PSH, req)
		w.packet(&p, t0.Add(time.Duration(i)*time.Microsecond))
	}
	t.Logf("%d conns", len(w.conns))
	for k := 0; k < 3; k++ {
		start := time.Now()
		w.advance(w.clock.Add(1100 * time.Millisecond))
		t.Logf("one sweep: %v", time.Since(start))
	}
}
