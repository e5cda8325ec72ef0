package http1

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/record"
)

// collect returns a Conn that appends what it emits to *out.
func collect(cfg Config, out *[]*Exchange) (*Conn, *Stats) {
	var stats Stats
	return NewConn(&cfg, &stats, func(x *Exchange) { *out = append(*out, x.Clone()) }), &stats
}

func TestMessageFields(t *testing.T) {
	var got []*Exchange
	c, _ := collect(defaultCfg, &got)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	reqBytes := []byte("POST /v1/users/7?full=1 HTTP/1.0\r\nHost: api\r\nX-Tag: a\r\nx-tag: b\r\ncontent-length: 4\r\nEmpty:\r\n\r\nbody")
	c.Data(1, reqBytes[:10], at(1)) // the client is direction 1 here
	c.Data(1, reqBytes[10:], at(2))
	clear(reqBytes) // borrowed: the Conn must not keep it
	c.Data(0, []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"), at(3))
	c.Data(0, []byte("nf!"), at(4))

	if len(got) != 1 {
		t.Fatalf("got %d exchanges, want 1", len(got))
	}
	x := got[0]
	wantReq := &Message{
		Method: "POST", Target: "/v1/users/7?full=1", Proto: "HTTP/1.0",
		Headers: []record.Header{hdr("Host", "api"), hdr("X-Tag", "a"), hdr("x-tag", "b"), hdr("content-length", "4"), hdr("Empty", "")},
		Body:    []byte("body"),
		Time:    at(1),
		End:     at(2),
	}
	wantResp := &Message{
		Proto: "HTTP/1.1", StatusCode: 404, Status: "404 Not Found",
		Headers: []record.Header{hdr("Content-Length", "3"), hdr("Set-Cookie", "a=1"), hdr("Set-Cookie", "b=2")},
		Body:    []byte("nf!"),
		Time:    at(3),
		End:     at(4),
	}
	if x.ClientDir != 1 {
		t.Errorf("ClientDir = %d, want 1", x.ClientDir)
	}
	if !reflect.DeepEqual(x.Request, wantReq) {
		t.Errorf("request:\n got  %+v\n want %+v", x.Request, wantReq)
	}
	if !reflect.DeepEqual(x.Response, wantResp) {
		t.Errorf("response:\n got  %+v\n want %+v", x.Response, wantResp)
	}
}

func TestDecodedBodyKeepsHeaders(t *testing.T) {
	var got []*Exchange
	c, _ := collect(defaultCfg, &got)
	gz := gzipped("hello")
	c.Data(0, []byte(get("/")), t0)
	c.Data(1, []byte(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", gz)), t0)
	if len(got) != 1 {
		t.Fatalf("got %d exchanges", len(got))
	}
	r := got[0].Response
	want := []record.Header{hdr("Content-Encoding", "gzip"), hdr("Content-Length", strconv.Itoa(len(gz)))}
	if string(r.Body) != "hello" || !slices.Equal(r.Headers, want) {
		t.Errorf("body %q headers %v; want \"hello\" and %v", r.Body, r.Headers, want)
	}
}

func hdr(name, value string) record.Header { return record.Header{Name: name, Value: value} }

func TestGzipBomb(t *testing.T) {
	// 100 MB of zeros compress to about 100 KB; decoding must stop at
	// MaxBodyBytes however much the body would expand to.
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	zeros := make([]byte, 1<<20)
	for range 100 {
		zw.Write(zeros)
	}
	zw.Close()

	const max = 256 << 10
	cfg := Config{EmitPending: true, Decompress: true, MaxBodyBytes: max}
	var got []*Exchange
	c, stats := collect(cfg, &got)
	c.Data(0, []byte(get("/bomb")), t0)
	resp := []byte(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", zb.String()))
	for len(resp) > 0 { // in segment-sized pieces
		n := min(len(resp), 1448)
		c.Data(1, resp[:n], t0)
		resp = resp[n:]
	}
	if len(got) != 1 {
		t.Fatalf("got %d exchanges", len(got))
	}
	r := got[0].Response
	if len(r.Body) != max || !r.BodyTruncated {
		t.Errorf("body of %d bytes, truncated %v; want %d bytes, truncated", len(r.Body), r.BodyTruncated, max)
	}
	if cap(r.Body) > 2*max {
		t.Errorf("body capacity %d: decoding was not bounded", cap(r.Body))
	}
	if stats.BodyTruncated.Load() != 1 || stats.DecodeErrors.Load() != 0 {
		t.Errorf("body_truncated %d decode_errors %d; want 1 and 0", stats.BodyTruncated.Load(), stats.DecodeErrors.Load())
	}
}

// The invariant in its simplest form: after a gap, the responses of requests
// lost or dropped never pair with the requests that follow.
func TestNeverPairsAcrossGap(t *testing.T) {
	var got []*Exchange
	c, _ := collect(defaultCfg, &got)
	c.Data(0, []byte(get("/1")+get("/2")), t0)
	c.Gap(0, 100, t0) // GET /3 lost
	c.Data(1, []byte(ok200("1", "")), t0)
	c.Data(1, []byte(ok200("2", "")), t0)
	c.Data(1, []byte(ok200("3", "")), t0)
	c.Data(0, []byte(get("/4")), t0)
	c.Data(1, []byte(ok200("4", "")), t0)
	c.Close(t0)
	for _, x := range got {
		if x.Response == nil {
			continue
		}
		id := x.Response.Headers[0].Value
		if x.Request.Target != "/"+id {
			t.Errorf("%s paired with the response of /%s", x.Request.Target, id)
		}
	}
}

func TestExpireWaitsForAnsweredFront(t *testing.T) {
	var got []*Exchange
	c, _ := collect(defaultCfg, &got)
	c.Data(0, []byte(get("/1")+get("/2")), t0)
	c.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234"), t0) // /1 being answered
	c.Expire(t0.Add(time.Hour))
	if len(got) != 0 {
		t.Fatalf("Expire emitted %d exchanges while the front request is being answered", len(got))
	}
	c.Data(1, []byte("56789"), t0)
	c.Expire(t0.Add(time.Hour))
	if len(got) != 2 || got[0].Response == nil || got[1].Response != nil {
		t.Fatalf("got %v, want /1 paired then /2 pending", got)
	}
}

func TestReset(t *testing.T) {
	var first, second []*Exchange
	c, _ := collect(defaultCfg, &first)
	c.Data(0, []byte("\x16\x03\x01"), t0)
	if !c.Skipping() {
		t.Fatal("TLS not recognised")
	}
	var stats Stats
	c.Reset(&Config{}, &stats, func(x *Exchange) { second = append(second, x.Clone()) })
	if c.Skipping() {
		t.Fatal("Skipping after Reset")
	}
	c.Data(1, []byte(get("/a")), t0)
	c.Data(0, []byte(ok200("1", "a")), t0)
	c.Data(1, []byte(get("/b")), t0)
	c.Close(t0)
	if len(first) != 0 || len(second) != 1 || second[0].ClientDir != 1 {
		t.Fatalf("first %v second %v", first, second)
	}
	// The zero Config means EmitPending false: /b was dropped.
	if stats.Pairs.Load() != 1 || stats.PendingDropped.Load() != 1 {
		t.Errorf("pairs %d pending_dropped %d", stats.Pairs.Load(), stats.PendingDropped.Load())
	}
}

func TestNilArguments(t *testing.T) {
	c := NewConn(nil, nil, nil)
	c.Data(0, []byte(get("/a")), t0)
	c.Data(1, []byte(ok200("1", "a")), t0)
	c.Data(2, []byte(get("/bad-dir")), t0)
	c.Gap(-1, 5, t0)
	c.End(7, t0)
	c.Close(t0)
	c.Close(t0)
}

func TestConfig(t *testing.T) {
	if err := (&Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
	if err := (*Config)(nil).Validate(); err != nil {
		t.Errorf("nil Config: %v", err)
	}
	bad := Config{MaxBodyBytes: -1, MaxHeaderBytes: -1, MaxPending: -1, PendingTimeout: -time.Second}
	err := bad.Validate()
	for _, field := range []string{"MaxBodyBytes", "MaxHeaderBytes", "MaxPending", "PendingTimeout"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
	d := Config{}.withDefaults()
	want := Config{MaxBodyBytes: 1 << 20, MaxHeaderBytes: 64 << 10, MaxPending: 64, PendingTimeout: 30 * time.Second}
	if d != want {
		t.Errorf("defaults %+v, want %+v", d, want)
	}
}

func TestStatsEach(t *testing.T) {
	var s Stats
	s.Pairs.Add(3)
	s.QueueOverflow.Add(1)
	var names []string
	got := map[string]uint64{}
	s.Each(func(name string, v uint64) { names = append(names, name); got[name] = v })
	want := []string{
		"pairs", "pending_emitted", "pending_dropped", "requests_dropped_gap", "requests_dropped_desync",
		"orphan_responses", "late_responses", "rejected_requests", "requests_dropped_unaligned", "ambiguous_framing", "resyncs", "garbage", "body_truncated", "decode_errors",
		"binary_bodies", "incomplete", "skipped_tls", "skipped_http2", "upgrades", "queue_overflow", "body_budget_cuts",
	}
	if !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if got["pairs"] != 3 || got["queue_overflow"] != 1 {
		t.Errorf("values %v", got)
	}
	// Every field of Stats is reported.
	if n := reflect.TypeFor[Stats]().NumField(); n != len(want) {
		t.Errorf("Stats has %d fields, Each reports %d", n, len(want))
	}
}

func TestParseStartLines(t *testing.T) {
	for _, tc := range []struct {
		line   string
		strict bool
		ok     bool
	}{
		{"GET / HTTP/1.1", true, true},
		{"GET / HTTP/1.0", false, true},
		{"OPTIONS * HTTP/1.1", true, true},
		{"CONNECT host:443 HTTP/1.1", true, true},
		{"M-SEARCH * HTTP/1.1", false, true},
		{"M-SEARCH * HTTP/1.1", true, false}, // unknown method while resyncing
		// Where a message is known to start, any token is a method.
		{"get / HTTP/1.1", false, true},
		{"get / HTTP/1.1", true, false},
		{"PURGE /x HTTP/1.1", false, true},
		{"PURGE /x HTTP/1.1", true, false},
		{"QUERY /x HTTP/1.1", false, true},
		{"LINK /x HTTP/1.1", false, true},
		{"SOURCE /x HTTP/1.0", false, true},
		{"X.Custom~1 /x HTTP/1.1", false, true},
		{"(GET) / HTTP/1.1", false, false},
		{"G\x00T / HTTP/1.1", false, false},
		{"GET /a b HTTP/1.1", false, false},
		{"GET  / HTTP/1.1", false, false},
		{"GET / HTTP/2.0", false, false},
		{"GET / HTTP/1.1 ", false, false},
		{"GET x HTTP/1.1", true, false},
		{"GET http://h/x HTTP/1.1", true, true},
		{"GET /\x7f HTTP/1.1", false, false},
		{"T /x HTTP/1.1", true, false}, // the tail of a lost "GET /x HTTP/1.1"
	} {
		_, _, _, ok := parseRequestLine([]byte(tc.line), tc.strict)
		if ok != tc.ok {
			t.Errorf("parseRequestLine(%q, strict %v) ok = %v, want %v", tc.line, tc.strict, ok, tc.ok)
		}
	}
	for _, tc := range []struct {
		line   string
		status string
		code   int
	}{
		{"HTTP/1.1 200 OK", "200 OK", 200},
		{"HTTP/1.1 200", "200", 200},
		{"HTTP/1.1 200 ", "200", 200},
		{"HTTP/1.0 404 Not Found", "404 Not Found", 404},
		{"HTTP/1.1 599 x", "599 x", 599},
		{"HTTP/1.1 099 x", "", 0},
		{"HTTP/1.1 20 OK", "", 0},
		{"HTTP/1.1 2000 OK", "", 0},
		{"HTTP/2 200 OK", "", 0},
		{"HTTP/1.1 200 O\x00K", "", 0},
	} {
		_, status, code, ok := parseStatusLine([]byte(tc.line), true)
		if string(status) != tc.status || code != tc.code || ok != (tc.code != 0) {
			t.Errorf("parseStatusLine(%q) = %q %d %v", tc.line, status, code, ok)
		}
	}
}

func TestParseChunkSize(t *testing.T) {
	for _, tc := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"0", 0, true}, {"a", 10, true}, {"1F", 31, true}, {"10;x=y", 16, true}, {"5 ;ext", 5, true},
		{"", 0, false}, {"x", 0, false}, {"5x", 0, false}, {"-1", 0, false}, {"ffffffffffffffffff", 0, false},
	} {
		n, ok := parseChunkSize([]byte(tc.line))
		if n != tc.n || ok != tc.ok {
			t.Errorf("parseChunkSize(%q) = %d %v, want %d %v", tc.line, n, ok, tc.n, tc.ok)
		}
	}
}

func BenchmarkConn(b *testing.B) {
	reqs := []byte(req("POST", "/api/v1/orders?id=42", "Host: shop.example.com\r\nUser-Agent: bench/1.0\r\n"+
		"Accept: application/json\r\nContent-Type: application/json\r\nContent-Length: 27\r\n\r\n{\"item\":\"book\",\"count\":2}\r\n"))
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Mon, 06 May 2024 07:08:09 GMT\r\n" +
		"Content-Length: 16\r\n\r\n{\"status\":\"ok\"}\n")
	var stats Stats
	c := NewConn(&defaultCfg, &stats, func(*Exchange) {})
	b.ReportAllocs()
	b.SetBytes(int64(len(reqs) + len(resp)))
	for b.Loop() {
		c.Data(0, reqs, t0)
		c.Data(1, resp, t0)
	}
	if stats.Pairs.Load() == 0 {
		b.Fatal("no pairs")
	}
}

// Body bytes arriving piece by piece cost no allocation: the body buffer is
// sized from Content-Length once.
func TestBodyPiecesDoNotAllocate(t *testing.T) {
	c := NewConn(&defaultCfg, nil, nil)
	c.Data(0, []byte(req("POST", "/upload", "Content-Length: 100000\r\n\r\n")), t0)
	piece := bytes.Repeat([]byte("x"), 10)
	if n := testing.AllocsPerRun(1000, func() { c.Data(0, piece, t0) }); n != 0 {
		t.Errorf("%v allocations per body piece, want 0", n)
	}
	// Resync scanning does not allocate either.
	c.Gap(0, -1, t0)
	line := []byte("not a request line, just text\r\n")
	if n := testing.AllocsPerRun(1000, func() { c.Data(0, line, t0) }); n != 0 {
		t.Errorf("%v allocations per skipped line, want 0", n)
	}
}

// The budget bounds the bodies held by all connections together: pipelined
// uploads waiting for responses, on many connections, cannot take more.
func TestBudgetBoundsHeldBodies(t *testing.T) {
	budget := NewBudget(1 << 20)
	var stats Stats
	var emitted []*Exchange
	cfg := &Config{EmitPending: true, Budget: budget}
	body := strings.Repeat("u", 200<<10)
	req := fmt.Sprintf("POST /up HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	var conns []*Conn
	for i := 0; i < 10; i++ {
		c := NewConn(cfg, &stats, func(ex *Exchange) { emitted = append(emitted, ex.Clone()) })
		c.Data(0, []byte(req), t0)
		conns = append(conns, c)
		if budget.Used() > 1<<20 {
			t.Fatalf("budget exceeded: %d bytes held", budget.Used())
		}
	}
	if stats.BodyBudgetCuts.Load() == 0 {
		t.Error("no body was cut although 2 MB of bodies were held")
	}
	// Answers give the memory back, whichever way the messages leave.
	for _, c := range conns[:5] {
		c.Data(1, []byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), t0)
	}
	for _, c := range conns[5:] {
		c.Close(t0)
	}
	if budget.Used() != 0 {
		t.Errorf("%d bytes still counted after every message left", budget.Used())
	}
	if len(emitted) != 10 {
		t.Errorf("%d exchanges emitted", len(emitted))
	}
	// With memory back, bodies are whole again.
	c := NewConn(cfg, &stats, func(ex *Exchange) { emitted = append(emitted, ex.Clone()) })
	c.Data(0, []byte(req), t0)
	c.Data(1, []byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), t0)
	if last := emitted[len(emitted)-1]; len(last.Request.Body) != len(body) || last.Request.BodyTruncated {
		t.Errorf("body %d bytes, truncated %v", len(last.Request.Body), last.Request.BodyTruncated)
	}
}

// A slow upload is not pending while its body still arrives: the timeout
// runs from the request's completion.
func TestSlowUploadIsNotPending(t *testing.T) {
	var got []string
	c := NewConn(&Config{EmitPending: true, PendingTimeout: 30 * time.Second}, nil, func(ex *Exchange) {
		if ex.Response == nil {
			got = append(got, ex.Request.Target+" pending")
		} else {
			got = append(got, ex.Request.Target+" "+ex.Response.Status)
		}
	})
	c.Data(0, []byte("PUT /upload HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345"), t0)
	c.Data(0, []byte("67890"), t0.Add(40*time.Second))
	c.Expire(t0.Add(41 * time.Second))
	c.Data(1, []byte("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"), t0.Add(42*time.Second))
	if len(got) != 1 || got[0] != "/upload 201 Created" {
		t.Errorf("got %q", got)
	}
	c.Data(0, []byte("GET /next HTTP/1.1\r\n\r\n"), t0.Add(50*time.Second))
	c.Expire(t0.Add(81 * time.Second))
	if len(got) != 2 || got[1] != "/next pending" {
		t.Errorf("got %q", got)
	}
}
