package opsview_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/stackconfig"
)

// preflightClients are clients on the world, the reader configured from
// sc as the local command configures it from cdk.json.
func preflightClients(w *world, sc stackconfig.Config) opsview.PreflightClients {
	ic := lambdafn.InventoryConfig(sc)
	ic.Mirror.TargetID, ic.MirrorNLBARN = w.Target, w.MirrorNLB
	c := w.Clients()
	return opsview.NewPreflightClients(w.Acct.Config(), inventory.New(ic, inventory.Clients{EC2: c.EC2, ELBv2: c.ELBv2, Classic: c.Classic}, &inventory.Memo{}, quiet))
}

func TestPreflightGolden(t *testing.T) {
	w := newWorld(t)
	p := opsview.RunPreflight(context.Background(), preflightClients(w, w.StackConfig()), w.StackConfig(), w.Clock.Now())
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "preflight.golden", b.Bytes())
	for _, c := range p.Checks {
		// The world tags a load balancer of another VPC as well.
		if c.Result != opsview.OK && !(c.Name == "load balancers" && c.Result == opsview.Warn) {
			t.Errorf("the sample world, deployable as it is: %s %s: %s", c.Name, c.Result, c.Detail)
		}
	}
	if p.Failed() {
		t.Error("preflight failed on the sample world")
	}
}

// Each check fails (or warns) once, alone, with its fix.
func TestPreflightEachCheck(t *testing.T) {
	for _, tc := range []struct {
		check, result string
		change        func(w *world, c *stackconfig.Config)
	}{
		{"configuration", opsview.Fail, func(w *world, c *stackconfig.Config) { c.KafkaAuth = stackconfig.KafkaAuthIAM }},
		{"account", opsview.Fail, func(w *world, c *stackconfig.Config) { c.Account = "210987654321" }},
		{"vpc", opsview.Fail, func(w *world, c *stackconfig.Config) { c.VPCCIDRs = []string{"10.99.0.0/16"} }},
		{"subnets", opsview.Fail, func(w *world, c *stackconfig.Config) {
			for id := range c.Subnets {
				c.Subnets[id] = "us-east-1c"
				break
			}
		}},
		{"instance types", opsview.Fail, func(w *world, c *stackconfig.Config) { c.InstanceTypes = []string{"x9g.large"} }},
		{"instance types", opsview.Warn, func(w *world, c *stackconfig.Config) { c.InstanceTypes = []string{"c7g.large", "x9g.large"} }},
		{"auto scaling role", opsview.Fail, func(w *world, c *stackconfig.Config) { w.Acct.DeleteRole(awssim.AutoScalingServiceLinkedRole.Name) }},
		{"lambda concurrency", opsview.Fail, func(w *world, c *stackconfig.Config) {
			w.Acct.SetLambdaSettings(awssim.LambdaSettings{ConcurrentExecutions: 50, UnreservedConcurrentExecutions: 50})
			c.ReconcileReservedConcurrency = 1
		}},
		{"lambda concurrency", opsview.Warn, func(w *world, c *stackconfig.Config) {
			w.Acct.SetLambdaSettings(awssim.LambdaSettings{ConcurrentExecutions: 50, UnreservedConcurrentExecutions: 50})
		}},
		{"cloudtrail", opsview.Warn, func(w *world, c *stackconfig.Config) { w.Acct.DeleteTrail("management") }},
		{"load balancers", opsview.Fail, func(w *world, c *stackconfig.Config) {
			c.LoadBalancerARNs = append(c.LoadBalancerARNs, "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/gone/0123456789abcdef")
		}},
		{"mirror sessions quota", opsview.Fail, func(w *world, c *stackconfig.Config) {
			w.Acct.SetServiceQuota(awssim.Quota{ServiceCode: awssim.TrafficMirrorSessionsServiceCode, QuotaCode: awssim.TrafficMirrorSessionsQuotaCode,
				QuotaName: "Traffic mirror sessions", Value: 10})
		}},
	} {
		t.Run(tc.check+" "+tc.result, func(t *testing.T) {
			w := newWorld(t)
			cfg := w.StackConfig()
			tc.change(w, &cfg)
			if tc.check == "vpc" || tc.check == "subnets" {
				// The CIDR and zones must still validate.
				if err := cfg.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			p := opsview.RunPreflight(context.Background(), preflightClients(w, cfg), cfg, w.Clock.Now())
			for _, c := range p.Checks {
				switch {
				case c.Name == tc.check && c.Result != tc.result:
					t.Errorf("%s: %s (%s), want %s", c.Name, c.Result, c.Detail, tc.result)
				case c.Name == tc.check && c.Result != opsview.OK && c.Fix == "" && c.Name != "load balancers":
					t.Errorf("%s: no fix given", c.Name)
				case c.Name == "load balancers" && c.Result == opsview.Warn && tc.check != c.Name:
					// The world's tagged load balancer of another VPC.
				case c.Name != tc.check && c.Result != opsview.OK && !(tc.check == "account" && c.Name == "configuration"):
					t.Errorf("%s also %s: %s", c.Name, c.Result, c.Detail)
				}
			}
			if p.Failed() != (tc.result == opsview.Fail) {
				t.Errorf("Failed() = %v", p.Failed())
			}
			var b bytes.Buffer
			p.Write(&b)
			if !strings.Contains(b.String(), tc.check) {
				t.Errorf("table lacks %s:\n%s", tc.check, b.String())
			}
		})
	}
}
