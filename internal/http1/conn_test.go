package http1

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)

// op is one call made on a Conn by a test.
type op struct {
	kind byte // 'd' Data, 'g' Gap, 'e' End, 'c' Close, 'x' Expire
	dir  int
	data string
	at   time.Duration // capture time, from t0
}

func d0(s string) op                         { return op{kind: 'd', dir: 0, data: s} }
func d1(s string) op                         { return op{kind: 'd', dir: 1, data: s} }
func gap(dir int) op                         { return op{kind: 'g', dir: dir} }
func end(dir int) op                         { return op{kind: 'e', dir: dir} }
func start(dir int) op                       { return op{kind: 's', dir: dir} }
func closeConn() op                          { return op{kind: 'c'} }
func expire(at time.Duration) op             { return op{kind: 'x', at: at} }
func (o op) after(at time.Duration) op       { o.at = at; return o }
func (o op) String() string                  { return fmt.Sprintf("%c%d %q @%v", o.kind, o.dir, o.data, o.at) }
func req(method, target, rest string) string { return method + " " + target + " HTTP/1.1\r\n" + rest }

// run feeds ops to a new Conn, Data in pieces of split bytes (0: whole), and
// returns the exchanges as summaries, the counters that are not zero, and
// the Conn.
func run(cfg Config, ops []op, split int) ([]string, map[string]uint64, *Conn) {
	var got []string
	var stats Stats
	c := NewConn(&cfg, &stats, func(x *Exchange) { got = append(got, summary(x)) })
	for _, o := range ops {
		ts := t0.Add(o.at)
		switch o.kind {
		case 'd':
			b := []byte(o.data)
			for len(b) > 0 {
				n := len(b)
				if split > 0 && n > split {
					n = split
				}
				piece := bytes.Clone(b[:n])
				c.Data(o.dir, piece, ts)
				for i := range piece {
					piece[i] = '#' // the Conn must have copied what it keeps
				}
				b = b[n:]
			}
		case 'g':
			c.Gap(o.dir, -1, ts)
		case 'e':
			c.End(o.dir, ts)
		case 'c':
			c.Close(ts)
		case 'x':
			c.Expire(ts)
		case 's':
			c.Start(o.dir)
		}
	}
	return got, counters(&stats), c
}

func counters(s *Stats) map[string]uint64 {
	m := map[string]uint64{}
	s.Each(func(name string, v uint64) {
		if v != 0 {
			m[name] = v
		}
	})
	return m
}

// summary renders an exchange on one line, e.g.
// `c0 POST /a body="x" -> 200 OK body="ok"`.
func summary(x *Exchange) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "c%d %s %s", x.ClientDir, x.Request.Method, x.Request.Target)
	body(&sb, x.Request)
	if x.Response == nil {
		sb.WriteString(" -> pending")
		return sb.String()
	}
	fmt.Fprintf(&sb, " -> %s", x.Response.Status)
	body(&sb, x.Response)
	return sb.String()
}

func body(sb *strings.Builder, m *Message) {
	if len(m.Body) > 0 {
		s := string(m.Body)
		if len(s) > 40 {
			s = fmt.Sprintf("%s...(%d bytes)", s[:20], len(m.Body))
		}
		fmt.Fprintf(sb, " body=%q", s)
	}
	if m.BodyTruncated {
		sb.WriteString(" (cut)")
	}
}

func gzipped(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func zlibbed(s string) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func deflated(s string) string {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

func withCL(head, body string) string {
	return fmt.Sprintf("%sContent-Length: %d\r\n\r\n%s", head, len(body), body)
}

func ok200(id, body string) string {
	return withCL("HTTP/1.1 200 OK\r\nX-Id: "+id+"\r\n", body)
}

func get(target string) string { return req("GET", target, "Host: example.com\r\n\r\n") }

// bad400 is how servers answer a request they cannot parse.
var bad400 = withCL("HTTP/1.1 400 Bad Request\r\n", "bad")

type connCase struct {
	name  string
	cfg   Config
	ops   []op
	want  []string
	stats map[string]uint64 // every counter that must not be zero
	skip  bool              // Skipping() at the end
}

var defaultCfg = Config{EmitPending: true, Decompress: true}

func connCases() []connCase {
	var cases []connCase
	const chunkedReq = "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;name=value;quoted=\"a b\"\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-Trailer: t\r\nX-More: u\r\n\r\n"
	gz := gzipped("compressed text")
	bigText := strings.Repeat("0123456789", 3) // 30 bytes
	cases = []connCase{
		{
			name:  "content-length",
			ops:   []op{d0(withCL(req("POST", "/a?b=1", "Host: h\r\n"), "hello")), d1(ok200("1", "ok"))},
			want:  []string{`c0 POST /a?b=1 body="hello" -> 200 OK body="ok"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name:  "content-length zero and no body",
			ops:   []op{d0(withCL(req("POST", "/a", ""), "")), d1(ok200("1", ""))},
			want:  []string{`c0 POST /a -> 200 OK`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "chunked with extensions and trailers",
			ops: []op{
				d0(chunkedReq),
				d1("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n"),
			},
			want:  []string{`c0 POST /c body="hello world" -> 201 Created body="0123456789"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "chunked with bare LF line ends",
			ops: []op{
				d0("POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			},
			want:  []string{`c0 POST /c body="abc" -> 200 OK`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "transfer-encoding other than chunked in a response: close-delimited",
			ops: []op{
				d0(get("/t")),
				d1("HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nraw bytes until close"),
				end(1),
			},
			want:  []string{`c0 GET /t -> 200 OK body="raw bytes until close"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name:  "close-delimited response ended by FIN",
			ops:   []op{d0(get("/a")), d1("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end"), end(1), d0(get("/never"))},
			want:  []string{`c0 GET /a -> 200 OK body="until the end"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name:  "close-delimited response ended by Close",
			ops:   []op{d0(get("/a")), d1("HTTP/1.1 200 OK\r\n\r\nline 1\nline 2\n"), closeConn()},
			want:  []string{`c0 GET /a -> 200 OK body="line 1\nline 2\n"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "HEAD response has no body whatever its Content-Length",
			ops: []op{
				d0(req("HEAD", "/h", "\r\n")),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
				d0(get("/next")),
				d1(ok200("2", "next")),
			},
			want:  []string{`c0 HEAD /h -> 200 OK`, `c0 GET /next -> 200 OK body="next"`},
			stats: map[string]uint64{"pairs": 2},
		},
		{
			name: "204 and 304 have no body",
			ops: []op{
				d0(req("DELETE", "/x", "\r\n")),
				d1("HTTP/1.1 204 No Content\r\n\r\n"),
				d0(get("/y")),
				d1("HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"e\"\r\n\r\n"),
				d0(get("/z")),
				d1(ok200("3", "z")),
			},
			want: []string{
				`c0 DELETE /x -> 204 No Content`,
				`c0 GET /y -> 304 Not Modified`,
				`c0 GET /z -> 200 OK body="z"`,
			},
			stats: map[string]uint64{"pairs": 3},
		},
		{
			name: "100 Continue then 200 is one pair",
			ops: []op{
				d0(req("PUT", "/up", "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n")),
				d1("HTTP/1.1 100 Continue\r\n\r\n"),
				d0("data"),
				d1("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"),
				d1(ok200("1", "stored")),
			},
			want:  []string{`c0 PUT /up body="data" -> 200 OK body="stored"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "early response waits for the rest of the request body",
			ops: []op{
				d0(withCL(req("POST", "/big", ""), "0123456789")[:45]),
				d1(withCL("HTTP/1.1 413 Payload Too Large\r\n", "too big")),
				d0(withCL(req("POST", "/big", ""), "0123456789")[45:]),
				d0(get("/after")),
				d1(ok200("2", "after")),
			},
			want: []string{
				`c0 POST /big body="0123456789" -> 413 Payload Too Large body="too big"`,
				`c0 GET /after -> 200 OK body="after"`,
			},
			stats: map[string]uint64{"pairs": 2},
		},
		{
			name: "101 upgrade is emitted, then the connection is skipped",
			ops: []op{
				d0(req("GET", "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")),
				d1("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
				d0("\x81\x85\x00\x00\x00\x00hello"),
				d0(get("/not-http-any-more")),
				d1(ok200("x", "no")),
			},
			want:  []string{`c0 GET /ws -> 101 Switching Protocols`},
			stats: map[string]uint64{"pairs": 1, "upgrades": 1},
			skip:  true,
		},
		{
			name: "CONNECT 200 starts a tunnel",
			ops: []op{
				d0(req("CONNECT", "example.com:443", "Host: example.com:443\r\n\r\n")),
				d1("HTTP/1.1 200 Connection established\r\n\r\n"),
				d0("\x16\x03\x01\x00\x05hello"),
			},
			want:  []string{`c0 CONNECT example.com:443 -> 200 Connection established`},
			stats: map[string]uint64{"pairs": 1, "upgrades": 1},
			skip:  true,
		},
		{
			name: "pipelining of 3 requests",
			ops: []op{
				d0(get("/1") + withCL(req("POST", "/2", ""), "two") + get("/3")),
				d1(ok200("1", "one") + "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" + ok200("3", "three")),
			},
			want: []string{
				`c0 GET /1 -> 200 OK body="one"`,
				`c0 POST /2 body="two" -> 404 Not Found`,
				`c0 GET /3 -> 200 OK body="three"`,
			},
			stats: map[string]uint64{"pairs": 3},
		},
		{
			name: "keep-alive reuse",
			ops: []op{
				d0(get("/1")), d1(ok200("1", "one")),
				d0(get("/2")), d1(ok200("2", "two")),
				d0("\r\n" + get("/3")), d1(ok200("3", "three")), // a stray CRLF between messages is allowed
			},
			want: []string{
				`c0 GET /1 -> 200 OK body="one"`,
				`c0 GET /2 -> 200 OK body="two"`,
				`c0 GET /3 -> 200 OK body="three"`,
			},
			stats: map[string]uint64{"pairs": 3},
		},
		{
			name: "body spanning many Data calls",
			ops: []op{
				d0(req("POST", "/p", "Content-Length: 26\r\n\r\n")),
				d0("abcdefgh"), d0("ijklmnop"), d0("qrstuvwx"), d0("yz"),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"), d1("res"), d1("ult"),
			},
			want:  []string{`c0 POST /p body="abcdefghijklmnopqrstuvwxyz" -> 200 OK body="result"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "gzip, x-gzip, deflate (zlib) and deflate (raw) bodies",
			ops: []op{
				d0(withCL(req("POST", "/g", "Content-Encoding: gzip\r\n"), gz)),
				d1(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: x-gzip\r\n", gzipped("x-gzip text"))),
				d0(get("/z")),
				d1(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n", zlibbed("zlib text"))),
				d0(get("/r")),
				d1("HTTP/1.1 200 OK\r\nContent-Encoding: Deflate\r\nTransfer-Encoding: chunked\r\n\r\n" +
					fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(deflated("raw deflate text")), deflated("raw deflate text"))),
			},
			want: []string{
				`c0 POST /g body="compressed text" -> 200 OK body="x-gzip text"`,
				`c0 GET /z -> 200 OK body="zlib text"`,
				`c0 GET /r -> 200 OK body="raw deflate text"`,
			},
			stats: map[string]uint64{"pairs": 3},
		},
		{
			name: "Decompress false keeps the raw bytes, which are binary",
			cfg:  Config{EmitPending: true},
			ops: []op{
				d0(get("/g")),
				d1(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", gz)),
			},
			want:  []string{`c0 GET /g -> 200 OK`},
			stats: map[string]uint64{"pairs": 1, "binary_bodies": 1},
		},
		{
			name: "corrupt gzip: decode error",
			ops: []op{
				d0(get("/g")),
				d1(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", gz[:len(gz)-6])),
			},
			want:  []string{`c0 GET /g -> 200 OK body="compressed text" (cut)`},
			stats: map[string]uint64{"pairs": 1, "decode_errors": 1},
		},
		{
			name: "compressed body cut before decoding",
			cfg:  Config{EmitPending: true, Decompress: true, MaxBodyBytes: 30},
			ops: []op{
				d0(get("/g")),
				d1(withCL("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n", gzipped(strings.Repeat("abcdefghijklmnopqrstuvwxyz", 20)))),
			},
			want:  []string{`c0 GET /g -> 200 OK body="abcdefghijklmnopqrs" (cut)`}, // what 30 bytes of gzip decode to
			stats: map[string]uint64{"pairs": 1, "decode_errors": 1, "body_truncated": 1},
		},
		{
			name: "body cap: Content-Length and chunked bodies cut, framing kept",
			cfg:  Config{EmitPending: true, MaxBodyBytes: 10},
			ops: []op{
				d0(withCL(req("POST", "/1", ""), bigText)),
				d1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n8\r\nijklmnop\r\n0\r\n\r\n"),
				d0(get("/2")),
				d1(ok200("2", "abcdefghiés")), // cut inside "é": the partial rune is dropped
			},
			want: []string{
				`c0 POST /1 body="0123456789" (cut) -> 200 OK body="abcdefghij" (cut)`,
				`c0 GET /2 -> 200 OK body="abcdefghi" (cut)`,
			},
			stats: map[string]uint64{"pairs": 2, "body_truncated": 3},
		},
		{
			name: "binary body becomes empty",
			ops: []op{
				d0(withCL(req("POST", "/bin", ""), "\xff\xfe\x00\x01")),
				d1(ok200("1", "text")),
			},
			want:  []string{`c0 POST /bin -> 200 OK body="text"`},
			stats: map[string]uint64{"pairs": 1, "binary_bodies": 1},
		},
		{
			name:  "TLS handshake is skipped",
			ops:   []op{d0("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), d1("\x16\x03\x03\x00\x7a\x02"), d0(get("/a"))},
			stats: map[string]uint64{"skipped_tls": 1},
			skip:  true,
		},
		{
			name:  "TLS application data at a mid-stream start is skipped",
			ops:   []op{d1("\x17\x03\x03\x01\x00abc")},
			stats: map[string]uint64{"skipped_tls": 1},
			skip:  true,
		},
		{
			name:  "HTTP/2 preface is skipped",
			ops:   []op{d0("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00"), d1("\x00\x00\x00\x04\x01\x00\x00\x00\x00")},
			stats: map[string]uint64{"skipped_http2": 1},
			skip:  true,
		},
		{
			name: "gap in a request body",
			ops: []op{
				d0(withCL(req("POST", "/1", ""), "0123456789")[:45]),
				gap(0),
				d0("789"),
				d1(ok200("1", "one")),
				d0(get("/2")),
				d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "requests_dropped_gap": 1, "resyncs": 2, "orphan_responses": 1},
		},
		{
			name: "gap in a response body",
			ops: []op{
				d0(get("/1")),
				d1(ok200("1", "a long response body")[:50]),
				gap(1),
				d1("nse body"),
				d0(get("/2")),
				d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "requests_dropped_gap": 1, "resyncs": 2},
		},
		{
			name: "gap between messages: a whole exchange lost",
			ops: []op{
				d0(get("/1")), d1(ok200("1", "one")),
				gap(0), // GET /2 lost
				d1(ok200("2", "two")),
				d0(get("/3")), d1(ok200("3", "three")),
			},
			want: []string{
				`c0 GET /1 -> 200 OK body="one"`,
				`c0 GET /3 -> 200 OK body="three"`,
			},
			stats: map[string]uint64{"pairs": 2, "resyncs": 2, "orphan_responses": 1},
		},
		{
			name: "gap with pipelined requests queued",
			ops: []op{
				d0(get("/1") + get("/2")),
				gap(0),
				d1(ok200("1", "one") + ok200("2", "two")),
				d0(get("/4")), d1(ok200("4", "four")),
			},
			want:  []string{`c0 GET /4 -> 200 OK body="four"`},
			stats: map[string]uint64{"pairs": 1, "requests_dropped_gap": 2, "resyncs": 2, "orphan_responses": 2},
		},
		{
			name: "mid-stream start in bodies resyncs at the next messages",
			ops: []op{
				d0("e of a request body\r\n{\"json\": true}"),
				d1("dy of a response\nHTTP/1.0 is mentioned here\n"),
				d0(get("/2")),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="ok"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "mid-stream start in headers, next message at a line start",
			ops: []op{
				d1("Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"),
				d0("Accept: */*\r\n\r\nPOST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
				d1("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"),
			},
			want:  []string{`c0 POST /3 body="x" -> 202 Accepted`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "response first: direction 0 is the server",
			ops: []op{
				d0(ok200("0", "orphan")),
				d1(get("/a")),
				d0(ok200("1", "a")),
			},
			want:  []string{`c1 GET /a -> 200 OK body="a"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 1},
		},
		{
			name: "server speaks first and is recognised",
			ops: []op{
				d0("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
				d1("not a request line\r\n"),
				d1(get("/b")),
				d0(ok200("1", "b")),
			},
			want:  []string{`c1 GET /b -> 200 OK body="b"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 1},
		},
		{
			name: "roles stay once decided: a status line from the client is garbage",
			ops: []op{
				d0(get("/1")), d1(ok200("1", "one")),
				d0(ok200("?", "wrong way")),
				d1(get("/also-wrong")),
				// The client's status line may have had an answer: /2 is
				// not published and its slot takes the next response.
				d0(get("/2")), d1(ok200("2", "two")),
				d0(get("/3")), d1(ok200("3", "three")),
			},
			want:  []string{`c0 GET /1 -> 200 OK body="one"`, `c0 GET /3 -> 200 OK body="three"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 2, "resyncs": 2, "requests_dropped_unaligned": 1, "orphan_responses": 1},
		},
		{
			name: "pending after timeout via Expire; its late response is dropped",
			ops: []op{
				d0(get("/slow")).after(time.Second),
				expire(30 * time.Second), // 29s old: not yet
				expire(31 * time.Second),
				d0(get("/2")).after(32 * time.Second),
				d1(ok200("1", "late")).after(33 * time.Second),
				d1(ok200("2", "two")).after(33 * time.Second),
			},
			want:  []string{`c0 GET /slow -> pending`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "pending_emitted": 1, "late_responses": 1},
		},
		{
			name: "custom PendingTimeout",
			cfg:  Config{EmitPending: true, PendingTimeout: time.Second},
			ops:  []op{d0(get("/a")), expire(999 * time.Millisecond), expire(time.Second)},
			want: []string{`c0 GET /a -> pending`}, stats: map[string]uint64{"pending_emitted": 1},
		},
		{
			name: "pending on Close, in order; an incomplete request is discarded",
			ops: []op{
				d0(get("/1") + get("/2") + withCL(req("POST", "/3", ""), "0123456789")[:45]),
				closeConn(),
				d0(get("/after-close")),
			},
			want:  []string{`c0 GET /1 -> pending`, `c0 GET /2 -> pending`},
			stats: map[string]uint64{"pending_emitted": 2, "incomplete": 1},
		},
		{
			name:  "EmitPending false drops",
			cfg:   Config{Decompress: true},
			ops:   []op{d0(get("/1")), expire(time.Minute), d0(get("/2")), closeConn()},
			stats: map[string]uint64{"pending_dropped": 2},
		},
		{
			name: "MaxPending overflow: the oldest is emitted as pending",
			cfg:  Config{EmitPending: true, MaxPending: 2},
			ops: []op{
				d0(get("/1") + get("/2") + get("/3")),
				d1(ok200("1", "one") + ok200("2", "two") + ok200("3", "three")),
			},
			want: []string{
				`c0 GET /1 -> pending`,
				`c0 GET /2 -> 200 OK body="two"`,
				`c0 GET /3 -> 200 OK body="three"`,
			},
			stats: map[string]uint64{"pairs": 2, "pending_emitted": 1, "queue_overflow": 1, "late_responses": 1},
		},
		{
			// The request of an orphan is unknown, and so is whether it has a
			// body: what follows its head decides.
			name: "orphan answering a HEAD: the next response follows its head",
			ops: []op{
				d0(req("HEAD", "/lost", "\r\n")),
				gap(0),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n"),
				d0(get("/2")),
				d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 1, "requests_dropped_gap": 1, "resyncs": 2},
		},
		{
			name: "orphan with a body: framed by its headers",
			ops: []op{
				d0(get("/lost")),
				gap(0),
				d1(withCL("HTTP/1.1 200 OK\r\n", `{"json": "20 bytes"}`)),
				d1("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
				d0(get("/2")),
				d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 2, "requests_dropped_gap": 1, "resyncs": 2},
		},
		{
			name: "late response to an expired HEAD is framed as one",
			ops: []op{
				d0(req("HEAD", "/1", "\r\n")),
				expire(time.Minute),
				d0(get("/2")),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
				d1(ok200("2", "two")),
			},
			want:  []string{`c0 HEAD /1 -> pending`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "pending_emitted": 1, "late_responses": 1},
		},
		{
			name:  "orphan response",
			ops:   []op{d0(get("/1")), d1(ok200("1", "one")), d1(ok200("x", "extra"))},
			want:  []string{`c0 GET /1 -> 200 OK body="one"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 1},
		},
		{
			name: "client garbage, then valid",
			ops: []op{
				d0(get("/1")), d1(ok200("1", "one")),
				d0("this is not http\r\nneither is this\r\n"),
				// Was the next response sent for the garbage or for /2?
				// Unknown: /2 is not published, its slot takes it.
				d0(get("/2")), d1(ok200("2", "two")),
				d0(get("/3")), d1(ok200("3", "three")),
			},
			want:  []string{`c0 GET /1 -> 200 OK body="one"`, `c0 GET /3 -> 200 OK body="three"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "requests_dropped_unaligned": 1, "orphan_responses": 1},
		},
		{
			name: "server garbage drops the queue, then valid",
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				d0(get("/1")),
				d1("HTTP/1.1 2xx Broken\r\n\r\n"),
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "requests_dropped_desync": 1},
		},
		{
			name: "server bytes skipped while resyncing drop the queue",
			ops: []op{
				d0(get("/1")),
				d1("HTTP/1.1 2xx Broken\r\n\r\n"), // the first server bytes: resync, not garbage
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 1, "requests_dropped_desync": 1},
		},
		{
			name: "conflicting Content-Length is garbage",
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				d0(req("POST", "/1", "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")),
				d1(bad400), // its slot takes the answer to it
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1},
		},
		{
			name: "equal repeated Content-Length is fine",
			ops: []op{
				d0(req("POST", "/1", "Content-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc")),
				d1(ok200("1", "ok")),
			},
			want:  []string{`c0 POST /1 body="abc" -> 200 OK body="ok"`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "header too big is garbage",
			cfg:  Config{EmitPending: true, MaxHeaderBytes: 100},
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				d0(req("GET", "/big", "X-Big: "+strings.Repeat("b", 200)+"\r\n\r\n")),
				d1(bad400), // its slot takes the answer to it
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1},
		},
		{
			name: "bad chunk size: its response is still owed and dropped",
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				d0("POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
				d1(withCL("HTTP/1.1 400 Bad Request\r\n", "bad")),
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "orphan_responses": 1},
		},
		{
			name: "request with a non-chunked transfer coding is garbage",
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				d0(req("POST", "/1", "Transfer-Encoding: gzip\r\n\r\n")),
				d1(bad400), // its slot takes the answer to it
				d0(get("/2")), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1},
		},
		{
			name: "a message that lost its end: the next start line is found",
			ops: []op{
				d0(get("/0")), d1(ok200("0", "zero")),
				// A server reads the second start line as a bad field of
				// the first request too, and answers that request.
				d0("GET /1 HTTP/1.1\r\nHost: a\r\n" + get("/2")),
				d1(bad400), d1(ok200("2", "two")),
			},
			want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
			stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1},
		},
		{
			name: "FIN in the middle of a response: the request becomes pending",
			ops: []op{
				d0(get("/1")),
				d1(ok200("1", "cut short")[:49]),
				end(1),
				closeConn(),
			},
			want:  []string{`c0 GET /1 -> pending`},
			stats: map[string]uint64{"pending_emitted": 1, "incomplete": 1},
		},
		{
			name: "response that starts before its request is an orphan",
			ops: []op{
				d1(ok200("?", "first")),
				d0(get("/1")),
				closeConn(),
			},
			want:  []string{`c0 GET /1 -> pending`},
			stats: map[string]uint64{"orphan_responses": 1, "pending_emitted": 1},
		},
		{
			name: "obsolete line folding and status without reason",
			ops: []op{
				d0(req("GET", "/f", "X-Long: part one\r\n  part two\r\n\r\n")),
				d1("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
			},
			want:  []string{`c0 GET /f -> 200`},
			stats: map[string]uint64{"pairs": 1},
		},
		{
			name: "extension methods in step; WebDAV methods; absolute-form target",
			ops: []op{
				d0("PROPFIND /dav HTTP/1.1\r\nDepth: 1\r\n\r\n"),
				d1(withCL("HTTP/1.1 207 Multi-Status\r\n", "<d/>")),
				d0("PURGE http://example.com/a HTTP/1.1\r\n\r\n"),
				d1("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
			},
			want:  []string{`c0 PROPFIND /dav -> 207 Multi-Status body="<d/>"`, `c0 PURGE http://example.com/a -> 200 OK`},
			stats: map[string]uint64{"pairs": 2},
		},
		{
			// At a resync point (here the start of the capture) only known
			// methods are trusted: "ET /x" could be the tail of "GET /x".
			name: "unknown method where sync is only a guess is skipped",
			ops: []op{
				d0("ET /x HTTP/1.1\r\n\r\n"),
				d1(ok200("x", "")),
				d0("PURGE /y HTTP/1.1\r\n\r\n"),
				d1(ok200("y", "")),
				d0(get("/z")),
				d1(ok200("z", "z")),
			},
			want:  []string{`c0 GET /z -> 200 OK body="z"`},
			stats: map[string]uint64{"pairs": 1, "orphan_responses": 2},
		},
	}
	cases = append(cases, startCases()...)
	cases = append(cases, ambiguousCases()...)
	cases = append(cases, connectCases()...)
	return append(cases, rejectedCases()...)
}

// startCases: where the stream's start was seen (Start), the first line is
// a message start and any token is a method; joined mid-stream, only the
// methods knownMethod lists are taken for one.
func startCases() []connCase {
	purge := req("PURGE", "/x", "Host: a\r\n\r\n")
	return []connCase{{
		name: "start seen: any method",
		ops: []op{
			start(0), start(1),
			d0(purge), d1(ok200("x", "purged")),
			d0(req("QUERY", "/q", "Content-Length: 3\r\n\r\nq=1") + req("M-SEARCH", "*", "\r\n") + req("get", "/lower", "\r\n")),
			d1(ok200("q", "found") + ok200("m", "ssdp") + ok200("l", "lower")),
		},
		want: []string{`c0 PURGE /x -> 200 OK body="purged"`, `c0 QUERY /q body="q=1" -> 200 OK body="found"`,
			`c0 M-SEARCH * -> 200 OK body="ssdp"`, `c0 get /lower -> 200 OK body="lower"`},
		stats: map[string]uint64{"pairs": 4},
	}, {
		name:  "mid-stream: an unknown method is not taken for a message start",
		ops:   []op{d0(purge), d1(ok200("x", "purged")), d0(get("/2")), d1(ok200("2", "two"))},
		want:  []string{`c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 1, "orphan_responses": 1},
	}, {
		name:  "start seen, not HTTP: searched quietly",
		ops:   []op{start(0), start(1), d0("\x00\x01 hello\r\n"), d1("+OK\r\n")},
		stats: map[string]uint64{},
	}, {
		name: "start seen: a refused first request keeps its slot",
		ops: []op{
			start(0), start(1),
			d0("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" + get("/2")), d1(bad400 + ok200("2", "two")),
		},
		want:  []string{`c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 1, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1},
	}, {
		name:  "Start after bytes changes nothing",
		ops:   []op{d0("T /x HTTP/1.1\r\n"), start(0), d0("\r\n"), d0(get("/2")), d1(ok200("2", "two"))},
		want:  []string{`c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 1},
	}}
}

// ambiguousCases: framing that a strict server and a lenient one read
// differently (request smuggling, response splitting). RFC 9112 section
// 6.3: with both Content-Length and Transfer-Encoding, chunked wins and the
// connection ends after the message; section 6.1: Transfer-Encoding in
// HTTP/1.0 is faulty framing. Nothing after such a message is paired.
func ambiguousCases() []connCase {
	return []connCase{{
		name: "request with Content-Length and chunked: chunked wins, then pairing stops",
		ops: []op{
			start(0), start(1),
			d0("POST /1 HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + get("/2")),
			d1(ok200("1", "one") + ok200("2", "two")),
		},
		want:  []string{`c0 POST /1 body="abc" -> 200 OK body="one"`},
		stats: map[string]uint64{"pairs": 1, "ambiguous_framing": 1},
		skip:  true,
	}, {
		name: "request with Content-Length and chunked, answered late: pairing stops after its response",
		ops: []op{
			start(0), start(1),
			d0(get("/0") + "POST /1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
			d0(get("/2")), d1(ok200("0", "zero")), d1(ok200("1", "one")), d1(ok200("2", "two")),
		},
		want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 POST /1 body="abc" -> 200 OK body="one"`},
		stats: map[string]uint64{"pairs": 2, "ambiguous_framing": 1},
		skip:  true,
	}, {
		name: "Transfer-Encoding in an HTTP/1.0 request: refused, then pairing stops",
		ops: []op{
			start(0), start(1),
			d0(get("/0") + "POST /1 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get("/2")),
			d1(ok200("0", "zero") + bad400 + ok200("2", "two")),
		},
		want:  []string{`c0 GET /0 -> 200 OK body="zero"`},
		stats: map[string]uint64{"pairs": 1, "ambiguous_framing": 1, "rejected_requests": 1, "garbage": 1, "resyncs": 1, "orphan_responses": 1},
		skip:  true,
	}, {
		name: "response with Content-Length and chunked: chunked wins, then pairing stops",
		ops: []op{
			start(0), start(1),
			d0(get("/1") + get("/2")),
			d1("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n" + ok200("2", "two")),
		},
		want:  []string{`c0 GET /1 -> 200 OK body="one"`},
		stats: map[string]uint64{"pairs": 1, "ambiguous_framing": 1, "requests_dropped_desync": 1},
		skip:  true,
	}, {
		name:  "Transfer-Encoding in an HTTP/1.0 response: pairing stops",
		ops:   []op{start(0), start(1), d0(get("/1")), d1("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n0\r\n\r\n")},
		stats: map[string]uint64{"ambiguous_framing": 1, "requests_dropped_desync": 1},
		skip:  true,
	}, {
		name: "obs-fold in another field is replaced with SP",
		ops: []op{
			start(0), start(1),
			d0("GET /1 HTTP/1.1\r\nX-A: a\r\n\tb\r\n\r\n" + get("/2")),
			d1(ok200("1", "one") + ok200("2", "two")),
		},
		want:  []string{`c0 GET /1 -> 200 OK body="one"`, `c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 2},
	}}
}

// connectCases: what a client sends after a CONNECT request's head is
// tunnel data (RFC 9110 section 9.3.6), never its body nor a request; once
// the server refuses the tunnel, the client speaks HTTP again.
func connectCases() []connCase {
	const connect = "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"
	const refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
	return []connCase{{
		name: "CONNECT: tunnel data sent before the 200 is not parsed",
		ops: []op{
			start(0), start(1),
			d0(connect + "\x16\x03\x01 hello"), d0(get("/in-tunnel")),
			d1("HTTP/1.1 200 Connection Established\r\n\r\n"),
		},
		want:  []string{`c0 CONNECT h:443 -> 200 Connection Established`},
		stats: map[string]uint64{"pairs": 1, "upgrades": 1},
		skip:  true,
	}, {
		name: "CONNECT with Content-Length: what follows is no body",
		ops: []op{
			start(0), start(1),
			d0("CONNECT h:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"),
			d1("HTTP/1.1 200 OK\r\n\r\n"),
		},
		want:  []string{`c0 CONNECT h:443 -> 200 OK`},
		stats: map[string]uint64{"pairs": 1, "upgrades": 1},
		skip:  true,
	}, {
		name: "CONNECT refused, the client waited: HTTP goes on",
		ops: []op{
			start(0), start(1),
			d0(connect), d1(refused), d0(get("/2")), d1(ok200("2", "two")),
		},
		want:  []string{`c0 CONNECT h:443 -> 407 Proxy Authentication Required`, `c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 2},
	}, {
		name: "CONNECT refused after tunnel data: aligned again once it is answered",
		ops: []op{
			start(0), start(1),
			d0(connect + "tunnel bytes\r\n"), d1(refused), d1(bad400),
			d0(get("/2")), d1(ok200("2", "two")),
		},
		want:  []string{`c0 CONNECT h:443 -> 407 Proxy Authentication Required`, `c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 2, "orphan_responses": 1},
	}}
}

// rejectedCases: a request head the parser refuses once its start line was
// read keeps its place in the queue, so that the server's answer to it
// (a 400) never goes to the next request; nothing is published for it.
// Each is run with the client pipelining and waiting.
func rejectedCases() []connCase {
	heads := []struct{ name, head string }{
		{"invalid field name", "GET /1 HTTP/1.1\r\nBad Name: x\r\n\r\n"},
		{"space in the target", "GET /1 x HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"control byte in the target", "GET /1\x01 HTTP/1.1\r\nHost: a\r\n\r\n"},
		{"bad Content-Length", "POST /1 HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"},
		{"negative Content-Length", "POST /1 HTTP/1.1\r\nContent-Length: -1\r\n\r\n"},
		{"unknown transfer coding", "POST /1 HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n"},
		// RFC 9110 section 5.5, RFC 9112 sections 2.2 and 5.2: what servers
		// may reject as well as repair; those that reject answer a 400.
		{"bare CR in a field value", "GET /1 HTTP/1.1\r\nX-A: a\rb\r\n\r\n"},
		{"NUL in a field value", "GET /1 HTTP/1.1\r\nX-A: a\x00b\r\n\r\n"},
		{"whitespace before the first field", "GET /1 HTTP/1.1\r\n Host: a\r\n\r\n"},
		{"obs-fold in Transfer-Encoding", "GET /1 HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"},
		{"obs-fold in Content-Length", "GET /1 HTTP/1.1\r\nContent-Length:\r\n 0\r\n\r\n"},
	}
	var cases []connCase
	for _, h := range heads {
		stats := map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "rejected_requests": 1, "orphan_responses": 1}
		want := []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`}
		cases = append(cases, connCase{
			name:  "rejected request keeps its slot, pipelined: " + h.name,
			ops:   []op{d0(get("/0")), d1(ok200("0", "zero")), d0(h.head + get("/2")), d1(bad400 + ok200("2", "two"))},
			want:  want,
			stats: stats,
		}, connCase{
			name:  "rejected request keeps its slot: " + h.name,
			ops:   []op{d0(get("/0")), d1(ok200("0", "zero")), d0(h.head), d1(bad400), d0(get("/2")), d1(ok200("2", "two"))},
			want:  want,
			stats: stats,
		})
	}
	return append(cases, connCase{
		// The server's answer to bytes that were no request may come
		// after the next request: nothing pairs until that is settled.
		name: "client garbage pipelined with a request: not paired until aligned",
		ops: []op{
			d0(get("/0")), d1(ok200("0", "zero")),
			d0("hello there\r\n" + get("/2")), d1(bad400 + ok200("2", "two")),
			d0(get("/3")), d1(ok200("3", "three")),
		},
		want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /3 -> 200 OK body="three"`},
		stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "requests_dropped_unaligned": 1, "orphan_responses": 2},
	}, connCase{
		name: "client garbage answered before the next request: aligned again",
		ops: []op{
			d0(get("/0")), d1(ok200("0", "zero")),
			d0("hello there\r\n"), d1(bad400),
			d0(get("/2")), d1(ok200("2", "two")),
		},
		want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /2 -> 200 OK body="two"`},
		stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "orphan_responses": 1},
	}, connCase{
		name: "client garbage, a request still waiting: not aligned",
		ops: []op{
			d0(get("/0")), d0("hello there\r\n"), d1(ok200("0", "zero")),
			d0(get("/2")), d1(bad400 + ok200("2", "two")),
			d0(get("/3")), d1(ok200("3", "three")),
		},
		want:  []string{`c0 GET /0 -> 200 OK body="zero"`, `c0 GET /3 -> 200 OK body="three"`},
		stats: map[string]uint64{"pairs": 2, "garbage": 1, "resyncs": 1, "requests_dropped_unaligned": 1, "orphan_responses": 2},
	})
}

func TestConn(t *testing.T) {
	for _, tc := range connCases() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg == (Config{}) {
				cfg = defaultCfg
			}
			// Whole, byte by byte, and in odd pieces: the result must not
			// depend on how the bytes were cut.
			for _, split := range []int{0, 1, 3, 7} {
				got, stats, c := run(cfg, tc.ops, split)
				if !slices.Equal(got, tc.want) {
					t.Errorf("split %d: exchanges:\n got  %q\n want %q", split, got, tc.want)
				}
				if !maps.Equal(stats, tc.stats) {
					t.Errorf("split %d: counters:\n got  %v\n want %v", split, stats, tc.stats)
				}
				if c.Skipping() != tc.skip {
					t.Errorf("split %d: Skipping() = %v, want %v", split, c.Skipping(), tc.skip)
				}
			}
		})
	}
}
