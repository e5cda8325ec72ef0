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
