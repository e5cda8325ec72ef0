package flow

import (
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// Exchanges of a client that waits for each response, with whole
// exchanges and single responses lost as when the mirror drops batches of
// datagrams: the holes are given up after the reorder window, and the
// content behind them, of both directions, comes out at once. A request
// sent before a lost response (its ACK does not cover it) must never take
// the response of the request after it. One connection alone: the orders
// that many connections sharing a worker's clock and buffers produce are
// in TestBurstLossNeverMispairs (tests/bench).
func TestLostResponsesNeverShiftPairs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lostAll  []int // exchanges lost entirely
		lostResp []int // exchanges whose response (and the ACKs around it) is lost
		spacing  time.Duration
		sweep    bool // the holes time out in a sweep of the connection table, not at a packet of the connection
	}{
		{"response lost", nil, []int{1}, time.Millisecond, false},
		{"exchange lost, then a response", []int{1}, []int{4}, 20 * time.Millisecond, false},
		{"exchange lost, then responses", []int{1, 6}, []int{3, 4, 8}, 20 * time.Millisecond, false},
		{"slow exchanges", []int{2}, []int{5}, 200 * time.Millisecond, false},
		{"swept: exchange lost, then a response", []int{1}, []int{4}, 20 * time.Millisecond, true},
		{"swept: exchange lost, then responses", []int{1, 6}, []int{3, 4, 8}, 20 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := newPairRun(Config{})
			xs := keepAlive(12, func(i int) int { return 50 + i })
			const cisn, sisn = 1000, 5000
			pr.pkt(true, cisn, 0, decode.SYN, nil, 0)
			pr.pkt(false, sisn, cisn+1, decode.SYN, nil, time.Millisecond)
			c, s := uint32(cisn+1), uint32(sisn+1)
			in := func(l []int, i int) bool {
				for _, x := range l {
					if x == i {
						return true
					}
				}
				return false
			}
			for i, x := range xs {
				if in(tc.lostAll, i) {
					c += uint32(len(x.req))
					s += uint32(len(x.resp))
					pr.at += tc.spacing
					continue
				}
				pr.pkt(true, c, s, decode.PSH, x.req, tc.spacing)
				c += uint32(len(x.req))
				if in(tc.lostResp, i) {
					s += uint32(len(x.resp))
					continue
				}
				pr.pkt(false, s, c, 0, nil, 10*time.Microsecond)
				pr.pkt(false, s, c, decode.PSH, x.resp, 10*time.Microsecond)
				s += uint32(len(x.resp))
				pr.pkt(true, c, s, 0, nil, 10*time.Microsecond)
			}
			if tc.sweep {
				// Other connections' traffic moves the clock on.
				pr.at += 2 * time.Second
				pr.w.advance(t0.Add(pr.at))
			}
			// Later traffic of the connection makes the holes time out.
			pr.pkt(true, c, s, decode.FIN, nil, 2*time.Second)
			pr.pkt(false, s, c+1, decode.FIN, nil, time.Millisecond)
			pr.w.closeAll()
			answered := 0
			for _, p := range pr.pairs {
				req, resp, _ := strings.Cut(p, " -> ")
				if resp != "pending" && resp != req {
					t.Fatalf("mis-paired %q (all: %q)", p, pr.pairs)
				}
				if resp == req {
					answered++
				}
			}
			if want := len(xs) - len(tc.lostAll) - len(tc.lostResp); answered < want/2 {
				t.Errorf("%d of %d complete exchanges paired: %q", answered, want, pr.pairs)
			}
		})
	}
}
