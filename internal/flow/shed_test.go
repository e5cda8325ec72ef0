package flow

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/http1"
)

// shedHarness is a worker whose connections are parsed by the real HTTP
// parser; it keeps "method target -> status echo" per exchange.
type shedHarness struct {
	*harness
	pairs []string
}

func newShedHarness(t *testing.T, cfg Config) *shedHarness {
	sh := &shedHarness{harness: &harness{t: t, cfg: cfg}}
	sh.cfg.setDefaults()
	sh.w = newWorker(&sh.cfg, &sh.stats, func(id ConnID) Handler {
		return http1.NewConn(&http1.Config{EmitPending: true}, nil, func(ex *http1.Exchange) {
			// The exchange is valid only during the callback: keep a copy.
			s := ex.Request.Method + " " + ex.Request.Target + " ->"
			if r := ex.Response; r != nil {
				s += fmt.Sprintf(" %d", r.StatusCode)
				for _, h := range r.Headers {
					if h.Name == "X-Echo" {
						s += " " + h.Value
					}
				}
			} else {
				s += " pending"
			}
			sh.pairs = append(sh.pairs, s)
		})
	}, 1)
	return sh
}

func (sh *shedHarness) client(port uint16) *tcp {
	f := sh.conn(uint32(port)*1000, uint32(port)*7000)
	f.cli = netip.AddrPortFrom(cliAP.Addr(), port)
	return f
}

// goodExchange sends a whole request and its response on f at t.
func goodExchange(f *tcp, id int, t time.Duration) {
	req := []byte(fmt.Sprintf("GET /good?id=%d HTTP/1.1\r\nHost: a\r\n\r\n", id))
	resp := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Echo: %d\r\nContent-Length: 2\r\n\r\nok", id))
	f.handshake(t)
	f.c(0, req, 0, t)
	f.sAck(0, resp, len(req), t)
}

// A full table sheds whole connections: a new one is refused while every
// tracked one is recent, and takes the place of the least recently seen
// once that one has been idle for EvictIdle; each is counted by reason,
// and what is paired is paired right.
func TestFullTableShedsWholeConnections(t *testing.T) {
	sh := newShedHarness(t, Config{MaxConns: 4, EvictIdle: 10 * time.Second, IdleTimeout: time.Hour})
	for i := range 4 {
		f := sh.client(uint16(40000 + i))
		f.handshake(time.Duration(i) * time.Second)
		// A request head without its final empty line, then nothing.
		f.c(0, []byte(fmt.Sprintf("GET /slow/%d HTTP/1.1\r\nHost: a\r\n", i)), 0, time.Duration(i)*time.Second)
	}
	if n := sh.stats.OpenConns.Load(); n != 4 {
		t.Fatalf("%d connections tracked, want 4", n)
	}
	// 5s: the oldest has been idle 5s, less than EvictIdle: refused.
	goodExchange(sh.client(41000), 1, 5*time.Second)
	if sh.stats.ConnTableFull.Load() == 0 || sh.stats.ConnsEvictedIdle.Load() != 0 || len(sh.pairs) != 0 {
		t.Fatalf("refusal: table full %d, evicted %d, pairs %q", sh.stats.ConnTableFull.Load(), sh.stats.ConnsEvictedIdle.Load(), sh.pairs)
	}
	// 20s: the least recently seen (the first, idle 20s) makes room.
	goodExchange(sh.client(41001), 2, 20*time.Second)
	if got := sh.stats.ConnsEvictedIdle.Load(); got != 1 {
		t.Fatalf("evicted %d connections, want 1", got)
	}
	if got := fmt.Sprint(sh.pairs); got != "[GET /good?id=2 -> 200 2]" {
		t.Fatalf("pairs %s", got)
	}
	if sh.stats.OpenConns.Load() != 4 {
		t.Errorf("%d connections tracked, want 4", sh.stats.OpenConns.Load())
	}
	// The evicted connection is gone whole: its later bytes open a new
	// connection that starts mid-stream and makes no pair of them.
	sh.client(40000).c(27, []byte("\r\n"), 0, 21*time.Second)
	if len(sh.pairs) != 1 {
		t.Errorf("pairs after the evicted connection came back: %q", sh.pairs)
	}
}

// Over the heap limit, new connections are shed the same way, counted
// under the memory reasons. The live heap of a running test is far over
// one byte: a real limit, met for real.
func TestHeapLimitShedsWholeConnections(t *testing.T) {
	sh := newShedHarness(t, Config{EvictIdle: 10 * time.Second, IdleTimeout: time.Hour})
	goodExchange(sh.client(40000), 1, 0)
	sh.cfg.MaxHeapLive = 1
	goodExchange(sh.client(40001), 2, time.Second)
	if sh.stats.ConnsRefusedMemory.Load() == 0 || sh.stats.OpenConns.Load() != 1 {
		t.Fatalf("refused %d, open %d", sh.stats.ConnsRefusedMemory.Load(), sh.stats.OpenConns.Load())
	}
	goodExchange(sh.client(40002), 3, 30*time.Second)
	if sh.stats.ConnsEvictedMemory.Load() != 1 || sh.stats.OpenConns.Load() != 1 {
		t.Fatalf("evicted %d, open %d", sh.stats.ConnsEvictedMemory.Load(), sh.stats.OpenConns.Load())
	}
	if got := fmt.Sprint(sh.pairs); got != "[GET /good?id=1 -> 200 1 GET /good?id=3 -> 200 3]" {
		t.Errorf("pairs %s", got)
	}
}
