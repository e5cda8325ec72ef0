package flow

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// recorder is a Handler that keeps everything it is told.
type recorder struct {
	id ConnID
	// data holds the bytes of each direction as delivered.
	data [2][]byte
	// view holds the same with every lost byte (Gap n > 0) as a zero, so
	// that view[i] is the i-th byte of the direction's stream.
	view        [2][]byte
	gaps        [2][]int
	ends        [2]int
	endAt       [2]int // len(view[dir]) when End was called
	closes      int
	expires     int
	events      []string // gaps, ends and close, in order
	skipAfter   int      // Skipping reports true once this many bytes came (0: never)
	total       int
	callsClosed int // calls after Close
	dataAfter   [2]int
	order       []string // "c" or "s" per Data call: direction 0 or 1
	starts      []string // "c0" per Start call: direction and bytes of it delivered before
}

func (r *recorder) Start(dir int) {
	r.starts = append(r.starts, fmt.Sprintf("%c%d", "cs"[dir], len(r.view[dir])))
}

func (r *recorder) Data(dir int, b []byte, ts time.Time) {
	if r.closes > 0 {
		r.callsClosed++
	}
	if r.ends[dir] > 0 {
		r.dataAfter[dir] += len(b)
	}
	if len(b) == 0 {
		r.events = append(r.events, fmt.Sprintf("empty%d", dir))
	}
	r.data[dir] = append(r.data[dir], b...)
	r.order = append(r.order, [2]string{"c", "s"}[dir])
	r.view[dir] = append(r.view[dir], b...)
	r.total += len(b)
}

func (r *recorder) Gap(dir, n int, ts time.Time) {
	if r.closes > 0 {
		r.callsClosed++
	}
	r.gaps[dir] = append(r.gaps[dir], n)
	r.events = append(r.events, fmt.Sprintf("gap%d:%d", dir, n))
	if n > 0 {
		r.view[dir] = append(r.view[dir], make([]byte, n)...)
	}
}

func (r *recorder) End(dir int, ts time.Time) {
	if r.closes > 0 {
		r.callsClosed++
	}
	r.ends[dir]++
	r.endAt[dir] = len(r.view[dir])
	r.events = append(r.events, fmt.Sprintf("end%d", dir))
}

func (r *recorder) Close(ts time.Time) {
	if r.closes > 0 {
		r.callsClosed++
	}
	r.closes++
	r.events = append(r.events, "close")
}

func (r *recorder) Expire(now time.Time) { r.expires++ }

func (r *recorder) Skipping() bool { return r.skipAfter > 0 && r.total >= r.skipAfter }

func (r *recorder) gapCount(dir int) int { return len(r.gaps[dir]) }

func (r *recorder) evs() string { return strings.Join(r.events, " ") }

// pattern returns n recognisable non-zero bytes; salt tells streams apart.
func pattern(n int, salt int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+salt*13+i/26)%26)
	}
	return b
}

var (
	cliAP = netip.MustParseAddrPort("10.1.0.1:40001")
	srvAP = netip.MustParseAddrPort("10.2.0.9:8080")
	t0    = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

func mkPkt(vni uint32, src, dst netip.AddrPort, seq uint32, flags uint8, payload []byte) decode.Packet {
	return decode.Packet{
		VNI: vni, Src: src.Addr(), Dst: dst.Addr(), SrcPort: src.Port(), DstPort: dst.Port(),
		Seq: seq, Ack: 1, Flags: flags, Payload: payload,
	}
}

// harness drives one worker directly, the way an Engine's goroutine does.
type harness struct {
	t         testing.TB
	cfg       Config
	stats     Stats
	w         *worker
	recs      []*recorder
	skipAfter int
}

func newHarness(t testing.TB, cfg Config) *harness {
	h := &harness{t: t, cfg: cfg}
	h.cfg.setDefaults()
	h.w = newWorker(&h.cfg, &h.stats, func(id ConnID) Handler {
		r := &recorder{id: id, skipAfter: h.skipAfter}
		h.recs = append(h.recs, r)
		return r
	}, 1)
	return h
}

func (h *harness) send(p decode.Packet, at time.Duration) {
	h.w.packet(&p, t0.Add(at))
	h.check()
}

// check asserts the invariants that hold after every packet.
func (h *harness) check() {
	h.t.Helper()
	var sum int64
	for _, c := range h.w.conns {
		n := c.bufferedBytes()
		if n > h.cfg.MaxConnBufferBytes {
			h.t.Fatalf("connection %v buffers %d bytes, cap %d", c.id(), n, h.cfg.MaxConnBufferBytes)
		}
		if m := memHeld(c); m > h.cfg.MaxConnBufferBytes {
			h.t.Fatalf("connection %v holds %d bytes of buffers, cap %d", c.id(), m, h.cfg.MaxConnBufferBytes)
		}
		sum += int64(memHeld(c))
		for dir := range c.dirs {
			d := &c.dirs[dir]
			for i, s := range d.ooo {
				if seqDiff(s.seq, d.next) <= 0 {
					h.t.Fatalf("dir %d: buffered segment %d at %d not after next %d", dir, i, s.seq, d.next)
				}
				if i > 0 && seqDiff(s.seq, d.ooo[i-1].seq) < 0 {
					h.t.Fatalf("dir %d: out-of-order list not sorted", dir)
				}
			}
		}
	}
	if got := h.stats.BufferedBytes.Load(); got != h.w.buffered {
		h.t.Fatalf("Stats.BufferedBytes %d, worker.buffered %d", got, h.w.buffered)
	}
	if h.w.buffered > h.w.maxBuf {
		h.t.Fatalf("worker buffers %d bytes, cap %d", h.w.buffered, h.w.maxBuf)
	}
	if sum > h.w.maxBuf {
		h.t.Fatalf("worker holds %d bytes of buffers, cap %d", sum, h.w.maxBuf)
	}
	if got, want := h.stats.OpenConns.Load(), int64(len(h.w.conns)); got != want {
		h.t.Fatalf("Stats.OpenConns %d, tracked %d", got, want)
	}
	if len(h.w.conns) > h.w.maxConns {
		h.t.Fatalf("%d connections tracked, max %d", len(h.w.conns), h.w.maxConns)
	}
}

// memHeld is the memory the connection's out-of-order segments pin.
func memHeld(c *conn) int {
	n := 0
	for i := range c.dirs {
		for _, s := range c.dirs[i].ooo {
			n += cap(s.data)
		}
	}
	return n
}

func (h *harness) advance(at time.Duration) {
	h.w.advance(t0.Add(at))
	h.check()
}

func (h *harness) only() *recorder {
	h.t.Helper()
	if len(h.recs) != 1 {
		h.t.Fatalf("%d handlers created, want 1", len(h.recs))
	}
	return h.recs[0]
}

// tcp is one connection between cliAP and srvAP on a VNI.
type tcp struct {
	h          *harness
	vni        uint32
	cli, srv   netip.AddrPort
	cisn, sisn uint32
}

func (h *harness) conn(cisn, sisn uint32) *tcp {
	return &tcp{h: h, vni: 7, cli: cliAP, srv: srvAP, cisn: cisn, sisn: sisn}
}

// c sends client bytes at stream offset off (0 = first data byte). It
// acknowledges only the other side's SYN, so it never waits for it.
func (f *tcp) c(off int, data []byte, flags uint8, at time.Duration) {
	p := mkPkt(f.vni, f.cli, f.srv, f.cisn+1+uint32(off), flags|decode.ACK, data)
	p.Ack = f.sisn + 1
	f.h.send(p, at)
}

func (f *tcp) s(off int, data []byte, flags uint8, at time.Duration) {
	p := mkPkt(f.vni, f.srv, f.cli, f.sisn+1+uint32(off), flags|decode.ACK, data)
	p.Ack = f.cisn + 1
	f.h.send(p, at)
}

// sAck sends server bytes acknowledging client bytes up to offset ackOff.
func (f *tcp) sAck(off int, data []byte, ackOff int, at time.Duration) {
	p := mkPkt(f.vni, f.srv, f.cli, f.sisn+1+uint32(off), decode.ACK, data)
	p.Ack = f.cisn + 1 + uint32(ackOff)
	f.h.send(p, at)
}

func (f *tcp) handshake(at time.Duration) {
	f.h.send(mkPkt(f.vni, f.cli, f.srv, f.cisn, decode.SYN, nil), at)
	f.h.send(mkPkt(f.vni, f.srv, f.cli, f.sisn, decode.SYN|decode.ACK, nil), at)
	f.h.send(mkPkt(f.vni, f.cli, f.srv, f.cisn+1, decode.ACK, nil), at)
}

func wantBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at %d", what, len(got), len(want), i)
	}
}

// zeroed returns b with [from, to) set to zero: what a view shows for lost bytes.
func zeroed(b []byte, ranges ...[2]int) []byte {
	z := bytes.Clone(b)
	for _, r := range ranges {
		clear(z[r[0]:r[1]])
	}
	return z
}
