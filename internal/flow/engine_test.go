package flow

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// registry hands out recorders from the worker goroutines.
type registry struct {
	mu   sync.Mutex
	byID map[ConnID][]*recorder
}

func newRegistry() *registry { return &registry{byID: make(map[ConnID][]*recorder)} }

func (g *registry) newHandler(id ConnID) Handler {
	r := &recorder{id: id}
	g.mu.Lock()
	g.byID[id] = append(g.byID[id], r)
	g.mu.Unlock()
	return r
}

type scripted struct {
	vni      uint32
	cli, srv netip.AddrPort
	req      []byte
	resp     []byte
	pkts     []decode.Packet
	fin      bool
}

// buildConn makes the packets of one connection: handshake, then both
// directions' segments, shuffled within a window of four, then FINs.
func buildConn(rng *rand.Rand, i int, fin bool) *scripted {
	s := &scripted{
		vni: uint32(1 + i%3),
		cli: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(30000+i)),
		srv: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, 0, byte(i % 5)}), 80),
		fin: fin,
	}
	cisn, sisn := rng.Uint32(), rng.Uint32()
	s.pkts = append(s.pkts,
		mkPkt(s.vni, s.cli, s.srv, cisn, decode.SYN, nil),
		mkPkt(s.vni, s.srv, s.cli, sisn, decode.SYN|decode.ACK, nil),
		mkPkt(s.vni, s.cli, s.srv, cisn+1, decode.ACK, nil))
	var data []decode.Packet
	coff, soff := 0, 0
	for k := 0; k < 25; k++ {
		n := 1 + rng.IntN(1400)
		b := pattern(n, i*100+k)
		s.req = append(s.req, b...)
		// Each side acknowledges what it has received: the server answers
		// after the request, so the engine must hand the request over first
		// even when the shuffle puts the response ahead of it.
		cp := mkPkt(s.vni, s.cli, s.srv, cisn+1+uint32(coff), decode.ACK, b)
		cp.Ack = sisn + 1 + uint32(soff)
		data = append(data, cp)
		coff += n
		n = 1 + rng.IntN(1400)
		b = pattern(n, i*100+k+50)
		s.resp = append(s.resp, b...)
		sp := mkPkt(s.vni, s.srv, s.cli, sisn+1+uint32(soff), decode.ACK, b)
		sp.Ack = cisn + 1 + uint32(coff)
		data = append(data, sp)
		soff += n
	}
	if fin {
		cf := mkPkt(s.vni, s.cli, s.srv, cisn+1+uint32(coff), decode.FIN|decode.ACK, nil)
		cf.Ack = sisn + 1 + uint32(soff)
		sf := mkPkt(s.vni, s.srv, s.cli, sisn+1+uint32(soff), decode.FIN|decode.ACK, nil)
		sf.Ack = cisn + 2 + uint32(coff)
		data = append(data, cf, sf)
	}
	for j := range data {
		k := j + rng.IntN(min(4, len(data)-j))
		data[j], data[k] = data[k], data[j]
	}
	s.pkts = append(s.pkts, data...)
	return s
}

// interleave merges the connections' packet lists at random, keeping the
// order within each.
func interleave(rng *rand.Rand, conns []*scripted) []decode.Packet {
	pos := make([]int, len(conns))
	live := make([]int, len(conns))
	for i := range live {
		live[i] = i
	}
	var out []decode.Packet
	for len(live) > 0 {
		j := rng.IntN(len(live))
		c := conns[live[j]]
		out = append(out, c.pkts[pos[live[j]]])
		pos[live[j]]++
		if pos[live[j]] == len(c.pkts) {
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
		}
	}
	return out
}

func TestEngineManyConnections(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const nfin, nopen = 200, 20
	var stats Stats
	reg := newRegistry()
	e, err := New(Config{Workers: 4, Block: true}, &stats, reg.newHandler)
	if err != nil {
		t.Fatal(err)
	}
	var conns []*scripted
	for i := 0; i < nfin+nopen; i++ {
		conns = append(conns, buildConn(rng, i, i < nfin))
	}
	// Two readers, each with its own Input and half the connections.
	var wg sync.WaitGroup
	var total atomic.Uint64
	for half := 0; half < 2; half++ {
		var mine []*scripted
		for i := half; i < len(conns); i += 2 {
			mine = append(mine, conns[i])
		}
		pkts := interleave(rand.New(rand.NewPCG(uint64(half), 9)), mine)
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := e.NewInput()
			ts := t0
			buf := make([]byte, 2048)
			for i := range pkts {
				p := pkts[i]
				// Hand over a reused buffer, as a reader does.
				n := copy(buf, p.Payload)
				p.Payload = buf[:n]
				ts = ts.Add(10 * time.Microsecond)
				if !in.Add(&p, ts) {
					t.Errorf("Add dropped a packet with Block")
				}
				clear(buf)
			}
			in.Flush()
			total.Add(uint64(len(pkts)))
		}()
	}
	wg.Wait()
	e.Close()

	for i, c := range conns {
		id := ConnID{VNI: c.vni, A: c.cli, B: c.srv}
		rs := reg.byID[id]
		if len(rs) != 1 {
			t.Fatalf("conn %d: %d handlers", i, len(rs))
		}
		r := rs[0]
		wantBytes(t, "request", r.data[0], c.req)
		wantBytes(t, "response", r.data[1], c.resp)
		ev := r.evs()
		if c.fin && ev != "end0 end1 close" && ev != "end1 end0 close" || !c.fin && ev != "close" {
			t.Errorf("conn %d (fin %v): events %q", i, c.fin, ev)
		}
		if r.callsClosed != 0 {
			t.Errorf("conn %d: used after Close", i)
		}
	}
	if len(reg.byID) != nfin+nopen {
		t.Errorf("%d connections seen, want %d", len(reg.byID), nfin+nopen)
	}
	if got := stats.Packets.Load(); got != total.Load() {
		t.Errorf("Packets %d, want %d", got, total.Load())
	}
	if got := stats.ConnsOpened.Load(); got != nfin+nopen {
		t.Errorf("ConnsOpened %d", got)
	}
	if stats.ConnsClosedFIN.Load() != nfin || stats.ConnsFlushed.Load() != nopen {
		t.Errorf("ConnsClosedFIN %d ConnsFlushed %d", stats.ConnsClosedFIN.Load(), stats.ConnsFlushed.Load())
	}
	if stats.OpenConns.Load() != 0 || stats.BufferedBytes.Load() != 0 {
		t.Errorf("OpenConns %d BufferedBytes %d", stats.OpenConns.Load(), stats.BufferedBytes.Load())
	}
	if stats.Gaps.Load() != 0 || stats.QueueDrops.Load() != 0 {
		t.Errorf("Gaps %d QueueDrops %d", stats.Gaps.Load(), stats.QueueDrops.Load())
	}
	if stats.OutOfOrder.Load() == 0 {
		t.Errorf("the schedule reordered nothing")
	}
}

func TestShardSymmetry(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	sameVNI := 0
	for i := 0; i < 2000; i++ {
		var a4, b4 [4]byte
		var a16, b16 [16]byte
		for j := range a16 {
			a16[j], b16[j] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		copy(a4[:], a16[:4])
		copy(b4[:], b16[:4])
		a, b := netip.AddrFrom4(a4), netip.AddrFrom4(b4)
		if i%2 == 1 {
			a, b = netip.AddrFrom16(a16), netip.AddrFrom16(b16)
		}
		p := decode.Packet{VNI: rng.Uint32() & 0xffffff, Src: a, Dst: b, SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32())}
		q := decode.Packet{VNI: p.VNI, Src: b, Dst: a, SrcPort: p.DstPort, DstPort: p.SrcPort}
		if shard(&p) != shard(&q) {
			t.Fatalf("shard differs by direction for %+v", p)
		}
		if makeKey(&p) != makeKey(&q) {
			t.Fatalf("key differs by direction for %+v", p)
		}
		r := p
		r.VNI ^= 1
		if makeKey(&r) == makeKey(&p) {
			t.Fatalf("key ignores the VNI")
		}
		if shard(&r) == shard(&p) {
			sameVNI++
		}
	}
	if sameVNI > 10 {
		t.Errorf("the VNI changes the shard hash in only %d of 2000 cases", 2000-sameVNI)
	}
	// Connections spread over workers.
	var per [4]int
	for i := 0; i < 4000; i++ {
		p := mkPkt(1, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(1024+i)), srvAP, 0, 0, nil)
		per[shard(&p)%4]++
	}
	for w, n := range per {
		if n < 800 || n > 1200 {
			t.Errorf("worker %d gets %d of 4000 connections", w, n)
		}
	}
}

func TestEngineTickExpires(t *testing.T) {
	var stats Stats
	closed := make(chan ConnID, 4)
	e, err := New(Config{Workers: 2, IdleTimeout: time.Minute, Block: true}, &stats, func(id ConnID) Handler {
		return &closeNotifier{id: id, ch: closed}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := e.NewInput()
	p := mkPkt(1, cliAP, srvAP, 1, decode.ACK, []byte("x"))
	in.Add(&p, t0)
	in.Flush()
	deadline := time.After(10 * time.Second)
	for i := 0; ; i++ {
		// The tick channel holds one value and the batch may not be
		// processed yet: keep ticking until the connection expires.
		e.Tick(t0.Add(2 * time.Minute).Add(time.Duration(i) * time.Second))
		select {
		case id := <-closed:
			if id.A != cliAP {
				t.Errorf("closed %v", id)
			}
			if stats.ConnsExpired.Load() != 1 {
				t.Errorf("ConnsExpired %d", stats.ConnsExpired.Load())
			}
			return
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			t.Fatal("Tick did not expire the idle connection")
		}
	}
}

type closeNotifier struct {
	nopHandler
	id ConnID
	ch chan ConnID
}

func (c *closeNotifier) Close(time.Time) { c.ch <- c.id }

// gated blocks in Data until the gate opens.
type gated struct {
	nopHandler
	gate chan struct{}
}

func (g gated) Data(int, []byte, time.Time) { <-g.gate }

func TestEngineNonBlockingDrops(t *testing.T) {
	var stats Stats
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	defer open()
	e, err := New(Config{Workers: 4, Block: false}, &stats, func(ConnID) Handler { return gated{gate: gate} })
	if err != nil {
		t.Fatal(err)
	}
	const nconn, npkt = 64, 30000
	in := e.NewInput()
	payload := []byte("0123456789")
	done := make(chan int)
	start := time.Now()
	go func() {
		refused := 0
		for i := 0; i < npkt; i++ {
			c := i % nconn
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(c)}), uint16(20000+c))
			p := mkPkt(1, src, srvAP, uint32(i/nconn*len(payload)), decode.ACK, payload)
			if !in.Add(&p, t0.Add(time.Duration(i)*time.Microsecond)) {
				refused++
			}
		}
		done <- refused
	}()
	var refused int
	select {
	case refused = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Add blocked while the workers were stuck")
	}
	t.Logf("%d Adds in %v with every worker stuck, %d refused", npkt, time.Since(start), refused)
	if refused == 0 {
		t.Errorf("Add never reported a drop")
	}
	if stats.QueueDrops.Load() < uint64(refused) {
		t.Errorf("QueueDrops %d < refused %d", stats.QueueDrops.Load(), refused)
	}
	open()
	in.Flush()
	e.Close()
	if got := stats.Packets.Load() + stats.QueueDrops.Load(); got != npkt {
		t.Errorf("Packets %d + QueueDrops %d = %d, want %d", stats.Packets.Load(), stats.QueueDrops.Load(), got, npkt)
	}
	if stats.PayloadBytes.Load() != stats.Packets.Load()*uint64(len(payload)) {
		t.Errorf("PayloadBytes %d for %d packets", stats.PayloadBytes.Load(), stats.Packets.Load())
	}
}

// A payload that does not fit the rest of a batch's arena starts a new batch;
// the bytes handed to the handler are the packet's own, whatever the reader
// does with its buffer afterwards.
func TestInputCopiesPayload(t *testing.T) {
	var stats Stats
	reg := newRegistry()
	e, err := New(Config{Workers: 1, Block: true}, &stats, reg.newHandler)
	if err != nil {
		t.Fatal(err)
	}
	in := e.NewInput()
	buf := make([]byte, 9000)
	var want []byte
	seq := uint32(0)
	for i := 0; i < 200; i++ { // 200 × 9000 > several arenas
		b := pattern(len(buf), i)
		copy(buf, b)
		want = append(want, b...)
		p := mkPkt(1, cliAP, srvAP, seq, decode.ACK, buf)
		seq += uint32(len(buf))
		in.Add(&p, t0)
		clear(buf)
	}
	in.Flush()
	e.Close()
	rs := reg.byID[ConnID{VNI: 1, A: cliAP, B: srvAP}]
	if len(rs) != 1 {
		t.Fatalf("%d handlers", len(rs))
	}
	wantBytes(t, "stream", rs[0].data[0], want)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"zero value", Config{}, ""},
		{"explicit", Config{Workers: 8, MaxConns: 1000, MaxConnBufferBytes: 1 << 20, MaxBufferBytes: 1 << 20, ReorderWindow: time.Second, IdleTimeout: time.Hour}, ""},
		{"max workers", Config{Workers: 1024}, ""},
		{"negative workers", Config{Workers: -1}, "workers"},
		{"too many workers", Config{Workers: 1025}, "workers"},
		{"negative conn buffer", Config{MaxConnBufferBytes: -1}, "negative"},
		{"negative total buffer", Config{MaxBufferBytes: -1}, "negative"},
		{"negative max conns", Config{MaxConns: -1}, "negative"},
		{"conn buffer above total", Config{MaxConnBufferBytes: 2 << 20, MaxBufferBytes: 1 << 20}, "exceeds"},
		{"negative reorder window", Config{ReorderWindow: -time.Second}, "timeouts"},
		{"negative idle timeout", Config{IdleTimeout: -time.Second}, "timeouts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate: %v, want an error about %q", err, tc.err)
			}
			if e, err := New(tc.cfg, new(Stats), newRegistry().newHandler); err == nil || e != nil {
				t.Fatalf("New accepted %+v", tc.cfg)
			}
		})
	}
	// Several problems are all reported.
	err := (&Config{Workers: -1, ReorderWindow: -1}).Validate()
	if err == nil || !strings.Contains(err.Error(), "workers") || !strings.Contains(err.Error(), "timeouts") {
		t.Errorf("joined error %v", err)
	}
}
