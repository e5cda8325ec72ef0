package h1suite

import (
	"strings"
	"testing"

	"github.com/apitap/apitap/internal/record"
)

// TestWrongPairsCatches shows that the pairing check of TestSuite fails on
// the mistakes it is there for: a response taken by another request, two
// responses out of order, and a server refusal given to the wrong request.
func TestWrongPairsCatches(t *testing.T) {
	resp := func(id string) *message {
		m := message{status: 200}
		if id != "" {
			m.headers = []record.Header{{Name: "X-Echo-Id", Value: id}}
		} else {
			m.status = 400
		}
		return &m
	}
	get := func(target string) message { return message{method: "GET", target: target} }
	conv := conversation{served: []served{{method: "GET", target: "/a"}, {method: "GET", target: "/b"}}}
	split := []piece{{method: "GET"}, {method: "GET"}, {method: "POST"}}

	right := []exchange{{req: get("/a"), resp: resp("1")}, {req: get("/b"), resp: resp("2")}, {req: message{method: "POST", target: "/c"}, resp: resp("")}}
	if bad := wrongPairs(right, conv, split); len(bad) != 0 {
		t.Errorf("right pairs reported wrong: %q", bad)
	}
	for _, tc := range []struct {
		name string
		xs   []exchange
		want string
	}{
		{"swapped", []exchange{{req: get("/a"), resp: resp("2")}, {req: get("/b"), resp: resp("1")}}, "paired with the response to request"},
		{"shifted", []exchange{{req: get("/b"), resp: resp("1")}}, "paired with the response to request 1"},
		{"unknown id", []exchange{{req: get("/a"), resp: resp("3")}}, "never sent"},
		{"refusal not last", []exchange{{req: get("/a"), resp: resp("")}, {req: get("/b"), resp: resp("2")}}, "a later pair follows"},
		{"refusal of another request", []exchange{{req: get("/a"), resp: resp("1")}, {req: get("/b"), resp: resp("2")}, {req: get("/c"), resp: resp("")}}, "refusal of a POST request"},
	} {
		bad := wrongPairs(tc.xs, conv, split)
		if !strings.Contains(strings.Join(bad, "\n"), tc.want) {
			t.Errorf("%s: wrongPairs = %q, want a report containing %q", tc.name, bad, tc.want)
		}
	}
}

// TestFieldDiffsCatches shows that the field comparison of TestSuite fails
// on each field it compares.
func TestFieldDiffsCatches(t *testing.T) {
	want := []suiteRequest{{Method: "POST", Target: "/a", Version: "HTTP/1.1", Headers: [][2]string{{"HOST", "x"}}, Body: "hi"}}
	good := message{method: "POST", target: "/a", proto: "HTTP/1.1", headers: []record.Header{{Name: "Host", Value: "x"}}, body: []byte("hi")}
	if d := fieldDiffs([]exchange{{req: good}}, want, true); len(d) != 0 {
		t.Errorf("equal requests reported different: %q", d)
	}
	for kind, change := range map[string]func(*message){
		"method":  func(m *message) { m.method = "PUT" },
		"target":  func(m *message) { m.target = "/b" },
		"version": func(m *message) { m.proto = "HTTP/1.0" },
		"headers": func(m *message) { m.headers = []record.Header{{Name: "Host", Value: "y"}} },
		"body":    func(m *message) { m.body = []byte("ho") },
	} {
		m := good
		change(&m)
		d := fieldDiffs([]exchange{{req: m}}, want, true)
		if len(d) != 1 || !strings.HasPrefix(d[0], kind+":") {
			t.Errorf("%s changed: fieldDiffs = %q, want one %q difference", kind, d, kind)
		}
	}
	if d := fieldDiffs(nil, want, true); len(d) != 1 || !strings.HasPrefix(d[0], "missing:") {
		t.Errorf("nothing emitted: fieldDiffs = %q, want a missing request", d)
	}
	if d := fieldDiffs([]exchange{{req: good}, {req: good}}, want, true); len(d) != 1 || !strings.HasPrefix(d[0], "extra:") {
		t.Errorf("two emitted: fieldDiffs = %q, want an extra request", d)
	}
}
