package opsview_test

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

var update = flag.Bool("update", false, "rewrite the golden files")

// world is the sample world (events/README.md) mirrored by a reconcile,
// plus a load balancer for every reason one cannot be selected, a foreign
// session, and instance types of every kind of support.
type world struct {
	*sampleworld.World
	cfg orchestrator.Config
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w, err := sampleworld.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	env := w.Env()
	cfg, err := lambdafn.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	a := w.Acct
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	other := a.AddVPC()
	elsewhere, err := a.AddLoadBalancer("application", other, "other-vpc-alb", map[string]string{sampleworld.ClassicTagKey: sampleworld.ClassicTagValue})
	must(err)
	tg, err := a.AddTargetGroup(elsewhere, "instance")
	must(err)
	far, _, err := a.AddInstance(other, "m5.large")
	must(err)
	must(a.Register(tg, far))
	gwlb, err := a.AddLoadBalancer("gateway", w.VPC, "inspection-gwlb", nil)
	must(err)
	gtg, err := a.AddTargetGroup(gwlb, "instance")
	must(err)
	appliance, _, err := a.AddInstance(w.VPC, "c5.xlarge")
	must(err)
	must(a.Register(gtg, appliance))
	_, err = a.AddLoadBalancer("network", w.VPC, "empty-nlb", nil)
	must(err)
	fnLB, err := a.AddLoadBalancer("application", w.VPC, "functions-alb", nil)
	must(err)
	ltg, err := a.AddTargetGroup(fnLB, "lambda")
	must(err)
	must(a.Register(ltg, "arn:aws:lambda:"+awssim.DefaultRegion+":"+awssim.DefaultAccountID+":function:thumbnails"))
	legacy, err := a.AddLoadBalancer("application", w.VPC, "legacy-alb", nil)
	must(err)
	xtg, err := a.AddTargetGroup(legacy, "instance")
	must(err)
	old, _, err := a.AddInstance(w.VPC, "t2.micro")
	must(err)
	c4, _, err := a.AddInstance(w.VPC, "c4.large")
	must(err)
	must(a.Register(xtg, old, c4))

	ctx := context.Background()
	must(w.Mirror(ctx, cfg))
	// A foreign session on instance 5's interface, by another team.
	collector, err := a.AddLoadBalancer("network", w.VPC, "netsec-collector", nil)
	must(err)
	theirs, err := a.AddMirrorTarget(collector)
	must(err)
	_, err = a.AddSession(awssim.SessionSpec{ENI: w.ID(sampleworld.SampleENI(5)), Target: theirs, Filter: a.AddMirrorFilter(),
		Number: 2, Tags: map[string]string{"team": "netsec"}})
	must(err)
	return &world{World: w, cfg: cfg}
}

func (w *world) reader() *inventory.Reader {
	c := w.Clients()
	return inventory.New(w.cfg.Config, inventory.Clients{EC2: c.EC2, ELBv2: c.ELBv2, Classic: c.Classic}, &inventory.Memo{}, quiet)
}

func (w *world) scope() opsview.Scope {
	return opsview.Scope{Mirror: w.cfg.Mirror, Region: w.cfg.Region, VPC: w.cfg.VPCID}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
