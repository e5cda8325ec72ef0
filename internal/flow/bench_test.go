package flow

import (
	"net/netip"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

type nopHandler struct{}

func (nopHandler) Data(int, []byte, time.Time) {}
func (nopHandler) Gap(int, int, time.Time)     {}
func (nopHandler) End(int, time.Time)          {}
func (nopHandler) Close(time.Time)             {}
func (nopHandler) Expire(time.Time)            {}
func (nopHandler) Skipping() bool              { return false }

func newNopWorker(cfg Config) (*worker, *Stats) {
	cfg.setDefaults()
	st := new(Stats)
	return newWorker(&cfg, st, func(ConnID) Handler { return nopHandler{} }, 1), st
}

func BenchmarkWorkerInOrder(b *testing.B) {
	w, _ := newNopWorker(Config{})
	const isn = 1 << 30
	syn := mkPkt(1, cliAP, srvAP, isn, decode.SYN, nil)
	w.packet(&syn, t0)
	p := mkPkt(1, cliAP, srvAP, isn+1, decode.ACK, make([]byte, 1400))
	ts := t0
	b.ReportAllocs()
	b.SetBytes(1400)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts = ts.Add(10 * time.Microsecond)
		w.packet(&p, ts)
		p.Seq += 1400
	}
}

func BenchmarkEngine(b *testing.B) {
	const nconn = 1024
	var stats Stats
	e, err := New(Config{Workers: 2, Block: true}, &stats, func(ConnID) Handler { return nopHandler{} })
	if err != nil {
		b.Fatal(err)
	}
	pkts := make([]decode.Packet, nconn)
	payload := make([]byte, 1400)
	for i := range pkts {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(10000+i))
		pkts[i] = mkPkt(1, src, srvAP, uint32(i)<<20, decode.ACK, payload)
	}
	in := e.NewInput()
	ts := t0
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := &pkts[i%nconn]
		ts = ts.Add(time.Microsecond)
		in.Add(p, ts)
		p.Seq += uint32(len(payload))
	}
	in.Flush()
	e.Close()
	b.StopTimer()
	if got := stats.Packets.Load(); got != uint64(b.N) {
		b.Fatalf("Packets %d, want %d", got, b.N)
	}
	if stats.Gaps.Load() != 0 || stats.OutOfOrder.Load() != 0 {
		b.Fatalf("Gaps %d OutOfOrder %d", stats.Gaps.Load(), stats.OutOfOrder.Load())
	}
}

func TestAllocsInOrder(t *testing.T) {
	w, st := newNopWorker(Config{SweepInterval: 50 * time.Millisecond})
	// A few idle connections so that sweeps have something to look at.
	for i := 0; i < 8; i++ {
		q := mkPkt(1, netip.AddrPortFrom(cliAP.Addr(), uint16(50000+i)), srvAP, 9, decode.ACK, []byte("x"))
		w.packet(&q, t0)
	}
	const isn = 1 << 30
	syn := mkPkt(1, cliAP, srvAP, isn, decode.SYN, nil)
	w.packet(&syn, t0)
	p := mkPkt(1, cliAP, srvAP, isn+1, decode.ACK, make([]byte, 1400))
	ts := t0
	step := func() {
		ts = ts.Add(time.Millisecond) // a sweep every 50 packets
		w.packet(&p, ts)
		p.Seq += 1400
	}
	for i := 0; i < 100; i++ {
		step()
	}
	if a := testing.AllocsPerRun(1000, step); a != 0 {
		t.Errorf("in-order delivery allocates %v per packet", a)
	}
	if st.Gaps.Load() != 0 || st.ConnsExpired.Load() != 0 {
		t.Errorf("Gaps %d ConnsExpired %d", st.Gaps.Load(), st.ConnsExpired.Load())
	}
}

func TestAllocsOutOfOrder(t *testing.T) {
	for _, size := range []int{100, 1400, 8000} {
		w, st := newNopWorker(Config{})
		const isn = 1 << 30
		syn := mkPkt(1, cliAP, srvAP, isn, decode.SYN, nil)
		w.packet(&syn, t0)
		p := mkPkt(1, cliAP, srvAP, isn+1, decode.ACK, make([]byte, size))
		next := p.Seq
		ts := t0
		// Three segments after a hole are buffered, then the hole fills.
		step := func() {
			ts = ts.Add(time.Microsecond)
			for k := 3; k >= 0; k-- {
				p.Seq = next + uint32(k*size)
				w.packet(&p, ts)
			}
			next += uint32(4 * size)
		}
		for i := 0; i < 10; i++ {
			step()
		}
		if a := testing.AllocsPerRun(500, step); a != 0 {
			t.Errorf("%d-byte segments: out-of-order buffering allocates %v per round of 4 packets", size, a)
		}
		if st.OutOfOrder.Load() == 0 || st.Gaps.Load() != 0 || st.BufferedBytes.Load() != 0 {
			t.Errorf("%d-byte segments: OutOfOrder %d Gaps %d BufferedBytes %d", size, st.OutOfOrder.Load(), st.Gaps.Load(), st.BufferedBytes.Load())
		}
	}
}
