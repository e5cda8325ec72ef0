package http1

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzConn has two halves.
//
// script drives a generator of well-formed conversations: requests carry an
// id in their path (/r/ID) and responses echo it in X-Id. The generator picks
// methods, framings, encodings, limits, how the bytes are cut, and where
// bytes are lost. Every emitted pair must have matching ids: a request is
// never paired with another request's response. When nothing was lost or
// timed out, every exchange must come out, whole.
//
// Lost bytes (and heads too big to parse) are only combined with clients
// that wait for each response before sending the next request: with
// pipelining, a gap can hide how many responses are still owed, which no
// parser without TCP sequence numbers can know. Bodies are lower-case letters so that no fake message hides in them.
//
// noise is fed as is, cut and split between the directions by script, to
// check that arbitrary bytes never panic, loop or break the output limits.
func FuzzConn(f *testing.F) {
	f.Fuzz(func(t *testing.T, script, noise []byte) {
		fuzzConversation(t, script)
		fuzzNoise(t, script, noise)
	})
}

// dice hands out the script's bytes, then zeros.
type dice struct {
	b []byte
	i int
}

func (d *dice) next() byte {
	if d.i >= len(d.b) {
		return 0
	}
	d.i++
	return d.b[d.i-1]
}

func (d *dice) intn(n int) int { return int(d.next()) % n }

type exchangeSpec struct {
	method, target    string
	reqBody, respBody string // as the application sees them (before encoding)
	status            int
	expect            bool   // Expect: 100-continue, the body sent after the interim response
	reqHead, reqRest  string // wire bytes of the request: head (and body unless expect), then the body
	resp              string // wire bytes of the response (after the interim one, if any)
	gzip, noBody      bool
}

var (
	fuzzMethods  = []string{"GET", "POST", "HEAD", "PUT", "DELETE"}
	fuzzStatuses = []int{200, 201, 204, 304, 404, 500, 101}
)

func lowerBody(id, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((id*7+i)%26)
	}
	return string(b)
}

// chunked encodes body in chunks of varying sizes, with chunk extensions
// and a trailer if asked.
func chunked(body string, ext, trailer bool) string {
	var sb strings.Builder
	for i := 0; len(body) > 0; i++ {
		n := min(len(body), 1+(i*5+len(body))%16)
		fmt.Fprintf(&sb, "%x", n)
		if ext {
			sb.WriteString(";ext=1")
		}
		sb.WriteString("\r\n" + body[:n] + "\r\n")
		body = body[n:]
	}
	sb.WriteString("0\r\n")
	if trailer {
		sb.WriteString("X-Trailer: t\r\n")
	}
	sb.WriteString("\r\n")
	return sb.String()
}

// The script's layout: 5 bytes of settings (flags, MaxBodyBytes,
// MaxHeaderBytes, exchanges-1, MaxPending-1), 4 bytes per exchange (see
// fuzzExchange), then bytes that cut and schedule the traffic.
const (
	fzPipelined   = 1 << 0 // the client sends requests without waiting (no gaps then)
	fzGaps        = 1 << 1 // pieces may be lost
	fzExpire      = 1 << 2 // Expire is called with a late clock now and then
	fzClient1     = 1 << 3 // direction 1 is the client
	fzDropPending = 1 << 4 // EmitPending false
	fzNoDecode    = 1 << 5 // Decompress false
	fzSmallBody   = 1 << 6 // MaxBodyBytes 8..39
	fzSmallHead   = 1 << 7 // MaxHeaderBytes 60..159 (not with fzPipelined)
)

// fuzzExchange is one exchange's 4 script bytes.
type fuzzExchange struct {
	// m: bits 0-2 method (mod 5: GET POST HEAD PUT DELETE), 3 chunked
	// request, 4 Expect: 100-continue, 5 chunk extensions, 6 trailer.
	// k: bits 0-2 status (mod 7: 200 201 204 304 404 500 101, 101 only
	// last), 3-4 response framing (0 length, 1 chunked, 2 close if last),
	// 6 gzip.
	m, k            byte
	reqLen, respLen byte // body lengths, mod 40 and 60
}

func fuzzConversation(t *testing.T, script []byte) {
	g := &dice{b: script}
	flags, bodyB, headB := g.next(), g.next(), g.next()
	n := 1 + g.intn(8)
	pipelined := flags&fzPipelined != 0
	gaps := flags&fzGaps != 0 && !pipelined
	expires := flags&fzExpire != 0
	client := 0
	if flags&fzClient1 != 0 {
		client = 1
	}
	cfg := Config{EmitPending: flags&fzDropPending == 0, Decompress: flags&fzNoDecode == 0, MaxPending: 1 + g.intn(8)}
	if flags&fzSmallBody != 0 {
		cfg.MaxBodyBytes = 8 + int(bodyB)%32
	}
	if flags&fzSmallHead != 0 && !pipelined {
		// A head over the limit is garbage to the parser but a request to
		// the server: with pipelining, that hides a response just as a gap
		// does, so small heads are only tried with a waiting client.
		cfg.MaxHeaderBytes = 60 + int(headB)%100
	}

	specs := make([]*exchangeSpec, 0, n)
	for i := range n {
		id := i + 1
		m, k, reqLen, respLen := g.next(), g.next(), g.next(), g.next()
		s := &exchangeSpec{method: fuzzMethods[int(m&7)%len(fuzzMethods)], target: "/r/" + strconv.Itoa(id)}
		s.status = fuzzStatuses[int(k&7)%len(fuzzStatuses)]
		last := i == n-1
		if s.status == 101 && !last {
			s.status = 200
		}
		if s.method == "POST" || s.method == "PUT" {
			s.reqBody = lowerBody(id, int(reqLen)%40)
		}
		s.expect = m&16 != 0 && s.reqBody != "" && !pipelined
		head := s.method + " " + s.target + " HTTP/1.1\r\nHost: fuzz\r\n"
		if s.expect {
			head += "Expect: 100-continue\r\n"
		}
		var body string
		if m&8 != 0 && s.reqBody != "" {
			head += "Transfer-Encoding: chunked\r\n\r\n"
			body = chunked(s.reqBody, m&32 != 0, m&64 != 0)
		} else {
			head += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(s.reqBody))
			body = s.reqBody
		}
		if s.expect {
			s.reqHead, s.reqRest = head, body
		} else {
			s.reqHead = head + body
		}

		s.respBody = lowerBody(id+100, int(respLen)%60)
		s.noBody = s.method == "HEAD" || s.status == 204 || s.status == 304 || s.status == 101
		s.gzip = k&64 != 0 && !s.noBody
		resp := fmt.Sprintf("HTTP/1.1 %d Reason %d\r\nX-Id: %d\r\n", s.status, id, id)
		wire := s.respBody
		if s.gzip {
			resp += "Content-Encoding: gzip\r\n"
			wire = gzipped(s.respBody)
		}
		switch framing := int(k>>3&3) % 3; {
		case s.status == 101:
			resp += "Upgrade: fuzz\r\n\r\n"
		case s.status == 204:
			resp += "\r\n"
		case s.noBody:
			resp += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(wire))
		case framing == 1:
			resp += "Transfer-Encoding: chunked\r\n\r\n" + chunked(wire, m&32 != 0, m&64 != 0)
		case framing == 2 && last:
			resp += "\r\n" + wire // close-delimited
		default:
			resp += fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(wire), wire)
		}
		if s.noBody {
			s.respBody = ""
		}
		s.resp = resp
		specs = append(specs, s)
	}
	g.i = 5 + 4*n // the schedule starts after all exchanges

	byTarget := map[string]*exchangeSpec{}
	for _, s := range specs {
		byTarget[s.target] = s
	}
	seen := map[string]bool{}
	var pairs int
	// Half the scripts (by length) run with a Filter: it drops and keeps
	// only the heads of some exchanges, which must pair all the same.
	var f *fuzzFilter
	if len(script)%2 == 1 {
		f = &fuzzFilter{}
	}
	emit := func(x *Exchange) {
		if x.Request == nil {
			t.Fatalf("exchange without request")
		}
		s := byTarget[x.Request.Target]
		if s == nil {
			t.Fatalf("unknown request %s %q", x.Request.Method, x.Request.Target)
		}
		reqBody, respBody := s.reqBody, s.respBody
		if f != nil {
			switch f.request(x.Request.Target) {
			case Drop:
				t.Fatalf("%s emitted, but the filter dropped it", s.target)
			case KeepHead:
				reqBody = ""
			}
			if x.Response != nil {
				switch f.response(x.Response.StatusCode) {
				case Drop:
					t.Fatalf("%s emitted with status %d, which the filter dropped", s.target, x.Response.StatusCode)
				case KeepHead:
					respBody = ""
				}
			}
		}
		if seen[s.target] {
			t.Fatalf("%s emitted twice", s.target)
		}
		seen[s.target] = true
		if x.ClientDir != client {
			t.Fatalf("%s: ClientDir %d, want %d", s.target, x.ClientDir, client)
		}
		if x.Request.Method != s.method {
			t.Fatalf("%s: method %q, want %q", s.target, x.Request.Method, s.method)
		}
		checkBody(t, s.target+" request", x.Request, reqBody, false, cfg)
		if x.Response == nil {
			return
		}
		pairs++
		var id string
		for _, h := range x.Response.Headers {
			if h.Name == "X-Id" {
				id = h.Value
			}
		}
		if "/r/"+id != s.target {
			t.Fatalf("request %s paired with the response of /r/%s", s.target, id)
		}
		if x.Response.StatusCode != s.status {
			t.Fatalf("%s: status %d, want %d", s.target, x.Response.StatusCode, s.status)
		}
		checkBody(t, s.target+" response", x.Response, respBody, s.gzip && respBody != "", cfg)
	}
	c := NewConn(&cfg, nil, emit)
	wantPairs := len(specs)
	if f != nil {
		c.SetFilter(f)
		for _, s := range specs {
			if f.request(s.target) == Drop || f.response(s.status) == Drop {
				wantPairs--
			}
		}
	}

	ts := t0
	lost, expired := false, false
	// feed sends a message's bytes in pieces; with gaps on, some pieces are
	// lost instead.
	feed := func(dir int, b string) {
		for len(b) > 0 {
			ts = ts.Add(time.Millisecond)
			k := min(len(b), 1+g.intn(24))
			switch {
			case gaps && g.next() < 24:
				c.Gap(dir, k, ts)
				lost = true
			case expires && g.next() < 16:
				c.Expire(ts.Add(time.Minute))
				expired = true
				fallthrough
			default:
				c.Data(dir, []byte(b[:k]), ts)
			}
			b = b[k:]
		}
	}
	server := 1 - client
	if pipelined {
		// The client sends without waiting; a response is sent only once
		// its request is complete.
		var cs, ss string
		var reqEnd, respStart []int
		for _, s := range specs {
			cs += s.reqHead + s.reqRest
			reqEnd = append(reqEnd, len(cs))
			respStart = append(respStart, len(ss))
			ss += s.resp
		}
		respStart = append(respStart, len(ss))
		pc, ps := 0, 0
		for pc < len(cs) || ps < len(ss) {
			// The server may send up to the end of the responses whose
			// requests are complete.
			limit := 0
			for j := range specs {
				if reqEnd[j] <= pc {
					limit = respStart[j+1]
				}
			}
			k := 1 + g.intn(24)
			ts = ts.Add(time.Millisecond)
			if ps < limit && (pc == len(cs) || g.next()&1 != 0) {
				k = min(k, limit-ps)
				c.Data(server, []byte(ss[ps:ps+k]), ts)
				ps += k
			} else {
				k = min(k, len(cs)-pc)
				c.Data(client, []byte(cs[pc:pc+k]), ts)
				pc += k
			}
			if expires && g.next() < 16 {
				c.Expire(ts.Add(time.Minute))
				expired = true
			}
		}
	} else {
		for _, s := range specs {
			feed(client, s.reqHead)
			if s.expect {
				feed(server, "HTTP/1.1 100 Continue\r\n\r\n")
				feed(client, s.reqRest)
			}
			feed(server, s.resp)
		}
	}
	if g.next()&1 != 0 {
		c.End(server, ts)
	}
	c.Close(ts)

	complete := !lost && !expired && cfg.MaxHeaderBytes == 0 && (!pipelined || cfg.MaxPending >= len(specs))
	if complete && pairs != wantPairs {
		t.Fatalf("%d pairs emitted, want %d", pairs, wantPairs)
	}
}

// fuzzFilter drops the exchanges of targets /r/<id> with id%4 == 1 and of
// 404 responses, and keeps only the head of targets with id%4 == 2 and of
// 500 responses.
type fuzzFilter struct{}

func (fuzzFilter) request(target string) Verdict {
	id, _ := strconv.Atoi(strings.TrimPrefix(target, "/r/"))
	switch id % 4 {
	case 1:
		return Drop
	case 2:
		return KeepHead
	}
	return Keep
}

func (fuzzFilter) response(status int) Verdict {
	switch status {
	case 404:
		return Drop
	case 500:
		return KeepHead
	}
	return Keep
}

func (f *fuzzFilter) Request(_ int, req *Message) Verdict { return f.request(req.Target) }

func (f *fuzzFilter) Response(_, resp *Message) Verdict { return f.response(resp.StatusCode) }

// checkBody checks a body against what was sent: the same, or a prefix of it
// when cut; nothing when a gzip body was not decoded (it is binary).
func checkBody(t *testing.T, what string, m *Message, want string, gzip bool, cfg Config) {
	got := string(m.Body)
	max := cfg.withDefaults().MaxBodyBytes
	switch {
	case len(got) > max:
		t.Fatalf("%s: body of %d bytes, limit %d", what, len(got), max)
	case gzip && !cfg.Decompress:
		if got != "" {
			t.Fatalf("%s: undecoded gzip body %q, want none", what, got)
		}
	case m.BodyTruncated:
		if !strings.HasPrefix(want, got) {
			t.Fatalf("%s: cut body %q is not a prefix of %q", what, got, want)
		}
	case got != want:
		t.Fatalf("%s: body %q, want %q", what, got, want)
	}
}

func fuzzNoise(t *testing.T, script, noise []byte) {
	g := &dice{b: script}
	cfg := Config{EmitPending: true, Decompress: true, MaxBodyBytes: 64, MaxHeaderBytes: 512, MaxPending: 4}
	emit := func(x *Exchange) {
		for _, m := range []*Message{x.Request, x.Response} {
			if m == nil {
				continue
			}
			if len(m.Body) > cfg.MaxBodyBytes || m.Body != nil && !utf8.Valid(m.Body) {
				t.Fatalf("body %q breaks the limits", m.Body)
			}
		}
		if x.Request == nil || x.ClientDir&^1 != 0 {
			t.Fatalf("malformed exchange %+v", x)
		}
	}
	c := NewConn(&cfg, nil, emit)
	ts := t0
	for len(noise) > 0 {
		k := g.next()
		dir, n := int(k&1), min(len(noise), 1+int(k>>1)%48)
		ts = ts.Add(time.Second)
		switch {
		case k >= 0xf0:
			c.Gap(dir, n, ts)
		case k >= 0xe8:
			c.End(dir, ts)
		case k >= 0xe0:
			c.Expire(ts.Add(time.Minute))
		}
		c.Data(dir, noise[:n], ts)
		noise = noise[n:]
	}
	c.Close(ts)
}

// fuzzScript assembles a script from its parts (see the layout above).
func fuzzScript(flags, maxBody, maxHead, maxPending byte, exchanges []fuzzExchange, schedule string) string {
	b := []byte{flags, maxBody, maxHead, byte(len(exchanges) - 1), maxPending - 1}
	for _, x := range exchanges {
		b = append(b, x.m, x.k, x.reqLen, x.respLen)
	}
	return string(b) + schedule
}

// Method (m bits 0-2), status (k bits 0-2) and framing (k bits 3-4) values.
const (
	fzGET, fzPOST, fzHEAD, fzPUT, fzDELETE           = 0, 1, 2, 3, 4
	fzChunkedReq, fzExpect100, fzChunkExt, fzTrailer = 8, 16, 32, 64
	fz200, fz201, fz204, fz304, fz404, fz500, fz101  = 0, 1, 2, 3, 4, 5, 6
	fzRespChunked, fzRespClose, fzGzip               = 8, 16, 64
)

// fuzzSeeds are the committed corpus in testdata/fuzz/FuzzConn. Regenerate
// the files after editing with: HTTP1_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds ./internal/http1/
var fuzzSeeds = []struct {
	name          string
	script, noise string
}{
	{
		// An empty schedule feeds one byte at a time.
		name: "turn-taking-byte-by-byte",
		script: fuzzScript(0, 0, 0, 1, []fuzzExchange{
			{fzGET, fz200, 0, 10}, {fzPOST, fz201, 12, 3}, {fzDELETE, fz204, 0, 0},
		}, ""),
		noise: get("/a"),
	},
	{
		name: "pipelined-mixed",
		script: fuzzScript(fzPipelined|fzClient1, 0, 0, 8, []fuzzExchange{
			{fzGET, fz200, 0, 20}, {fzPOST | fzChunkedReq, fz404 | fzRespChunked, 25, 7}, {fzHEAD, fz200, 0, 30},
			{fzPUT, fz304, 9, 9}, {fzDELETE, fz500 | fzRespChunked, 0, 50},
		}, "\x17\x01\x05\x00\x10\x01\x03\x01\x08\x00\x02\x01\x16\x01\x09\x00\x17\x01\x04\x01"),
		noise: get("/1") + get("/2") + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx" + "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny",
	},
	{
		// Schedule pairs: piece length, then a byte below 24 loses the piece.
		name: "gaps-turn-taking",
		script: fuzzScript(fzGaps, 0, 0, 4, []fuzzExchange{
			{fzPOST, fz200, 30, 20}, {fzGET, fz200, 0, 40}, {fzPUT | fzChunkedReq, fz201 | fzRespChunked, 35, 5},
			{fzGET, fz404, 0, 10}, {fzPOST, fz200, 20, 20}, {fzGET, fz200, 0, 15},
		}, strings.Repeat(strings.Repeat("\x09\xff", 37)+"\x05\x00", 4)),
		noise: withCL(req("POST", "/p", ""), "hello") + ok200("1", "ok"),
	},
	{
		name: "chunked-gzip-expect",
		script: fuzzScript(0, 0, 0, 1, []fuzzExchange{
			{fzPOST | fzChunkedReq | fzExpect100 | fzChunkExt | fzTrailer, fz200 | fzGzip | fzRespChunked, 33, 55},
			{fzGET, fz200 | fzGzip, 0, 40},
			{fzHEAD, fz200 | fzGzip, 0, 40},
		}, strings.Repeat("\x0a", 40)),
		noise: "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x\r\nabc\r\n0\r\nT: v\r\n\r\n",
	},
	{
		// Schedule pairs: piece length, then a byte below 16 calls Expire
		// a minute later: requests go pending, their responses come late.
		name: "expire-late-responses",
		script: fuzzScript(fzExpire, 0, 0, 4, []fuzzExchange{
			{fzGET, fz200, 0, 5}, {fzGET, fz200, 0, 5}, {fzPOST, fz201, 10, 5}, {fzGET, fz200, 0, 5},
		}, strings.Repeat("\x17\xff", 3)+"\x17\x00"+strings.Repeat("\x17\xff", 20)),
		noise: get("/x") + "\x00\x00\x00",
	},
	{
		name: "pipelined-queue-overflow",
		script: fuzzScript(fzPipelined, 0, 0, 2, []fuzzExchange{
			{fzGET, fz200, 0, 3}, {fzGET, fz200, 0, 3}, {fzGET, fz200, 0, 3}, {fzGET, fz200, 0, 3}, {fzGET, fz200, 0, 3},
		}, strings.Repeat("\x17\x00", 8)),
		noise: get("/1") + get("/2") + get("/3"),
	},
	{
		name: "upgrade-last",
		script: fuzzScript(fzClient1, 0, 0, 1, []fuzzExchange{
			{fzGET, fz200, 0, 5}, {fzGET, fz101, 0, 0},
		}, "\x10\x10\x10\x10"),
		noise: "\x16\x03\x01\x00\x10client hello....",
	},
	{
		name: "close-delimited-last",
		script: fuzzScript(fzDropPending, 0, 0, 1, []fuzzExchange{
			{fzGET, fz200, 0, 5}, {fzGET, fz200 | fzRespClose, 0, 45},
		}, "\x20\x20\x20\x20\x01"),
		noise: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
	},
	{
		name: "small-limits",
		script: fuzzScript(fzSmallBody|fzSmallHead|fzNoDecode, 3, 10, 2, []fuzzExchange{
			{fzPOST, fz200 | fzGzip, 39, 59}, {fzPUT | fzChunkedReq, fz201 | fzRespChunked, 30, 50}, {fzGET, fz200, 0, 10},
		}, strings.Repeat("\x05", 30)),
		noise: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + get("/y"),
	},
	{
		name:   "noise-gaps",
		script: "\xf1\x10\xe3\x22\xe9\x44\x01\x02\xf0\x03",
		noise: "GET /a HTTP/1.1\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n" +
			"Content-Length: 3\r\n\r\n\x1f\x8b\x08",
	},
}

// TestWriteFuzzSeeds writes fuzzSeeds in the "go test fuzz v1" format.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("HTTP1_WRITE_SEEDS") == "" {
		t.Skip("set HTTP1_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzConn")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzConn")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range fuzzSeeds {
		var b bytes.Buffer
		fmt.Fprintf(&b, "go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s.script, s.noise)
		if err := os.WriteFile(filepath.Join(dir, s.name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
