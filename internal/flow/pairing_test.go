package flow

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
	"github.com/apitap/apitap/internal/http1"
)

// These tests run the reassembler with the real HTTP parser, because what
// matters to users is the pairs: the mirror delivering a response before
// its request must never shift a connection's later pairs.

type exchange struct {
	req, resp []byte
	path      string
}

func keepAlive(n int, bodySize func(i int) int) []exchange {
	var xs []exchange
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/r%d", i)
		body := strings.Repeat(string(rune('a'+i%26)), bodySize(i))
		xs = append(xs, exchange{
			path: path,
			req:  []byte("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n"),
			resp: []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Path: %s\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)),
		})
	}
	return xs
}

type pairRun struct {
	w     *worker
	stats Stats
	hs    http1.Stats
	pairs []string // "path -> X-Path of the response" or "path -> pending"
	at    time.Duration
}

func newPairRun(cfg Config) *pairRun {
	pr := &pairRun{}
	cfg.setDefaults()
	pr.w = newWorker(&cfg, &pr.stats, func(id ConnID) Handler {
		return http1.NewConn(&http1.Config{EmitPending: true}, &pr.hs, func(ex *http1.Exchange) {
			got := "pending"
			if ex.Response != nil {
				got = "?"
				for _, h := range ex.Response.Headers {
					if h.Name == "X-Path" {
						got = h.Value
					}
				}
			}
			pr.pairs = append(pr.pairs, ex.Request.Target+" -> "+got)
		})
	}, 1)
	return pr
}

func (pr *pairRun) pkt(fromCli bool, seq, ack uint32, flags uint8, data []byte, gap time.Duration) {
	p := mkPkt(7, cliAP, srvAP, seq, flags|decode.ACK, data)
	if !fromCli {
		p = mkPkt(7, srvAP, cliAP, seq, flags|decode.ACK, data)
	}
	if flags&decode.SYN != 0 && fromCli {
		p.Flags = decode.SYN
	}
	p.Ack = ack
	pr.at += gap
	pr.w.packet(&p, t0.Add(pr.at))
}

// segs sends b in segments of at most 1400 bytes.
func (pr *pairRun) segs(fromCli bool, seq, ack uint32, b []byte) {
	for off := 0; off < len(b); off += 1400 {
		pr.pkt(fromCli, seq+uint32(off), ack, 0, b[off:min(off+1400, len(b))], 10*time.Microsecond)
	}
}

func TestResponseOvertakingItsRequestNeverShiftsPairs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		firstLen int           // body size of the first response
		late     time.Duration // how much later than its response the first request arrives
		midway   bool          // no handshake seen: the capture starts mid-connection
	}{
		{"mid-connection, within the window", Config{}, 100, 100 * time.Millisecond, true},
		{"within the window", Config{}, 100, 100 * time.Millisecond, false},
		{"beyond the window", Config{}, 100, 1500 * time.Millisecond, false},
		{"beyond the connection buffer", Config{}, 400 << 10, 0, false},
		{"beyond a small connection buffer and the window", Config{MaxConnBufferBytes: 8192}, 50 << 10, 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr := newPairRun(tc.cfg)
			xs := keepAlive(4, func(i int) int {
				if i == 0 {
					return tc.firstLen
				}
				return 10 + i
			})
			const cisn, sisn = 1000, 5000
			if !tc.midway {
				pr.pkt(true, cisn, 0, decode.SYN, nil, 0)
				pr.pkt(false, sisn, cisn+1, decode.SYN, nil, time.Millisecond)
			}
			c, s := uint32(cisn+1), uint32(sisn+1)
			// The first response arrives before its request.
			pr.segs(false, s, c+uint32(len(xs[0].req)), xs[0].resp)
			pr.at += tc.late
			pr.w.advance(t0.Add(pr.at))
			pr.pkt(true, c, s, 0, xs[0].req, time.Millisecond)
			c += uint32(len(xs[0].req))
			s += uint32(len(xs[0].resp))
			for _, x := range xs[1:] {
				pr.segs(true, c, s, x.req)
				c += uint32(len(x.req))
				pr.segs(false, s, c, x.resp)
				s += uint32(len(x.resp))
			}
			pr.w.closeAll()
			var wrong []string
			answered := 0
			for _, p := range pr.pairs {
				req, resp, _ := strings.Cut(p, " -> ")
				if resp != "pending" && resp != req {
					wrong = append(wrong, p)
				}
				if resp == req {
					answered++
				}
			}
			if len(wrong) > 0 {
				t.Fatalf("mis-paired: %q (all: %q)", wrong, pr.pairs)
			}
			// The later exchanges, which the mirror delivered in order,
			// must all be there.
			for _, x := range xs[1:] {
				if !slices.Contains(pr.pairs, x.path+" -> "+x.path) {
					t.Errorf("%s missing: %q", x.path, pr.pairs)
				}
			}
			if !tc.midway && tc.late < 500*time.Millisecond && tc.firstLen < 200<<10 && answered != len(xs) {
				t.Errorf("a reordering within the window lost pairs: %q", pr.pairs)
			}
		})
	}
}

// Content held for the other direction, a hole in its own direction and
// a full connection buffer: the bytes must still come out in order.
func TestHeldAndOutOfOrderKeepOrder(t *testing.T) {
	h := newHarness(t, Config{MaxConnBufferBytes: 4096, ReorderWindow: time.Second})
	f := h.conn(100, 900)
	f.handshake(0)
	s1, s2, s3 := []byte(strings.Repeat("1", 100)), []byte(strings.Repeat("2", 100)), []byte(strings.Repeat("3", 100))
	f.sAck(0, s1, 50, 1*ms)   // waits for 50 client bytes
	f.sAck(200, s3, 50, 2*ms) // ahead of a hole
	f.sAck(100, s2, 50, 3*ms) // fills it, the buffer is full
	h.w.closeAll()
	r := h.only()
	want := strings.Repeat("1", 100) + strings.Repeat("2", 100) + strings.Repeat("3", 100)
	if string(r.data[1]) != want {
		t.Errorf("server bytes %q", r.data[1])
	}
	if r.gapCount(0) != 1 || r.gaps[0][0] != 50 {
		t.Errorf("client gaps %v: the 50 bytes waited for must be declared lost", r.gaps[0])
	}
}

// A request's first segment is lost; its body, its response and the next
// exchanges arrive. When the sweep gives up on the hole, the response of
// the lost request must not pair with the next request (seen in the
// impaired end-to-end run: the body and the next request were handed
// over together, ahead of the waiting response).
func TestLostRequestHeadNeverShiftsPairs(t *testing.T) {
	pr := newPairRun(Config{})
	const cisn, sisn = 1000, 5000
	pr.pkt(true, cisn, 0, decode.SYN, nil, 0)
	pr.pkt(false, sisn, cisn+1, decode.SYN, nil, time.Millisecond)
	c, s := uint32(cisn+1), uint32(sisn+1)
	head := []byte("POST /r0 HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n")
	body := []byte("01234567890123456789")
	resp0 := []byte("HTTP/1.1 200 OK\r\nX-Path: /r0\r\nContent-Length: 2\r\n\r\nok")
	// The head is lost; the body arrives.
	pr.pkt(true, c+uint32(len(head)), s, 0, body, time.Millisecond)
	c += uint32(len(head) + len(body))
	pr.pkt(false, s, c, 0, resp0, time.Millisecond)
	s += uint32(len(resp0))
	xs := keepAlive(4, func(i int) int { return 5 + i })[1:]
	for _, x := range xs {
		pr.segs(true, c, s, x.req)
		c += uint32(len(x.req))
		pr.segs(false, s, c, x.resp)
		s += uint32(len(x.resp))
	}
	// Time passes: sweeps give up on the hole.
	for i := 1; i <= 3; i++ {
		pr.w.advance(t0.Add(pr.at + time.Duration(i)*time.Second))
	}
	pr.w.closeAll()
	for _, p := range pr.pairs {
		req, resp, _ := strings.Cut(p, " -> ")
		if resp != "pending" && resp != req {
			t.Fatalf("mis-paired %q (all: %q)", p, pr.pairs)
		}
	}
	if len(pr.pairs) < len(xs) {
		t.Errorf("pairs %q: the exchanges after the loss must come through", pr.pairs)
	}
}
