// Package h1suite runs internal/http1 against gunicorn's HTTP/1.1 request
// parser test suite, fed as real connections to a strict server (Go's
// net/http): see TestSuite and testdata/gunicorn/README.md.
package h1suite

//go:generate go run ./gen -src testdata/gunicorn -out testdata/cases.json

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
)

// suiteCase mirrors gen.Case; strings standing for bytes are Latin-1.
type suiteCase struct {
	Name     string         `json:"name"`
	Input    string         `json:"input"`
	Requests []suiteRequest `json:"requests"`
	Error    string         `json:"error"`
	Options  []string       `json:"options"`
}

type suiteRequest struct {
	Method  string      `json:"method"`
	Target  string      `json:"target"`
	Version string      `json:"version"`
	Headers [][2]string `json:"headers"`
	Body    string      `json:"body"`
}

func loadCases(t *testing.T) []suiteCase {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatalf("read the suite's cases: %v", err)
	}
	var cases []suiteCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatalf("decode testdata/cases.json: %v", err)
	}
	return cases
}

// fromLatin1 turns a Latin-1 string of the cases file back into its bytes.
func fromLatin1(s string) []byte {
	b := make([]byte, 0, len(s))
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// judged says whether the suite's verdict on c is about HTTP itself. A case
// that needs gunicorn options is about gunicorn, except for valid cases
// that only raise its size limits (the requests are valid HTTP anyway).
func judged(c suiteCase) bool {
	for _, o := range c.Options {
		if c.Error != "" || !strings.HasPrefix(o, "limit_") {
			return false
		}
	}
	return true
}

// message is a copy of what the parser emitted, taken inside the callback
// (an http1.Exchange is valid only during it).
type message struct {
	method, target, proto string
	status                int
	headers               []record.Header
	body                  []byte
}

func copyMessage(m *http1.Message) message {
	h := make([]record.Header, len(m.Headers))
	for i, f := range m.Headers {
		h[i] = record.Header{Name: strings.Clone(f.Name), Value: strings.Clone(f.Value)}
	}
	return message{
		method: strings.Clone(m.Method), target: strings.Clone(m.Target), proto: strings.Clone(m.Proto),
		status: m.StatusCode, headers: h, body: bytes.Clone(m.Body),
	}
}

func (m message) header(name string) (string, bool) {
	for _, h := range m.headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

type exchange struct {
	req  message
	resp *message // nil: emitted pending
}

// feed gives the conversation to an http1.Conn as the sniffer would: the
// connection is seen from its SYN on, the client is direction 0, each
// piece of bytes in the order the client saw it, FINs, then the close.
func feed(events []event) ([]exchange, *http1.Stats) {
	var stats http1.Stats
	var out []exchange
	cfg := http1.Config{EmitPending: true}
	c := http1.NewConn(&cfg, &stats, func(x *http1.Exchange) {
		e := exchange{req: copyMessage(x.Request)}
		if x.Response != nil {
			r := copyMessage(x.Response)
			e.resp = &r
		}
		out = append(out, e)
	})
	ts := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Start(0)
	c.Start(1)
	for _, ev := range events {
		ts = ts.Add(time.Millisecond)
		if ev.end {
			c.End(ev.dir, ts)
		} else {
			c.Data(ev.dir, ev.data, ts)
		}
	}
	c.Close(ts.Add(time.Millisecond))
	return out, &stats
}

// refusals counts what the parser records when it does not publish a
// request as sent: a refused head, bytes that were no request, requests
// held back behind them, framing it will not guess, a message cut short.
func refusals(s *http1.Stats) uint64 {
	return s.RejectedRequests.Load() + s.Garbage.Load() + s.RequestsDroppedUnaligned.Load() +
		s.AmbiguousFraming.Load() + s.Incomplete.Load() + s.RequestsDroppedDesync.Load()
}

// wrongPairs checks every emitted pair against the server's own record.
// A response with X-Echo-Id n answers the n-th request the server served:
// the pair's request must be that one (method, target, and the body the
// server read), and ids must rise. A response without an id is net/http
// refusing the bytes after the requests it served (it then closes): it must
// be the last pair, and when net/http can read that request's head, the
// pair's request must be it.
func wrongPairs(xs []exchange, conv conversation, split []piece) []string {
	var bad []string
	last := 0
	for i, x := range xs {
		if x.resp == nil {
			continue
		}
		idText, ok := x.resp.header("X-Echo-Id")
		if !ok {
			for _, y := range xs[i+1:] {
				if y.resp != nil {
					bad = append(bad, fmt.Sprintf("%s %q paired with the server's %d refusal, but a later pair follows", x.req.method, x.req.target, x.resp.status))
					break
				}
			}
			if next := len(conv.served); next < len(split) && split[next].method != "" {
				if m := split[next].method; m != x.req.method {
					bad = append(bad, fmt.Sprintf("%s %q paired with the server's %d refusal of a %s request", x.req.method, x.req.target, x.resp.status, m))
				}
			}
			continue
		}
		id, err := strconv.Atoi(idText)
		if err != nil || id < 1 || id > len(conv.served) {
			bad = append(bad, fmt.Sprintf("%s %q paired with a response whose X-Echo-Id %q the server never sent", x.req.method, x.req.target, idText))
			continue
		}
		s := conv.served[id-1]
		if s.method != x.req.method || s.target != x.req.target || !bytes.Equal(s.body, x.req.body) && x.req.body != nil {
			bad = append(bad, fmt.Sprintf("%s %q (body %q) paired with the response to request %d, %s %q (body %q)", x.req.method, x.req.target, x.req.body, id, s.method, s.target, s.body))
		}
		if id <= last {
			bad = append(bad, fmt.Sprintf("%s %q paired with response %d after response %d", x.req.method, x.req.target, id, last))
		}
		last = id
	}
	return bad
}

// fieldDiffs compares the requests the parser emitted with the suite's.
// Header names are compared ignoring case (gunicorn upper-cases them);
// trailers are not compared (the parser does not keep them, by design).
func fieldDiffs(xs []exchange, want []suiteRequest, sentAll bool) []string {
	var diffs []string
	for i, w := range want {
		if i >= len(xs) {
			if sentAll {
				diffs = append(diffs, fmt.Sprintf("missing: request %d (%s %q) not emitted", i+1, w.Method, w.Target))
			}
			break
		}
		g := xs[i].req
		if g.method != w.Method {
			diffs = append(diffs, fmt.Sprintf("method: request %d is %q, want %q", i+1, g.method, w.Method))
		}
		if g.target != w.Target {
			diffs = append(diffs, fmt.Sprintf("target: request %d is %q, want %q", i+1, g.target, w.Target))
		}
		if g.proto != w.Version {
			diffs = append(diffs, fmt.Sprintf("version: request %d is %q, want %q", i+1, g.proto, w.Version))
		}
		if !sameHeaders(g.headers, w.Headers) {
			diffs = append(diffs, fmt.Sprintf("headers: request %d has %q, want %q", i+1, g.headers, w.Headers))
		}
		if wb := fromLatin1(w.Body); !bytes.Equal(g.body, wb) {
			diffs = append(diffs, fmt.Sprintf("body: request %d has %q, want %q", i+1, g.body, wb))
		}
	}
	if len(xs) > len(want) {
		diffs = append(diffs, fmt.Sprintf("extra: %d requests emitted, the suite has %d", len(xs), len(want)))
	}
	return diffs
}

func sameHeaders(got []record.Header, want [][2]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i, w := range want {
		if !strings.EqualFold(got[i].Name, w[0]) || got[i].Value != string(fromLatin1(w[1])) {
			return false
		}
	}
	return true
}

// kind is the first word of a disagreement ("headers", "accepted", ...).
func kind(d string) string {
	k, _, _ := strings.Cut(d, ":")
	return k
}

// mode is one way of sending a case.
type mode struct {
	name      string
	pipelined bool
	sandwich  bool // a plain GET before and after the case, all in one write
}

var modes = []mode{
	{name: "sequential"},
	{name: "pipelined", pipelined: true},
	{name: "sandwiched", pipelined: true, sandwich: true},
}

// The requests put around a case in the sandwiched mode: the one before has
// a response on its way when the case's bytes arrive, the one after must not
// take the case's response.
var (
	before = suiteRequest{Method: "GET", Target: "/h1suite-before", Version: "HTTP/1.1", Headers: [][2]string{{"HOST", "h1suite"}}}
	after  = suiteRequest{Method: "GET", Target: "/h1suite-after", Version: "HTTP/1.1", Headers: [][2]string{{"HOST", "h1suite"}}}
)

func wire(r suiteRequest) []byte {
	return []byte(r.Method + " " + r.Target + " " + r.Version + "\r\nHost: h1suite\r\n\r\n")
}

// outcome is what one case did in one mode.
type outcome struct {
	wrong []string // wrong pairs: always a failure
	diffs []string // disagreements with the suite
	note  string   // how an invalid case was handled
}

func runCase(t *testing.T, s *echoServer, c suiteCase, m mode) outcome {
	input := fromLatin1(c.Input)
	want := c.Requests
	if m.sandwich {
		input = slices.Concat(wire(before), input, wire(after))
		want = slices.Concat([]suiteRequest{before}, want)
		// After a CONNECT that succeeds the connection is a tunnel (RFC 9110
		// section 9.3.6): the request after it is tunnel data, not HTTP.
		if !slices.ContainsFunc(c.Requests, func(r suiteRequest) bool { return r.Method == "CONNECT" }) {
			want = append(want, after)
		}
	}
	split := splitRequests(input)
	conv, err := converse(s, split, m.pipelined)
	if err != nil {
		t.Fatalf("%s (%s): %v", c.Name, m.name, err)
	}
	xs, stats := feed(conv.events)

	var o outcome
	o.wrong = wrongPairs(xs, conv, split)
	if m.sandwich && (len(xs) == 0 || xs[0].req.target != before.Target || xs[0].resp == nil) {
		o.wrong = append(o.wrong, "the request before the case was not paired with its response")
	}
	if !judged(c) {
		return o
	}
	if c.Error == "" {
		// The server may close after a request (HTTP/1.0, Connection:
		// close), and the sandwich's last request is then not answered:
		// it is emitted pending, which the comparison allows.
		o.diffs = fieldDiffs(xs, want, conv.sentAll)
		return o
	}
	// Invalid: nothing of the bad message may be published as sent, and
	// the refusal must be counted. In the sandwich, the request before it is
	// expected, and the one after may be published only if the parser and
	// the server both found where the bad message ended.
	var published []exchange
	for _, x := range xs {
		if x.req.target != before.Target && x.req.target != after.Target {
			published = append(published, x)
		}
	}
	switch {
	case len(published) > 0:
		x := published[0]
		o.diffs = append(o.diffs, fmt.Sprintf("accepted: %d request(s) published, first %s %q, %s", len(published), x.req.method, x.req.target, verdict(x)))
	case refusals(stats) > 0:
		o.note = "refused"
	case stats.OrphanResponses.Load() > 0:
		o.diffs = append(o.diffs, "quiet: nothing published; only the server's answer was counted, as an orphan response")
	default:
		o.diffs = append(o.diffs, "uncounted: nothing published and nothing counted")
	}
	return o
}

// verdict says what the server did with a request the parser published.
func verdict(x exchange) string {
	switch {
	case x.resp == nil:
		return "no response (pending)"
	default:
		if _, ok := x.resp.header("X-Echo-Id"); ok {
			return "which the server served"
		}
		return fmt.Sprintf("which the server refused (%d)", x.resp.status)
	}
}

// known lists, as "case kind", where the parser disagrees with gunicorn's
// suite, and why that is right for a sniffer. None of them is a wrong pair
// (those always fail). TestSuite fails on a disagreement not listed here,
// and on an entry that no longer occurs, so that the list stays true.
var known = func() map[string]string {
	m := map[string]string{}
	add := func(kind, why string, names ...string) {
		for _, n := range names {
			m[n+" "+kind] = why
		}
	}
	add("quiet", "the first line of a stream is no request line: by design (package doc) the stream is then searched quietly, "+
		"as one joined mid-way would be; nothing is published and the server's 400 is counted as an orphan response, "+
		"but no refusal counter moves (in the sandwiched mode, where the client is known, it is counted as garbage)",
		"invalid/002", "invalid/003", "invalid/003b", "invalid/004", "invalid/018", "invalid/nonascii_01", "invalid/nonascii_02",
		"invalid/prefix_01", "invalid/prefix_02", "invalid/prefix_05", "invalid/prefix_06", "invalid/version_01", "invalid/version_02")
	add("accepted", "gunicorn is stricter than HTTP or than the strict server: the server served the request, and the parser pairs it with that answer "+
		"(default size limits, obs-fold, bare LF, CL+TE (counted as ambiguous framing), forbidden trailer fields, unusual targets)",
		"invalid/007", "invalid/008", "invalid/009", "invalid/041", "invalid/obs_fold_01",
		"invalid/rfc9110_trailer_forbidden_cl_01", "invalid/rfc9110_trailer_forbidden_host_01", "invalid/rfc9110_trailer_forbidden_te_01",
		"invalid/rfc9112_bare_lf_01", "invalid/rfc9112_smuggle_cl_te_chunked_01", "invalid/rfc9112_target_asterisk_non_options_01",
		"invalid/rfc9112_target_authority_non_connect_01", "invalid/rfc9112_target_non_ascii_01", "invalid/rfc9112_target_non_ascii_02")
	add("accepted", "the parser is more lenient than the server and publishes the request with the 400 the server sent it, the right answer: "+
		"its framing is the server's (a head that ends where the server's ends, a body or chunk that ends where the server's does), "+
		"only a rule the server enforces is not checked (Host missing or repeated, CTL in a value, target form, \"5, 5\" lengths, "+
		"OWS or bare CR in a chunk line, two leading empty lines)",
		"invalid/003c", "invalid/006", "invalid/016", "invalid/017", "invalid/042", "invalid/chunked_09", "invalid/chunked_14",
		"invalid/rfc9110_field_value_ctl_bel_01", "invalid/rfc9110_field_value_ctl_del_01", "invalid/rfc9112_leading_crlf_02",
		"invalid/rfc9112_smuggle_cl_list_form_01", "invalid/rfc9112_target_relative_01")
	add("accepted", "sandwiched only: the chunked body lacks its last CRLF, so the request after it reads as a trailer line, "+
		"for the server too, which refuses the whole; the parser does not check trailer lines and pairs the POST with that 400",
		"invalid/rfc9112_chunked_missing_final_crlf_01")
	const closing = "the first request closes the connection (HTTP/1.0, Connection: close) and gunicorn reads no further; " +
		"the client sent a second request all the same, which got no response and is published as pending"
	for _, k := range []string{"extra", "target", "headers"} {
		add(k, closing, "valid/019", "valid/021")
	}
	add("headers", "gunicorn drops header names with '_' (its default header_map); the parser keeps the headers as sent", "valid/040")
	add("missing", "the case's body is 8599 bytes but its Content-Length says 17914: the request never completes on the wire, "+
		"and the parser counts it incomplete instead of publishing it", "valid/099")
	return m
}()

// TestSuite sends every case of gunicorn's suite to a strict server, feeds
// what crossed the socket to internal/http1, and checks that no pair is
// wrong (always), that the parser agrees with the suite on every field of
// the valid requests, and that it refuses, and counts, the invalid ones.
func TestSuite(t *testing.T) {
	cases := loadCases(t)
	s := startEchoServer(t)

	type tally struct{ valid, validAgreed, invalid, invalidRefused, optionCases int }
	var counts tally
	kinds := map[string]int{}
	seen := map[string]bool{}
	for _, c := range cases {
		if !judged(c) {
			counts.optionCases++
		} else if c.Error == "" {
			counts.valid++
		} else {
			counts.invalid++
		}
		agreed := true
		for _, m := range modes {
			o := runCase(t, s, c, m)
			for _, w := range o.wrong {
				t.Errorf("%s (%s): WRONG PAIR: %s\ninput %q", c.Name, m.name, w, c.Input)
			}
			for _, d := range o.diffs {
				agreed = false
				kinds[m.name+" "+kind(d)]++
				key := c.Name + " " + kind(d)
				seen[key] = true
				if _, ok := known[key]; !ok {
					t.Errorf("%s (%s): disagrees with the suite: %s\ninput %q", c.Name, m.name, d, c.Input)
				}
			}
		}
		if !agreed {
			continue
		}
		if judged(c) && c.Error == "" {
			counts.validAgreed++
		} else if judged(c) {
			counts.invalidRefused++
		}
	}
	for _, name := range slices.Sorted(maps.Keys(known)) {
		if !seen[name] {
			t.Errorf("known lists %q, which no longer occurs: remove it", name)
		}
	}
	t.Logf("cases %d: valid %d (agreed in every mode %d), invalid %d (refused and counted in every mode %d), gunicorn-option cases %d (pairing checked only)",
		len(cases), counts.valid, counts.validAgreed, counts.invalid, counts.invalidRefused, counts.optionCases)
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		t.Logf("disagreements %s: %d", k, kinds[k])
	}
}
