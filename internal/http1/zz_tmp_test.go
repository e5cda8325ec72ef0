package http1

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestTmpUnboundedAcrossConns(t *testing.T) {
	heap := func() uint64 { runtime.GC(); var m runtime.MemStats; runtime.ReadMemStats(&m); return m.HeapAlloc >> 20 }
	body := strings.Repeat("x", 1<<20)
	t0 := time.Unix(1e9, 0)
	var conns []*Conn
	before := heap()
	// 1 connection, a client that sends 64 POSTs whose responses are slow.
	c := NewConn(&Config{EmitPending: true}, nil, nil)
	for i := 0; i < 64; i++ {
		c.Data(0, []byte(fmt.Sprintf("POST /up/%d HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", i, len(body))), t0)
		c.Data(0, []byte(body), t0)
	}
	conns = append(conns, c)
	t.Logf("one pipelining connection: heap +%d MiB", heap()-before)
	// 200 connections each half-way through a 2 MiB upload.
	for j := 0; j < 200; j++ {
		c := NewConn(&Config{EmitPending: true}, nil, nil)
		c.Data(0, []byte(fmt.Sprintf("PUT /big HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 2<<20)), t0)
		c.Data(0, []byte(body), t0)
		conns = append(conns, c)
	}
	t.Logf("plus 200 connections mid-upload: heap +%d MiB", heap()-before)
	runtime.KeepAlive(conns)
}

func TestTmpSlowUploadExpiresAtOnce(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	var got []string
	c := NewConn(&Config{EmitPending: true}, nil, func(x *Exchange) {
		s := "pending"
		if x.Response != nil {
			s = x.Response.Status
		}
		got = append(got, x.Request.Target+" "+s)
	})
	c.Data(0, []byte("PUT /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345"), t0)
	c.Data(0, []byte("67890"), t0.Add(40*time.Second)) // slow client: body done after 40 s
	c.Expire(t0.Add(40*time.Second + 500*time.Millisecond)) // the next sweep, half a second later
	c.Data(1, []byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), t0.Add(41*time.Second))
	c.Close(t0.Add(42 * time.Second))
	t.Logf("%q", got)
}
