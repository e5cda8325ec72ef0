package flow

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

const ms = time.Millisecond

func TestInOrderWithSYN(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(1000, 5000)
	req, resp := pattern(3000, 1), pattern(2500, 2)
	f.handshake(0)
	f.c(0, req[:1000], 0, 1*ms)
	f.c(1000, req[1000:2000], 0, 2*ms)
	f.c(2000, req[2000:], decode.PSH, 3*ms)
	f.s(0, resp[:1400], 0, 4*ms)
	f.s(1400, resp[1400:], decode.PSH, 5*ms)
	r := h.only()
	wantBytes(t, "client", r.data[0], req)
	wantBytes(t, "server", r.data[1], resp)
	if r.id.A != cliAP || r.id.B != srvAP || r.id.VNI != 7 {
		t.Errorf("ConnID %+v, want A=%v B=%v VNI 7", r.id, cliAP, srvAP)
	}
	if len(r.events) != 0 {
		t.Errorf("events %q, want none", r.evs())
	}
	if got := h.stats.ConnsOpened.Load(); got != 1 {
		t.Errorf("ConnsOpened %d", got)
	}
	if got := h.stats.OpenConns.Load(); got != 1 {
		t.Errorf("OpenConns %d", got)
	}
	if got := h.stats.Packets.Load(); got != 8 {
		t.Errorf("Packets %d, want 8", got)
	}
	if got := h.stats.PayloadBytes.Load(); got != 5500 {
		t.Errorf("PayloadBytes %d, want 5500", got)
	}
	if h.stats.OutOfOrder.Load()+h.stats.Duplicates.Load()+h.stats.Gaps.Load() != 0 {
		t.Errorf("unexpected out-of-order/duplicate/gap counts")
	}
}

func TestMidStreamStart(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(0xdeadbeef, 77)
	resp, req := pattern(2000, 3), pattern(900, 4)
	// The server's segment is the first one seen: it becomes direction 0.
	// It acknowledges the client's bytes up to where the client's next
	// segment starts.
	f.sAck(123456, resp[:1000], 5000, 0)
	f.c(5000, req, 0, 1*ms)
	f.s(123456+1000, resp[1000:], 0, 2*ms)
	// Bytes before the first seen segment are old: ignored as duplicates.
	f.s(123456-500, pattern(500, 9), 0, 3*ms)
	r := h.only()
	if r.id.A != srvAP {
		t.Errorf("direction 0 is %v, want the first sender %v", r.id.A, srvAP)
	}
	wantBytes(t, "dir 0", r.data[0], resp)
	wantBytes(t, "dir 1", r.data[1], req)
	if len(r.events) != 0 {
		t.Errorf("events %q", r.evs())
	}
	if got := h.stats.Duplicates.Load(); got != 1 {
		t.Errorf("Duplicates %d, want 1", got)
	}
}

func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			out = append(out, q)
		}
	}
	return out
}

func TestReorderedPermutations(t *testing.T) {
	perms := permutations(4)
	if len(perms) != 24 {
		t.Fatalf("%d permutations", len(perms))
	}
	sizes := []int{700, 1, 1400, 333}
	var offs []int
	total := 0
	for _, s := range sizes {
		offs = append(offs, total)
		total += s
	}
	stream := pattern(total, 5)
	for _, perm := range perms {
		t.Run(fmt.Sprint(perm), func(t *testing.T) {
			h := newHarness(t, Config{})
			f := h.conn(math.MaxUint32-1000, 1) // crosses the wrap as well
			f.handshake(0)
			for i, k := range perm {
				f.c(offs[k], stream[offs[k]:offs[k]+sizes[k]], 0, time.Duration(i+1)*ms)
			}
			r := h.only()
			wantBytes(t, "client", r.data[0], stream)
			if len(r.events) != 0 {
				t.Errorf("events %q", r.evs())
			}
			if h.stats.BufferedBytes.Load() != 0 || h.w.buffered != 0 {
				t.Errorf("still buffered: %d", h.stats.BufferedBytes.Load())
			}
			inOrder := perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && perm[3] == 3
			if ooo := h.stats.OutOfOrder.Load(); inOrder != (ooo == 0) {
				t.Errorf("OutOfOrder %d for %v", ooo, perm)
			}
			if h.stats.Gaps.Load() != 0 {
				t.Errorf("Gaps %d", h.stats.Gaps.Load())
			}
		})
	}
}

func TestDuplicatesAndOverlaps(t *testing.T) {
	type sg struct{ from, to int }
	cases := []struct {
		name string
		segs []sg
		end  int
		dups uint64
	}{
		{"exact duplicate", []sg{{0, 100}, {0, 100}, {100, 200}}, 200, 1},
		{"partial overlap", []sg{{0, 100}, {50, 150}, {150, 200}}, 200, 0},
		{"retransmission covers several", []sg{{0, 100}, {100, 200}, {0, 250}, {250, 300}}, 300, 0},
		{"old retransmission", []sg{{0, 100}, {100, 200}, {20, 80}}, 200, 1},
		{"duplicate of buffered segment", []sg{{0, 100}, {200, 300}, {200, 300}, {100, 200}}, 300, 1},
		{"overlapping buffered segments", []sg{{0, 100}, {150, 250}, {120, 200}, {240, 300}, {100, 130}}, 300, 0},
		{"buffered segment inside another", []sg{{0, 10}, {50, 60}, {20, 100}, {10, 20}}, 100, 1},
		{"one byte at a time backwards", []sg{{0, 1}, {5, 6}, {4, 5}, {3, 4}, {2, 3}, {1, 2}}, 6, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stream := pattern(tc.end, 6)
			h := newHarness(t, Config{})
			f := h.conn(4000, 9000)
			f.handshake(0)
			for i, s := range tc.segs {
				f.c(s.from, stream[s.from:s.to], 0, time.Duration(i+1)*ms)
			}
			r := h.only()
			wantBytes(t, "client", r.data[0], stream)
			if len(r.events) != 0 {
				t.Errorf("events %q", r.evs())
			}
			if got := h.stats.Duplicates.Load(); got != tc.dups {
				t.Errorf("Duplicates %d, want %d", got, tc.dups)
			}
			if h.w.buffered != 0 {
				t.Errorf("buffered %d", h.w.buffered)
			}
		})
	}
}

func TestLostSegmentByLaterPacket(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 500 * ms})
	f := h.conn(10, 20)
	st := pattern(400, 7)
	f.handshake(0)
	f.c(0, st[:100], 0, 0)
	// [100, 200) is lost.
	f.c(200, st[200:300], 0, 10*ms)
	f.c(300, st[300:350], 0, 400*ms) // still within the window
	r := h.only()
	if r.gapCount(0) != 0 || len(r.data[0]) != 100 {
		t.Fatalf("before the window passed: %d bytes, events %q", len(r.data[0]), r.evs())
	}
	f.c(350, st[350:], 0, 511*ms)
	if want := []int{100}; fmt.Sprint(r.gaps[0]) != fmt.Sprint(want) {
		t.Fatalf("gaps %v, want %v (events %q)", r.gaps[0], want, r.evs())
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{100, 200}))
	wantBytes(t, "data", r.data[0], append(append([]byte{}, st[:100]...), st[200:]...))
	if h.stats.Gaps.Load() != 1 || h.stats.GapBytes.Load() != 100 {
		t.Errorf("Gaps %d GapBytes %d", h.stats.Gaps.Load(), h.stats.GapBytes.Load())
	}
	if h.w.buffered != 0 {
		t.Errorf("buffered %d", h.w.buffered)
	}
	// The stream goes on normally.
	more := pattern(50, 8)
	f.c(400, more, 0, 520*ms)
	wantBytes(t, "after", r.data[0][len(r.data[0])-50:], more)
}

func TestLostSegmentByAdvance(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 500 * ms, SweepInterval: 100 * ms})
	f := h.conn(10, 20)
	st := pattern(3000, 7)
	f.handshake(0)
	f.c(0, st[:1000], 0, 0)
	f.c(2000, st[2000:2500], 0, 10*ms)
	f.c(1500, st[1500:1800], 0, 20*ms) // a second hole: [1000,1500) and [1800,2000)
	f.s(0, []byte("x"), 0, 30*ms)      // other direction: does not declare client holes
	h.advance(300 * ms)
	r := h.only()
	if r.gapCount(0) != 0 {
		t.Fatalf("gap declared before the reorder window: %q", r.evs())
	}
	h.advance(600 * ms)
	if want := "[500 200]"; fmt.Sprint(r.gaps[0]) != want {
		t.Fatalf("gaps %v, want %s", r.gaps[0], want)
	}
	wantBytes(t, "view", r.view[0], zeroed(st[:2500], [2]int{1000, 1500}, [2]int{1800, 2000}))
	if h.stats.GapBytes.Load() != 700 || h.stats.Gaps.Load() != 2 {
		t.Errorf("Gaps %d GapBytes %d", h.stats.Gaps.Load(), h.stats.GapBytes.Load())
	}
	if h.stats.BufferedBytes.Load() != 0 {
		t.Errorf("BufferedBytes %d", h.stats.BufferedBytes.Load())
	}
	if r.expires == 0 {
		t.Errorf("Expire not called by the sweep")
	}
	f.c(2500, st[2500:], 0, 700*ms)
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{1000, 1500}, [2]int{1800, 2000}))
}

func TestTruncatedSegment(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(10, 20)
	st := pattern(500, 7)
	f.handshake(0)
	p := mkPkt(f.vni, f.cli, f.srv, f.cisn+1, decode.ACK, st[:60])
	p.Missing = 40 // the IP header announced 100 bytes
	h.send(p, 1*ms)
	f.c(100, st[100:200], 0, 2*ms)
	// Out of order and truncated: buffered with its missing tail.
	p = mkPkt(f.vni, f.cli, f.srv, f.cisn+1+300, decode.ACK, st[300:350])
	p.Missing = 50
	h.send(p, 3*ms)
	f.c(400, st[400:], 0, 4*ms)
	f.c(200, st[200:300], 0, 5*ms)
	r := h.only()
	if want := "[40 50]"; fmt.Sprint(r.gaps[0]) != want {
		t.Fatalf("gaps %v, want %s", r.gaps[0], want)
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{60, 100}, [2]int{350, 400}))
	if h.stats.TruncatedSegs.Load() != 2 || h.stats.GapBytes.Load() != 90 {
		t.Errorf("TruncatedSegs %d GapBytes %d", h.stats.TruncatedSegs.Load(), h.stats.GapBytes.Load())
	}
	// A retransmission of the truncated segment in full overlaps only
	// bytes already accounted for.
	f.c(0, st[:100], 0, 6*ms)
	if len(r.view[0]) != 500 {
		t.Errorf("view grew to %d after a retransmission", len(r.view[0]))
	}
}

func TestPerConnectionCap(t *testing.T) {
	const capBytes = 16 << 10
	h := newHarness(t, Config{MaxConnBufferBytes: capBytes, ReorderWindow: time.Second})
	f := h.conn(10, 20)
	const seg, n = 1000, 60
	st := pattern(seg*n, 11)
	f.handshake(0)
	// Segment 0 is lost; the rest arrive well within the window.
	for i := 1; i < n; i++ {
		f.c(i*seg, st[i*seg:(i+1)*seg], 0, time.Duration(i)*ms)
	}
	r := h.only()
	if h.stats.BufferOverflows.Load() == 0 {
		t.Fatalf("no buffer overflow counted")
	}
	if want := "[1000]"; fmt.Sprint(r.gaps[0]) != want {
		t.Fatalf("gaps %v, want %s: the hole must be declared early, not after the window", r.gaps[0], want)
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{0, seg}))
	if h.w.buffered != 0 {
		t.Errorf("still buffered %d", h.w.buffered)
	}
}

func TestPerConnectionCapTinySegments(t *testing.T) {
	// One-byte segments must not pin a large buffer each: the cap bounds
	// memory, not only payload bytes.
	const capBytes = 16 << 10
	h := newHarness(t, Config{MaxConnBufferBytes: capBytes, ReorderWindow: time.Second})
	f := h.conn(10, 20)
	st := pattern(400, 12)
	f.handshake(0)
	for i := 1; i < len(st); i++ { // byte 0 is lost
		f.c(i, st[i:i+1], 0, time.Duration(i)*time.Microsecond)
	}
	h.advance(2 * time.Second)
	r := h.only()
	if h.stats.BufferOverflows.Load() == 0 {
		t.Errorf("no overflow while buffering %d one-byte segments", len(st)-1)
	}
	if len(r.view[0]) != len(st) {
		t.Fatalf("view %d bytes, want %d (gaps %v)", len(r.view[0]), len(st), r.gaps[0])
	}
	for i := 1; i < len(st); i++ {
		if r.view[0][i] != 0 && r.view[0][i] != st[i] {
			t.Fatalf("byte %d wrong", i)
		}
	}
}

func TestSegmentLargerThanConnCap(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 1000, MaxBufferBytes: 1 << 20, ReorderWindow: 100 * ms, SweepInterval: 10 * ms})
	f := h.conn(10, 20)
	st := pattern(4000, 13)
	f.handshake(0)
	f.c(0, st[:100], 0, 0)
	// Cannot be buffered: the hole before it is given up at once rather
	// than the segment in hand.
	f.c(1000, st[1000:3000], 0, 1*ms)
	r := h.only()
	if fmt.Sprint(r.gaps[0]) != "[900]" {
		t.Fatalf("gaps %v, want [900]", r.gaps[0])
	}
	f.c(3000, st[3000:3100], 0, 2*ms)
	f.c(3200, st[3200:], 0, 3*ms) // nor can this one, smaller than the cap
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{100, 1000}, [2]int{3100, 3200}))
	if h.stats.BufferOverflows.Load() == 0 {
		t.Errorf("BufferOverflows not counted")
	}
}

func TestTotalCap(t *testing.T) {
	const total, perConn = 32 << 10, 16 << 10
	h := newHarness(t, Config{MaxConnBufferBytes: perConn, MaxBufferBytes: total, ReorderWindow: time.Second, SweepInterval: 10 * time.Second})
	const nconn, seg, nseg = 6, 1000, 8
	var fs []*tcp
	var streams [][]byte
	for i := 0; i < nconn; i++ {
		f := h.conn(uint32(i)*100000, 7)
		f.cli = netip.AddrPortFrom(cliAP.Addr(), uint16(41000+i))
		fs = append(fs, f)
		streams = append(streams, pattern(seg*nseg, 20+i))
		f.handshake(0)
	}
	// Segment 0 of every connection is lost; the others interleave.
	for k := 1; k < nseg; k++ {
		for i, f := range fs {
			f.c(k*seg, streams[i][k*seg:(k+1)*seg], 0, time.Duration(k)*ms)
		}
	}
	if h.stats.BufferOverflows.Load() == 0 {
		t.Fatalf("no overflow: %d bytes held, total cap %d", h.w.buffered, total)
	}
	early := 0
	for _, r := range h.recs {
		early += r.gapCount(0)
	}
	if early == 0 {
		t.Fatalf("the total cap declared no hole")
	}
	h.advance(11 * time.Second) // the sweep: remaining holes are stale
	if len(h.recs) != nconn {
		t.Fatalf("%d handlers", len(h.recs))
	}
	for i, r := range h.recs {
		if fmt.Sprint(r.gaps[0]) != "[1000]" {
			t.Errorf("conn %d: gaps %v", i, r.gaps[0])
		}
		wantBytes(t, fmt.Sprint("conn ", i), r.view[0], zeroed(streams[i], [2]int{0, seg}))
	}
	if h.w.buffered != 0 || h.stats.BufferedBytes.Load() != 0 {
		t.Errorf("buffered %d / %d", h.w.buffered, h.stats.BufferedBytes.Load())
	}
}

// When the total cap is reached, another connection's holes are given up
// to make room: the newcomer's hole still gets its chance to fill.
func TestTotalCapEvictsOtherConnection(t *testing.T) {
	const total = 16 << 10
	h := newHarness(t, Config{MaxConnBufferBytes: total, MaxBufferBytes: total, ReorderWindow: time.Second})
	a, b := h.conn(100, 200), h.conn(300, 400)
	b.cli = netip.AddrPortFrom(cliAP.Addr(), 41999)
	sa, sb := pattern(9000, 1), pattern(300, 2)
	a.handshake(0)
	b.handshake(0)
	for k := 1; k < 9; k++ { // A: hole [0,1000), then 8 buffered segments fill the total cap
		a.c(k*1000, sa[k*1000:(k+1)*1000], 0, time.Duration(k)*ms)
	}
	if h.stats.BufferOverflows.Load() != 0 || len(h.recs[0].gaps[0]) != 0 {
		t.Fatalf("overflow before the cap was reached")
	}
	b.c(100, sb[100:], 0, 10*ms) // B: hole [0,100); no room left
	ra, rb := h.recs[0], h.recs[1]
	if fmt.Sprint(ra.gaps[0]) != "[1000]" {
		t.Fatalf("A: gaps %v, want [1000] (evicted)", ra.gaps[0])
	}
	wantBytes(t, "A", ra.view[0], zeroed(sa, [2]int{0, 1000}))
	b.c(0, sb[:100], 0, 11*ms) // B's hole fills in time
	if len(rb.gaps[0]) != 0 {
		t.Fatalf("B: gaps %v: its hole was given up instead of A's", rb.gaps[0])
	}
	wantBytes(t, "B", rb.data[0], sb)
}

func TestFINBothWays(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	req, resp := pattern(300, 1), pattern(500, 2)
	f.handshake(0)
	f.c(0, req, decode.PSH, 1*ms)
	f.s(0, resp, decode.PSH, 2*ms)
	f.c(300, nil, decode.FIN, 3*ms)
	r := h.only()
	if r.ends[0] != 1 || r.closes != 0 {
		t.Fatalf("after client FIN: %q", r.evs())
	}
	f.s(500, []byte("bye"), decode.FIN, 4*ms) // FIN with data
	if r.evs() != "end0 end1 close" {
		t.Fatalf("events %q, want end0 end1 close", r.evs())
	}
	wantBytes(t, "server", r.data[1], append(resp, "bye"...))
	if r.endAt[1] != 503 || r.endAt[0] != 300 {
		t.Errorf("End after %v bytes", r.endAt)
	}
	if h.stats.OpenConns.Load() != 0 || len(h.w.conns) != 0 {
		t.Errorf("connection not forgotten: OpenConns %d", h.stats.OpenConns.Load())
	}
	if h.stats.ConnsClosedFIN.Load() != 1 {
		t.Errorf("ConnsClosedFIN %d", h.stats.ConnsClosedFIN.Load())
	}
	// Nothing is left to close.
	h.w.closeAll()
	if r.closes != 1 || r.callsClosed != 0 {
		t.Errorf("closes %d, calls after close %d", r.closes, r.callsClosed)
	}
}

func TestFINRetransmitted(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, []byte("GET"), 0, 1*ms)
	f.c(3, nil, decode.FIN, 2*ms)
	f.c(3, nil, decode.FIN, 3*ms)
	f.c(0, []byte("GET"), decode.FIN, 4*ms)
	r := h.only()
	if r.ends[0] != 1 || r.dataAfter[0] != 0 {
		t.Errorf("events %q, data after End %d", r.evs(), r.dataAfter[0])
	}
}

// The ACK that answers the last FIN must not open a new connection that
// then sits in the table until it expires.
func TestLastACKAfterCloseOpensNothing(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, []byte("hello"), 0, 1*ms)
	f.c(5, nil, decode.FIN, 2*ms)
	f.s(0, nil, decode.FIN, 3*ms)
	f.c(6, nil, 0, 4*ms) // final ACK
	if h.stats.OpenConns.Load() != 0 || len(h.w.conns) != 0 {
		t.Errorf("the last ACK opened a connection: OpenConns %d", h.stats.OpenConns.Load())
	}
	if got := h.stats.ConnsOpened.Load(); got != 1 {
		t.Errorf("ConnsOpened %d, want 1", got)
	}
	if len(h.recs) != 1 {
		t.Errorf("%d handlers created", len(h.recs))
	}
}

func TestFINBeforeLastData(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	st := pattern(300, 3)
	f.handshake(0)
	f.c(0, st[:100], 0, 1*ms)
	f.c(300, nil, decode.FIN, 2*ms) // FIN overtakes the last two segments
	f.c(200, st[200:], 0, 3*ms)
	r := h.only()
	if r.ends[0] != 0 {
		t.Fatalf("End before the data: %q", r.evs())
	}
	f.c(100, st[100:200], 0, 4*ms)
	if r.ends[0] != 1 || r.endAt[0] != 300 {
		t.Fatalf("events %q, End after %d bytes", r.evs(), r.endAt[0])
	}
	wantBytes(t, "client", r.data[0], st)
	if r.gapCount(0) != 0 {
		t.Errorf("gaps %v", r.gaps[0])
	}
}

// A FIN whose data segment ahead was lost: the hole is declared after the
// reorder window and End follows, closing the connection normally.
func TestFINAfterLostData(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * ms, SweepInterval: 50 * ms})
	f := h.conn(100, 200)
	st := pattern(300, 3)
	f.handshake(0)
	f.s(0, nil, decode.FIN, 0) // the server is done
	f.c(0, st[:100], 0, 1*ms)
	f.c(300, nil, decode.FIN, 2*ms) // [100, 300) never arrives
	r := h.only()
	if r.ends[0] != 0 {
		t.Fatalf("End before the hole was declared: %q", r.evs())
	}
	h.advance(300 * ms)
	if r.evs() != "end1 gap0:200 end0 close" {
		t.Fatalf("events %q, want end1 gap0:200 end0 close", r.evs())
	}
	if h.stats.ConnsClosedFIN.Load() != 1 || h.stats.OpenConns.Load() != 0 {
		t.Errorf("ConnsClosedFIN %d OpenConns %d", h.stats.ConnsClosedFIN.Load(), h.stats.OpenConns.Load())
	}
}

// Same with a buffered segment after the hole, the hole declared by a
// later packet: End must follow at once, not at expiry.
func TestFINAfterHoleDeclaredByPacket(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * ms})
	f := h.conn(100, 200)
	st := pattern(300, 3)
	f.handshake(0)
	f.c(0, st[:100], 0, 1*ms)
	f.c(200, st[200:], decode.FIN, 2*ms) // [100,200) lost
	f.s(0, nil, decode.FIN, 3*ms)
	f.c(301, nil, 0, 200*ms) // the client's last ACK, after the window
	r := h.only()
	if r.evs() != "end1 gap0:100 end0 close" {
		t.Fatalf("events %q, want end1 gap0:100 end0 close", r.evs())
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{100, 200}))
	if h.stats.ConnsClosedFIN.Load() != 1 || h.stats.ConnsExpired.Load() != 0 {
		t.Errorf("ConnsClosedFIN %d ConnsExpired %d", h.stats.ConnsClosedFIN.Load(), h.stats.ConnsExpired.Load())
	}
}

// Closing a connection whose FIN came after a hole reports the hole before End.
func TestCloseReportsHoleBeforeFIN(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, pattern(100, 1), 0, 1*ms)
	f.c(150, nil, decode.FIN, 2*ms)
	h.w.closeAll()
	r := h.only()
	if r.evs() != "gap0:50 end0 close" {
		t.Fatalf("events %q, want gap0:50 end0 close", r.evs())
	}
	if h.stats.ConnsFlushed.Load() != 1 || h.stats.OpenConns.Load() != 0 {
		t.Errorf("ConnsFlushed %d OpenConns %d", h.stats.ConnsFlushed.Load(), h.stats.OpenConns.Load())
	}
}

func TestRST(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	st := pattern(300, 3)
	f.handshake(0)
	f.c(0, st[:100], 0, 1*ms)
	f.c(200, st[200:], 0, 2*ms) // buffered behind a hole
	f.s(0, nil, decode.RST, 3*ms)
	r := h.only()
	if r.evs() != "gap0:100 close" {
		t.Fatalf("events %q, want gap0:100 close", r.evs())
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{100, 200}))
	if h.stats.ConnsClosedRST.Load() != 1 || h.stats.OpenConns.Load() != 0 || h.w.buffered != 0 {
		t.Errorf("ConnsClosedRST %d OpenConns %d buffered %d", h.stats.ConnsClosedRST.Load(), h.stats.OpenConns.Load(), h.w.buffered)
	}
	// A RST of an unknown connection opens nothing.
	f.c(300, nil, decode.RST, 4*ms)
	if len(h.recs) != 1 || h.stats.OpenConns.Load() != 0 {
		t.Errorf("RST opened a connection")
	}
}

func TestIdleExpiry(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Minute, SweepInterval: time.Second})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, []byte("GET / HTTP/1.1\r\n"), 0, 1*ms)
	g := h.conn(5000, 6000)
	g.cli = netip.AddrPortFrom(cliAP.Addr(), 50000)
	g.handshake(30 * time.Second)
	g.c(0, []byte("G"), 0, 30*time.Second) // a handshake alone makes no handler
	h.advance(60 * time.Second)            // idle for 59.999s
	if h.recs[0].closes != 0 {
		t.Fatalf("closed before the idle timeout")
	}
	h.advance(61*time.Second + 2*ms)
	if h.recs[0].closes != 1 || h.recs[1].closes != 0 {
		t.Fatalf("closes %d %d", h.recs[0].closes, h.recs[1].closes)
	}
	if h.stats.ConnsExpired.Load() != 1 || h.stats.OpenConns.Load() != 1 {
		t.Errorf("ConnsExpired %d OpenConns %d", h.stats.ConnsExpired.Load(), h.stats.OpenConns.Load())
	}
	// A packet after a long silence: the sweep expires the other
	// connection, the packet opens a fresh one.
	f.c(16, []byte("Host: x\r\n"), 0, 200*time.Second)
	if h.recs[1].closes != 1 || len(h.recs) != 3 || h.stats.OpenConns.Load() != 1 {
		t.Errorf("after silence: %d handlers, OpenConns %d", len(h.recs), h.stats.OpenConns.Load())
	}
	wantBytes(t, "new", h.recs[2].data[0], []byte("Host: x\r\n"))
}

func TestMaxConns(t *testing.T) {
	h := newHarness(t, Config{MaxConns: 2})
	var fs []*tcp
	for i := 0; i < 3; i++ {
		f := h.conn(100, 200)
		f.cli = netip.AddrPortFrom(cliAP.Addr(), uint16(42000+i))
		fs = append(fs, f)
		f.handshake(time.Duration(i) * ms)
		f.c(0, []byte("abc"), 0, time.Duration(i)*ms)
	}
	if len(h.recs) != 2 || h.stats.OpenConns.Load() != 2 {
		t.Fatalf("%d handlers, OpenConns %d", len(h.recs), h.stats.OpenConns.Load())
	}
	if got := h.stats.ConnTableFull.Load(); got != 3 {
		t.Errorf("ConnTableFull %d, want 3 (SYN, SYN-ACK and data of the third connection; a bare ACK opens nothing)", got)
	}
	// Known connections still work.
	fs[0].c(3, []byte("def"), 0, 5*ms)
	wantBytes(t, "first", h.recs[0].data[0], []byte("abcdef"))
	// Once one closes, a new one fits.
	fs[1].c(3, nil, decode.RST, 6*ms)
	fs[2].c(3, []byte("xyz"), 0, 7*ms)
	if len(h.recs) != 3 {
		t.Fatalf("no room after a close")
	}
	wantBytes(t, "third", h.recs[2].data[0], []byte("xyz"))
}

func TestTupleReuse(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	f.handshake(0)
	// A retransmitted SYN is not a new connection.
	h.send(mkPkt(f.vni, f.cli, f.srv, f.cisn, decode.SYN, nil), 1*ms)
	f.c(0, []byte("old request"), 0, 2*ms)
	f.s(0, []byte("old response"), 0, 3*ms)
	// The client reuses the 4-tuple with another ISN; the old FINs were never seen.
	g := h.conn(777777, 888888)
	g.handshake(10 * ms)
	g.c(0, []byte("new request"), 0, 11*ms)
	if len(h.recs) != 2 {
		t.Fatalf("%d handlers, want 2", len(h.recs))
	}
	old, cur := h.recs[0], h.recs[1]
	if old.closes != 1 || cur.closes != 0 {
		t.Errorf("closes old %d new %d", old.closes, cur.closes)
	}
	wantBytes(t, "old", old.data[0], []byte("old request"))
	wantBytes(t, "new", cur.data[0], []byte("new request"))
	if cur.id.A != cliAP {
		t.Errorf("new connection's A %v", cur.id.A)
	}
	if h.stats.ConnsReused.Load() != 1 || h.stats.ConnsOpened.Load() != 2 || h.stats.OpenConns.Load() != 1 {
		t.Errorf("ConnsReused %d ConnsOpened %d OpenConns %d", h.stats.ConnsReused.Load(), h.stats.ConnsOpened.Load(), h.stats.OpenConns.Load())
	}
	if old.callsClosed != 0 {
		t.Errorf("old handler used after Close")
	}
}

func TestSequenceWrap(t *testing.T) {
	for _, isn := range []uint32{math.MaxUint32 - 2000, math.MaxUint32, math.MaxUint32 - 1, math.MaxUint32 - 1400} {
		t.Run(fmt.Sprint(isn), func(t *testing.T) {
			h := newHarness(t, Config{ReorderWindow: 100 * ms})
			f := h.conn(isn, isn-5)
			st := pattern(6000, 9)
			f.handshake(0)
			f.c(0, st[:1000], 0, 1*ms)
			f.c(2000, st[2000:3000], 0, 2*ms)
			f.c(1000, st[1000:2000], 0, 3*ms)
			f.c(4000, st[4000:5000], 0, 4*ms) // [3000,4000) lost
			f.c(5000, st[5000:], decode.FIN, 200*ms)
			f.sAck(0, st[:3000], 6000, 201*ms) // sent once the client's data was in
			r := h.only()
			wantBytes(t, "client", r.view[0], zeroed(st, [2]int{3000, 4000}))
			wantBytes(t, "server", r.data[1], st[:3000])
			if fmt.Sprint(r.gaps[0]) != "[1000]" || r.ends[0] != 1 {
				t.Errorf("events %q", r.evs())
			}
		})
	}
}

func TestSkippingHandler(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * ms})
	h.skipAfter = 5
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, []byte("\x16\x03\x01\x02\x00"), 0, 1*ms) // a TLS ClientHello starts
	f.c(5, []byte("0123456789"), 0, 2*ms)
	f.s(0, []byte("server bytes"), 0, 3*ms)
	f.c(100, []byte("after a hole"), 0, 4*ms)
	f.c(112, nil, decode.FIN, 300*ms)
	f.s(12, nil, decode.FIN, 301*ms)
	r := h.only()
	wantBytes(t, "client", r.data[0], []byte("\x16\x03\x01\x02\x00"))
	if len(r.data[1]) != 0 {
		t.Errorf("server data delivered to a skipping handler")
	}
	if r.evs() != "close" {
		t.Errorf("events %q, want only close", r.evs())
	}
	if got := h.stats.SkippedBytes.Load(); got != 10+12+12 {
		t.Errorf("SkippedBytes %d, want 34", got)
	}
	if h.stats.ConnsClosedFIN.Load() != 1 {
		t.Errorf("ConnsClosedFIN %d", h.stats.ConnsClosedFIN.Load())
	}
	if r.expires != 0 {
		t.Errorf("Expire called %d times on a skipping handler", r.expires)
	}
}

func TestHugeForwardJump(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, []byte("before"), 0, 1*ms)
	f.c(7, []byte("buffered"), 0, 2*ms) // one byte lost before it
	const jump = 10 << 20
	f.c(jump, []byte("after"), 0, 3*ms)
	f.c(jump+5, []byte("more"), 0, 4*ms)
	r := h.only()
	if r.evs() != "gap0:1 gap0:-1" {
		t.Fatalf("events %q, want gap0:1 gap0:-1", r.evs())
	}
	wantBytes(t, "client", r.data[0], []byte("beforebufferedaftermore"))
	if h.stats.Gaps.Load() != 2 || h.stats.GapBytes.Load() != 1 {
		t.Errorf("Gaps %d GapBytes %d", h.stats.Gaps.Load(), h.stats.GapBytes.Load())
	}
	if h.w.buffered != 0 {
		t.Errorf("buffered %d", h.w.buffered)
	}
}

// Flushing the holes before a far segment can carry the stream past that
// segment's start: the overlap is trimmed, not delivered twice.
func TestFarJumpAfterFlushOverlaps(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 4096, ReorderWindow: time.Second})
	f := h.conn(100, 200)
	st := pattern(18000, 4)
	f.handshake(0)
	f.c(16000, st[16000:17000], 0, 1*ms) // 16000 ahead: buffered
	f.c(16385, st[16385:18000], 0, 2*ms) // more than 4 × 4096 ahead
	r := h.only()
	if r.evs() != "gap0:16000" {
		t.Fatalf("events %q, want gap0:16000", r.evs())
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{0, 16000}))
}

// A segment too large to buffer, whose hole making room already declared.
func TestUnbufferableAfterOwnHolesFlushed(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 4096, ReorderWindow: time.Second})
	f := h.conn(100, 200)
	st := pattern(4000, 5)
	f.handshake(0)
	f.c(100, st[100:200], 0, 1*ms)
	f.c(200, st[200:1500], 0, 2*ms)
	f.c(150, st[150:4000], 0, 3*ms) // needs a 9 KiB buffer: never fits
	r := h.only()
	if r.evs() != "gap0:100" {
		t.Fatalf("events %q, want gap0:100", r.evs())
	}
	wantBytes(t, "view", r.view[0], zeroed(st, [2]int{0, 100}))
}

func TestVNIIsPartOfKey(t *testing.T) {
	h := newHarness(t, Config{})
	a, b := h.conn(100, 200), h.conn(100, 200)
	a.vni, b.vni = 1, 2
	a.handshake(0)
	b.handshake(0)
	a.c(0, []byte("one"), 0, 1*ms)
	b.c(0, []byte("two"), 0, 2*ms)
	b.s(0, []byte("TWO"), 0, 3*ms)
	a.s(0, []byte("ONE"), 0, 4*ms)
	if len(h.recs) != 2 || h.stats.OpenConns.Load() != 2 {
		t.Fatalf("%d handlers, want 2", len(h.recs))
	}
	for _, r := range h.recs {
		want := map[uint32]string{1: "oneONE", 2: "twoTWO"}[r.id.VNI]
		if got := string(r.data[0]) + string(r.data[1]); got != want {
			t.Errorf("VNI %d: %q, want %q", r.id.VNI, got, want)
		}
	}
	// RST on one VNI leaves the other alone.
	a.c(3, nil, decode.RST, 5*ms)
	if h.recs[0].closes != 1 || h.recs[1].closes != 0 {
		t.Errorf("closes %d %d", h.recs[0].closes, h.recs[1].closes)
	}
}

func TestIPv6AndDirectionByAddress(t *testing.T) {
	// Same port on both sides: the address tells the directions apart.
	h := newHarness(t, Config{})
	x := netip.MustParseAddrPort("[2001:db8::1]:443")
	y := netip.MustParseAddrPort("[2001:db8::2]:443")
	fromY := mkPkt(3, y, x, 10, decode.ACK, []byte("from y"))
	fromY.Ack = 90 // x's next byte, as y has seen it
	h.send(fromY, 0)
	h.send(mkPkt(3, x, y, 90, decode.ACK, []byte("from x")), 1*ms)
	r := h.only()
	if r.id.A != y || string(r.data[0]) != "from y" || string(r.data[1]) != "from x" {
		t.Errorf("A %v, data %q / %q", r.id.A, r.data[0], r.data[1])
	}
}

func TestBufferedBytesReturnToZeroOnClose(t *testing.T) {
	h := newHarness(t, Config{})
	for i := 0; i < 5; i++ {
		f := h.conn(100, 200)
		f.cli = netip.AddrPortFrom(cliAP.Addr(), uint16(43000+i))
		f.handshake(0)
		f.c(10, pattern(500, i), 0, 1*ms)
		f.sAck(10, pattern(500, i), 510, 1*ms) // an answer to all of it
	}
	if h.w.buffered == 0 {
		t.Fatalf("nothing buffered")
	}
	h.w.closeAll()
	if h.w.buffered != 0 || h.stats.BufferedBytes.Load() != 0 || h.stats.OpenConns.Load() != 0 {
		t.Errorf("after closeAll: buffered %d/%d OpenConns %d", h.w.buffered, h.stats.BufferedBytes.Load(), h.stats.OpenConns.Load())
	}
	if h.stats.ConnsFlushed.Load() != 5 {
		t.Errorf("ConnsFlushed %d", h.stats.ConnsFlushed.Load())
	}
	for i, r := range h.recs {
		if r.evs() != "gap0:10 gap1:10 close" {
			t.Errorf("conn %d: %q", i, r.evs())
		}
	}
}

// TestRandomImpairments sends one direction's segments lost, duplicated,
// retransmitted with overlaps, truncated and reordered, and checks that the
// handler sees every byte at its offset exactly once, lost bytes as gaps.
func TestRandomImpairments(t *testing.T) {
	for name, cfg := range map[string]Config{
		"defaults":     {},
		"tight caps":   {MaxConnBufferBytes: 8 << 10, MaxBufferBytes: 1 << 20},
		"short window": {ReorderWindow: 2 * ms, SweepInterval: ms},
	} {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 77))
				type sg struct {
					from, to, missing int
				}
				var plan []sg
				off := 0
				for len(plan) < 300 {
					n := 1 + rng.IntN(1400)
					s := sg{from: off, to: off + n}
					off += n
					switch r := rng.IntN(100); {
					case r < 5: // lost
						continue
					case r < 10: // truncated by the capture
						s.missing = rng.IntN(n)
						s.to -= s.missing
					case r < 15: // duplicated
						plan = append(plan, s)
					case r < 20: // retransmission overlapping the one before
						if s.from > 500 {
							plan = append(plan, sg{from: s.from - 500, to: s.to})
						}
					}
					plan = append(plan, s)
				}
				stream := pattern(off, int(seed))
				for i := range plan {
					j := i + rng.IntN(min(6, len(plan)-i))
					plan[i], plan[j] = plan[j], plan[i]
				}
				h := newHarness(t, cfg)
				f := h.conn(rng.Uint32(), 1)
				f.handshake(0)
				at := time.Duration(0)
				for _, s := range plan {
					at += 100 * time.Microsecond
					p := mkPkt(f.vni, f.cli, f.srv, f.cisn+1+uint32(s.from), decode.ACK, stream[s.from:s.to])
					p.Missing = s.missing
					h.send(p, at)
				}
				f.c(off, nil, decode.FIN, at)
				h.w.closeAll()
				h.check()
				r := h.only()
				if len(r.view[0]) != off {
					t.Fatalf("view %d bytes, stream %d (gaps %v)", len(r.view[0]), off, r.gaps[0])
				}
				for i, b := range r.view[0] {
					if b != 0 && b != stream[i] {
						t.Fatalf("byte %d wrong", i)
					}
				}
				for _, n := range r.gaps[0] {
					if n <= 0 {
						t.Fatalf("gap of %d bytes", n)
					}
				}
				if r.ends[0] != 1 || r.endAt[0] != off || r.closes != 1 {
					t.Fatalf("End at %d, closes %d", r.endAt[0], r.closes)
				}
				if h.w.buffered != 0 || h.stats.BufferedBytes.Load() != 0 {
					t.Fatalf("buffered %d", h.w.buffered)
				}
			})
		}
	}
}

// A SYN retransmitted late (a mirror duplicate arriving after data) is not
// a new connection and must not rewind the stream.
func TestLateDuplicateSYN(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(1000, 5000)
	req := pattern(3000, 3)
	f.handshake(0)
	f.c(0, req[:1500], 0, 1*ms)
	h.send(mkPkt(7, cliAP, srvAP, 1000, decode.SYN, nil), 2*ms)
	f.c(1500, req[1500:], 0, 3*ms)
	r := h.only()
	wantBytes(t, "client", r.data[0], req)
	if h.stats.ConnsReused.Load() != 0 || len(r.events) != 0 {
		t.Errorf("late SYN: reused %d, events %q", h.stats.ConnsReused.Load(), r.evs())
	}
}

// The mirror may deliver a response before the request it answers (the two
// directions travel as different UDP flows). The response acknowledges the
// request's bytes, so it waits until the request has been handed over.
func TestResponseBeforeItsRequest(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 900)
	req1, resp1, req2, resp2 := pattern(300, 1), pattern(700, 2), pattern(200, 3), pattern(400, 4)
	f.handshake(0)
	f.c(0, req1, 0, 1*ms)
	f.sAck(0, resp1, 300, 2*ms)
	// resp2 overtakes req2.
	f.sAck(700, resp2, 500, 3*ms)
	f.c(300, req2, 0, 4*ms)
	r := h.only()
	wantBytes(t, "client", r.data[0], append(append([]byte{}, req1...), req2...))
	wantBytes(t, "server", r.data[1], append(append([]byte{}, resp1...), resp2...))
	if h.stats.Held.Load() != 1 || h.stats.HeldTimeouts.Load() != 0 {
		t.Errorf("Held %d HeldTimeouts %d, want 1 and 0", h.stats.Held.Load(), h.stats.HeldTimeouts.Load())
	}
	// The handler saw req2 before resp2: check the interleaving.
	if got := r.order; len(got) < 4 || got[2] != "c" || got[3] != "s" {
		t.Errorf("hand-over order %q, want c s c s", got)
	}
	if h.stats.BufferedBytes.Load() != 0 {
		t.Errorf("BufferedBytes %d after release", h.stats.BufferedBytes.Load())
	}
}

// When the acknowledged bytes never come (lost by the mirror), the waiting
// content goes after the reorder window: late rather than never.
func TestHeldContentReleasedAfterWindow(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * time.Millisecond})
	f := h.conn(100, 900)
	f.handshake(0)
	f.sAck(0, pattern(50, 1), 300, 1*ms) // acknowledges a request we never see
	r := h.only()
	if len(r.data[1]) != 0 {
		t.Fatal("content handed over before the window passed")
	}
	h.advance(1500 * ms)
	if len(r.data[1]) != 50 || h.stats.HeldTimeouts.Load() != 1 {
		t.Errorf("after the window: %d bytes, HeldTimeouts %d", len(r.data[1]), h.stats.HeldTimeouts.Load())
	}
}

// With two sockets the server's SYN-ACK and response can overtake the
// client's SYN and request: the SYN-ACK names the client's first byte, so
// the response still waits for the request.
func TestSYNACKStartsTheLateSide(t *testing.T) {
	h := newHarness(t, Config{})
	f := h.conn(100, 900)
	req, resp := pattern(300, 1), pattern(700, 2)
	synack := mkPkt(f.vni, f.srv, f.cli, f.sisn, decode.SYN|decode.ACK, nil)
	synack.Ack = f.cisn + 1
	h.send(synack, 0)
	f.sAck(0, resp, 300, 1*ms)
	h.send(mkPkt(f.vni, f.cli, f.srv, f.cisn, decode.SYN, nil), 2*ms)
	f.c(0, req, 0, 3*ms)
	r := h.only()
	// Direction 0 is the server here (it was seen first).
	wantBytes(t, "client", r.data[1], req)
	wantBytes(t, "server", r.data[0], resp)
	if len(r.order) != 2 || r.order[0] != "s" {
		t.Errorf("hand-over order %q (c = direction 0 = server here), want the request (s) first", r.order)
	}
}

// A large table is swept in parts, so one sweep never stalls the worker;
// every connection is still reached within a few intervals.
func TestSweepInParts(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Second, SweepInterval: 100 * time.Millisecond})
	const n = 3 * sweepMin
	for i := 0; i < n; i++ {
		src := netip.AddrPortFrom(cliAP.Addr(), uint16(1+i%60000))
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 16), byte(i >> 8)}), 80)
		p := mkPkt(1, src, dst, 1, decode.SYN, nil)
		h.w.packet(&p, t0)
	}
	if len(h.w.conns) != n {
		t.Fatalf("%d connections", len(h.w.conns))
	}
	h.w.advance(t0.Add(2 * time.Second))
	if got := h.stats.ConnsExpired.Load(); got != sweepMin {
		t.Errorf("one sweep expired %d connections, want %d", got, sweepMin)
	}
	for i := 1; i <= 3; i++ {
		h.w.advance(t0.Add(2*time.Second + time.Duration(i)*100*time.Millisecond))
	}
	if len(h.w.conns) != 0 || len(h.w.list) != 0 || h.stats.ConnsExpired.Load() != n {
		t.Errorf("after four sweeps: %d connections left, %d expired", len(h.w.conns), h.stats.ConnsExpired.Load())
	}
}

// TestStart: Start comes before the first bytes of a direction whose first
// byte is known to be the stream's (its SYN, or the SYN-ACK naming it, was
// seen), and never for a direction joined mid-stream.
func TestStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		send func(f *tcp)
		want string
	}{
		{"handshake seen", func(f *tcp) {
			f.handshake(0)
			f.c(0, []byte("GET"), 0, 1*ms)
			f.s(0, []byte("HTTP"), 0, 2*ms)
		}, "c0 s0"},
		{"mid-stream", func(f *tcp) {
			f.c(0, []byte("GET"), 0, 1*ms)
			f.s(0, []byte("HTTP"), 0, 2*ms)
		}, ""},
		{"SYN lost, SYN-ACK names the client's first byte", func(f *tcp) {
			p := mkPkt(f.vni, f.srv, f.cli, f.sisn, decode.SYN|decode.ACK, nil)
			p.Ack = f.cisn + 1
			f.h.send(p, 0)
			f.c(0, []byte("GET"), 0, 1*ms)
			f.s(0, []byte("HTTP"), 0, 2*ms)
		}, "s0 c0"}, // the server sent the first segment seen: it is direction 0
		{"client SYN only, server joined mid-stream", func(f *tcp) {
			f.h.send(mkPkt(f.vni, f.cli, f.srv, f.cisn, decode.SYN, nil), 0)
			f.c(0, []byte("GET"), 0, 1*ms)
			f.s(7, []byte("HTTP"), 0, 2*ms)
		}, "c0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			f := h.conn(1000, 5000)
			tc.send(f)
			r := h.only()
			if got := fmt.Sprint(r.starts); got != "["+tc.want+"]" {
				t.Errorf("starts %s, want [%s]", got, tc.want)
			}
		})
	}
}

// TestContentBeforeALossGoesAsLost: content whose ACK does not cover bytes
// the other direction lost, reaching the handler after that loss, was sent
// before them (a request whose response was lost): it is given as lost
// too, so that the parser never queues it after the loss. Content that
// acknowledges the lost bytes goes as data.
func TestContentBeforeALossGoesAsLost(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * ms})
	f := h.conn(100, 200)
	f.handshake(0)
	f.c(0, pattern(200, 1), 0, 1*ms)           // a request, acknowledging nothing of the server
	f.sAck(1000, pattern(500, 2), 200, 10*ms)  // the server's [0,1000) is lost
	f.sAck(1500, pattern(100, 3), 200, 200*ms) // later: the hole is given up
	f.c(200, pattern(200, 4), 0, 250*ms)       // sent before the lost bytes came
	p := mkPkt(f.vni, f.cli, f.srv, f.cisn+1+400, decode.ACK, pattern(50, 5))
	p.Ack = f.sisn + 1 + 1600 // sent after all of them
	h.send(p, 260*ms)
	r := h.only()
	if got := r.evs(); !strings.Contains(got, "gap1:1000 gap0:200") {
		t.Errorf("events %q: want the server's loss, then the client's content before it as lost", got)
	}
	wantBytes(t, "client after the loss", r.data[0][len(r.data[0])-50:], pattern(50, 5))
	if n := h.stats.LateAcrossGap.Load(); n != 1 {
		t.Errorf("LateAcrossGap = %d, want 1", n)
	}
}

// Held content that turns out to have been sent before the other
// direction's loss goes to the handler as lost, and its buffer is given
// back like any other.
func TestHeldContentBeforeALossFreesItsBuffer(t *testing.T) {
	h := newHarness(t, Config{ReorderWindow: 100 * ms})
	f := h.conn(100, 200)
	f.handshake(0)
	f.sAck(1000, pattern(500, 2), 0, 10*ms) // the server's [0,1000) is lost
	p := mkPkt(f.vni, f.cli, f.srv, f.cisn+1, decode.ACK, pattern(200, 1))
	p.Ack = f.sisn + 1 + 500 // acknowledges part of the lost bytes: waits for them
	h.send(p, 20*ms)
	if h.w.buffered == 0 {
		t.Fatal("the client's content is not held")
	}
	f.sAck(1500, pattern(100, 3), 0, 200*ms) // later: the hole is given up
	h.w.closeAll()
	r := h.only()
	if got := r.evs(); !strings.Contains(got, "gap1:1000 gap0:200") {
		t.Errorf("events %q: want the server's loss, then the held client content as lost", got)
	}
	if h.w.buffered != 0 || h.stats.BufferedBytes.Load() != 0 {
		t.Errorf("buffered %d / %d after close: a held buffer was not given back", h.w.buffered, h.stats.BufferedBytes.Load())
	}
}
