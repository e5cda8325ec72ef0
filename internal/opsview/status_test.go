package opsview_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

func TestVerdict(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		s     opsview.LBStatus
		known bool
		want  string
		why   string
	}{
		"mirroring":                  {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour), Records: 120}, true, opsview.VerdictMirroring, ""},
		"new sessions, no traffic":   {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-4 * time.Minute)}, true, opsview.VerdictNoTraffic, "traffic shows within"},
		"old sessions, no traffic":   {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour)}, true, opsview.VerdictSilent, "security group"},
		"old sessions, metrics gone": {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour)}, false, opsview.VerdictSilent, "could not be read"},
		"no targets":                 {opsview.LBStatus{}, true, opsview.VerdictNotMirrored, "no target"},
		"not created yet":            {opsview.LBStatus{Targets: 2, Missing: 2}, true, opsview.VerdictNotMirrored, "not created yet"},
		"conflicts":                  {opsview.LBStatus{Targets: 1, Conflicts: 1}, true, opsview.VerdictNotMirrored, "foreign sessions"},
		"unsupported":                {opsview.LBStatus{Targets: 1, Unsupported: 1}, true, opsview.VerdictNotMirrored, "cannot be a mirror source"},
	} {
		got, why := opsview.Verdict(tc.s, tc.known, now)
		if got != tc.want || !strings.Contains(strings.Join(why, "; "), tc.why) {
			t.Errorf("%s: %s %v, want %s with %q", name, got, why, tc.want, tc.why)
		}
	}
}

// A verdict of each kind, against the simulated account: traffic on two
// load balancers, old sessions without traffic on one, sessions made a
// minute ago on another, and one with no target.
func TestStatusGolden(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.Acct
	fresh, err := a.AddLoadBalancer("application", w.VPC, "fresh-alb", map[string]string{sampleworld.ClassicTagKey: sampleworld.ClassicTagValue})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := a.AddTargetGroup(fresh, "instance")
	if err != nil {
		t.Fatal(err)
	}
	in, _, err := a.AddInstance(w.VPC, "m5.large")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Register(tg, in); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddLoadBalancer("network", w.VPC, "idle-nlb", map[string]string{sampleworld.ClassicTagKey: sampleworld.ClassicTagValue}); err != nil {
		t.Fatal(err)
	}
	o, err := orchestrator.New(w.cfg, w.Clients(), w.Clock, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	res := o.Reconcile(ctx, time.Time{})
	if err := w.PublishReconcile(ctx, res); err != nil {
		t.Fatal(err)
	}
	w.Clock.Advance(time.Minute)
	lbs, err := w.reader().Selection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, lb := range lbs {
		if lb.ARN == w.ALB || lb.ARN == w.Classic {
			series := make([]float64, 15)
			for i := range series {
				series[i] = float64(40 + i)
			}
			if err := w.PublishTraffic(ctx, lb.VNI, series); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := opsview.GatherStatus(ctx, w.reader(), w.CloudWatch(), w.scope(), w.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := st.Write(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden", b.Bytes())
	verdicts := map[string]string{}
	for _, lb := range st.LoadBalancers {
		verdicts[lb.Name] = lb.Verdict
	}
	for name, want := range map[string]string{
		"web-alb": opsview.VerdictMirroring, "legacy-clb": opsview.VerdictMirroring, "api-nlb": opsview.VerdictSilent,
		"fresh-alb": opsview.VerdictNoTraffic, "idle-nlb": opsview.VerdictNotMirrored,
	} {
		if verdicts[name] != want {
			t.Errorf("%s: %q, want %q", name, verdicts[name], want)
		}
	}
	if st.LastReconcile == nil || st.LastReconcile.Counts["Created"] != float64(res.Created) {
		t.Errorf("last reconcile %+v, the reconcile created %d", st.LastReconcile, res.Created)
	}
}
