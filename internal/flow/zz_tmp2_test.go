package flow

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/decode"
	"github.com/apitap/apitap/internal/http1"
)

type httpH struct {
	*http1.Conn
	pairs *[]string
}

// A large response whose request is delayed in the mirror (another socket's
// partial batch) past the per-connection buffer: what pairs come out?
func TestTmpLargeResponseOvertakesRequest(t *testing.T) {
	var pairs []string
	cfg := Config{}
	cfg.setDefaults()
	var stats Stats
	hs := &http1.Stats{}
	w := newWorker(&cfg, &stats, func(id ConnID) Handler {
		return http1.NewConn(&http1.Config{EmitPending: true}, hs, func(ex *http1.Exchange) {
			s := "<pending>"
			if ex.Response != nil {
				s = ex.Response.Status + " " + string(ex.Response.Body[:min(10, len(ex.Response.Body))])
			}
			pairs = append(pairs, ex.Request.Target+" -> "+s)
		})
	}, 1)
	const cisn, sisn = 1000, 5000
	cli, srv := cliAP, srvAP
	at := time.Duration(0)
	send := func(src, dst interface{}, p decode.Packet) {
		at += 10 * time.Microsecond
		w.packet(&p, t0.Add(at))
	}
	_ = send
	pk := func(fromCli bool, seq, ack uint32, flags uint8, data []byte) {
		var p decode.Packet
		if fromCli {
			p = mkPkt(7, cli, srv, seq, flags, data)
		} else {
			p = mkPkt(7, srv, cli, seq, flags, data)
		}
		p.Ack = ack
		at += 10 * time.Microsecond
		w.packet(&p, t0.Add(at))
	}
	pk(true, cisn, 0, decode.SYN, nil)
	pk(false, sisn, cisn+1, decode.SYN|decode.ACK, nil)
	pk(true, cisn+1, sisn+1, decode.ACK, nil)

	req1 := []byte("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
	body1 := strings.Repeat("A", 400<<10)
	resp1 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body1), body1))
	req2 := []byte("GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
	body2 := "BBBBBBBBBB"
	resp2 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body2), body2))
	req3 := []byte("GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
	body3 := "CCCCCCCCCC"
	resp3 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body3), body3))

	c, s := uint32(cisn+1), uint32(sisn+1)
	// resp1 arrives first (request stuck in another reader's batch).
	for off := 0; off < len(resp1); off += 1400 {
		e := min(off+1400, len(resp1))
		pk(false, s+uint32(off), c+uint32(len(req1)), decode.ACK, resp1[off:e])
	}
	pk(true, c, s, decode.ACK, req1)
	c += uint32(len(req1))
	s += uint32(len(resp1))
	pk(true, c, s, decode.ACK, req2)
	c += uint32(len(req2))
	pk(false, s, c, decode.ACK, resp2)
	s += uint32(len(resp2))
	pk(true, c, s, decode.ACK, req3)
	c += uint32(len(req3))
	pk(false, s, c, decode.ACK, resp3)
	w.closeAll()
	for _, p := range pairs {
		t.Log(p)
	}
	t.Logf("held %d timeouts %d orphans %d gaps %d", stats.Held.Load(), stats.HeldTimeouts.Load(), hs.OrphanResponses.Load(), stats.Gaps.Load())
}

func TestTmpSmallLate(t *testing.T) {
	var pairs []string
	cfg := Config{}
	cfg.setDefaults()
	var stats Stats
	hs := &http1.Stats{}
	w := newWorker(&cfg, &stats, func(id ConnID) Handler {
		return http1.NewConn(&http1.Config{EmitPending: true}, hs, func(ex *http1.Exchange) {
			s := "<pending>"
			if ex.Response != nil {
				s = ex.Response.Status + " " + string(ex.Response.Body[:min(10, len(ex.Response.Body))])
			}
			pairs = append(pairs, ex.Request.Target+" -> "+s)
		})
	}, 1)
	const cisn, sisn = 1000, 5000
	cli, srv := cliAP, srvAP
	at := time.Duration(0)
	send := func(src, dst interface{}, p decode.Packet) {
		at += 10 * time.Microsecond
		w.packet(&p, t0.Add(at))
	}
	_ = send
	pk := func(fromCli bool, seq, ack uint32, flags uint8, data []byte) {
		var p decode.Packet
		if fromCli {
			p = mkPkt(7, cli, srv, seq, flags, data)
		} else {
			p = mkPkt(7, srv, cli, seq, flags, data)
		}
		p.Ack = ack
		at += 10 * time.Microsecond
		w.packet(&p, t0.Add(at))
	}
	pk(true, cisn, 0, decode.SYN, nil)
	pk(false, sisn, cisn+1, decode.SYN|decode.ACK, nil)
	pk(true, cisn+1, sisn+1, decode.ACK, nil)

	req1 := []byte("GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
	body1 := strings.Repeat("A", 100)
	resp1 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body1), body1))
	req2 := []byte("GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
	body2 := "BBBBBBBBBB"
	resp2 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body2), body2))
	req3 := []byte("GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
	body3 := "CCCCCCCCCC"
	resp3 := []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body3), body3))

	c, s := uint32(cisn+1), uint32(sisn+1)
	// resp1 arrives first (request stuck in another reader's batch).
	for off := 0; off < len(resp1); off += 1400 {
		e := min(off+1400, len(resp1))
		pk(false, s+uint32(off), c+uint32(len(req1)), decode.ACK, resp1[off:e])
	}
	at += 1500 * time.Millisecond
	w.advance(t0.Add(at))
	pk(true, c, s, decode.ACK, req1)
	c += uint32(len(req1))
	s += uint32(len(resp1))
	pk(true, c, s, decode.ACK, req2)
	c += uint32(len(req2))
	pk(false, s, c, decode.ACK, resp2)
	s += uint32(len(resp2))
	pk(true, c, s, decode.ACK, req3)
	c += uint32(len(req3))
	pk(false, s, c, decode.ACK, resp3)
	w.closeAll()
	for _, p := range pairs {
		t.Log(p)
	}
	t.Logf("held %d timeouts %d orphans %d gaps %d", stats.Held.Load(), stats.HeldTimeouts.Load(), hs.OrphanResponses.Load(), stats.Gaps.Load())
}
