package opsview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/apitap/apitap/internal/opsview"
)

// Every load balancer of the region, each reason one cannot be selected,
// and each kind of target, against the simulated account.
func TestConnectionsGolden(t *testing.T) {
	w := newWorld(t)
	c, err := opsview.GatherConnections(context.Background(), w.reader(), w.scope())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "connections.golden", b.Bytes())

	why := map[string]string{}
	for _, lb := range c.LoadBalancers {
		why[lb.Name] = lb.Why
	}
	for name, want := range map[string]string{
		"apitap-mirror":   "the stack's own load balancer",
		"other-vpc-alb":   "not in the stack's VPC",
		"inspection-gwlb": "a gateway load balancer",
		"empty-nlb":       "no targets",
		"functions-alb":   "lambda targets only",
		"web-alb":         "",
		"legacy-clb":      "",
	} {
		if got := why[name]; (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("%s: not selectable because %q, want %q", name, got, want)
		}
	}
	j, err := json.Marshal(c)
	if err != nil || !json.Valid(j) {
		t.Fatalf("JSON: %v", err)
	}
}
