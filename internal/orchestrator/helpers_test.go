package orchestrator_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

const stack = "apitap-test"

// start is a whole second, so that sub-second clock steps keep the
// apitap:created tag (RFC 3339, seconds) unchanged.
var start = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// world is a simulated account with one VPC holding the stack's mirror
// target and filter, and another VPC whose load balancers are not
// selectable.
type world struct {
	t      *testing.T
	acct   *awssim.Account
	clock  *awssim.ManualClock
	ec2    *ec2.Client
	vpc    string
	other  string
	target string
	filter string
}

func newWorld(t *testing.T, opts awssim.Options) *world {
	t.Helper()
	mc := awssim.NewManualClock(start)
	opts.Clock = mc
	a := awssim.New(opts)
	t.Cleanup(a.Close)
	w := &world{t: t, acct: a, clock: mc, vpc: a.AddVPC(), other: a.AddVPC()}
	w.ec2 = ec2.NewFromConfig(w.awsConfig())
	nlb := w.lb("network", "apitap-mirror", nil)
	var err error
	if w.target, err = a.AddMirrorTarget(nlb); err != nil {
		t.Fatal(err)
	}
	w.filter = a.AddMirrorFilter()
	return w
}

func (w *world) awsConfig() aws.Config {
	cfg := w.acct.Config()
	cfg.Retryer = awssim.QuickRetryer(10)
	return cfg
}

// config selects the given load balancer ARNs.
func (w *world) config(arns ...string) orchestrator.Config {
	return orchestrator.Config{Config: inventory.Config{
		Mirror:    mirror.Config{StackName: stack, TargetID: w.target, FilterID: w.filter},
		VPCID:     w.vpc,
		Region:    awssim.DefaultRegion,
		AccountID: awssim.DefaultAccountID,
		LBARNs:    arns,
	}}
}

// orch builds an orchestrator as a cold Lambda container would: its own
// real SDK clients pointed at the account.
func (w *world) orch(cfg orchestrator.Config) *orchestrator.Orchestrator {
	w.t.Helper()
	c := w.awsConfig()
	o, err := orchestrator.New(cfg, orchestrator.Clients{
		EC2: ec2.NewFromConfig(c), ELBv2: elbv2.NewFromConfig(c), Classic: elb.NewFromConfig(c),
		AutoScaling: autoscaling.NewFromConfig(c),
	}, w.clock, slog.New(slog.NewTextHandler(testWriter{w.t}, nil)))
	if err != nil {
		w.t.Fatal(err)
	}
	return o
}

// testWriter sends the orchestrator's log to the test's, shown on failure.
type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (w *world) instance(typ string) (id, eni string) {
	w.t.Helper()
	id, eni, err := w.acct.AddInstance(w.vpc, typ)
	if err != nil {
		w.t.Fatal(err)
	}
	return id, eni
}

func (w *world) lb(kind, name string, tags map[string]string) string {
	return w.lbIn(w.vpc, kind, name, tags)
}

func (w *world) lbIn(vpc, kind, name string, tags map[string]string) string {
	w.t.Helper()
	arn, err := w.acct.AddLoadBalancer(kind, vpc, name, tags)
	if err != nil {
		w.t.Fatal(err)
	}
	return arn
}

// group adds a target group of the given type to lb and registers ids.
func (w *world) group(lb, typ string, ids ...string) string {
	w.t.Helper()
	tg, err := w.acct.AddTargetGroup(lb, typ)
	if err != nil {
		w.t.Fatal(err)
	}
	w.register(tg, ids...)
	return tg
}

func (w *world) register(tg string, ids ...string) {
	w.t.Helper()
	if len(ids) == 0 {
		return
	}
	if err := w.acct.Register(tg, ids...); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) deregister(tg string, ids ...string) {
	w.t.Helper()
	if err := w.acct.Deregister(tg, ids...); err != nil {
		w.t.Fatal(err)
	}
}

// classic adds a Classic load balancer and returns its ARN.
func (w *world) classic(vpc, name string, tags map[string]string, ids ...string) string {
	w.t.Helper()
	if err := w.acct.AddClassicLB(name, vpc, ids, tags); err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", awssim.DefaultRegion, awssim.DefaultAccountID, name)
}

// ipOf is the primary private IP of an ENI, read through the API.
func (w *world) ipOf(eni string) string {
	w.t.Helper()
	out, err := w.ec2.DescribeNetworkInterfaces(context.Background(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		w.t.Fatalf("describing %s: %v", eni, err)
	}
	return aws.ToString(out.NetworkInterfaces[0].PrivateIpAddress)
}

// foreign adds a session apitap does not own on eni.
func (w *world) foreign(eni string, number int32, tags map[string]string) string {
	w.t.Helper()
	id, err := w.acct.AddSession(awssim.SessionSpec{ENI: eni, Target: w.target, Filter: w.filter, Number: number, VNI: 77, Tags: tags})
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// ours maps each ENI to this stack's sessions on it: tagged with the
// stack and on its mirror target.
func (w *world) ours() map[string][]awssim.Session {
	out := map[string][]awssim.Session{}
	for _, s := range w.acct.Sessions() {
		if s.Tags[contract.TagStack] == stack && s.Target == w.target {
			out[s.ENI] = append(out[s.ENI], s)
		}
	}
	return out
}

// session returns the session with id, if it still exists.
func (w *world) session(id string) (awssim.Session, bool) {
	for _, s := range w.acct.Sessions() {
		if s.ID == id {
			return s, true
		}
	}
	return awssim.Session{}, false
}

// wantMirrored checks that exactly the ENIs of want carry one session of
// ours each, for the given load balancer (ENI -> LB ARN), with the VNI
// vnis gives it, the stack's target and filter, the configured number (0:
// any) and whole packets.
func (w *world) wantMirrored(want map[string]string, vnis map[string]uint32, number int32) {
	w.t.Helper()
	got := w.ours()
	for eni, lb := range want {
		ss := got[eni]
		if len(ss) != 1 {
			w.t.Errorf("%s: %d sessions of ours, want 1: %+v", eni, len(ss), ss)
			continue
		}
		s := ss[0]
		vni, ok := vnis[lb]
		if !ok {
			w.t.Fatalf("test bug: no VNI for %s", lb)
		}
		if uint32(s.VNI) != vni || s.Tags[contract.TagVNI] != fmt.Sprint(vni) || s.Tags[contract.TagLB] != lb {
			w.t.Errorf("%s: VNI %d, tags %v; want VNI %d for %s", eni, s.VNI, s.Tags, vni, lb)
		}
		if s.Target != w.target || s.Filter != w.filter || (number != 0 && s.Number != number) || s.PacketLength != 0 {
			w.t.Errorf("%s: target %s filter %s number %d packet length %d; want %s %s %d whole packets",
				eni, s.Target, s.Filter, s.Number, s.PacketLength, w.target, w.filter, number)
		}
	}
	for eni, ss := range got {
		if _, ok := want[eni]; !ok {
			w.t.Errorf("%s: not to be mirrored, has sessions of ours %+v", eni, ss)
		}
	}
}

// mutations counts the mutating calls of one action, from index from of
// the log on, that succeeded, optionally only those on eni.
func (w *world) mutations(from int, action, eni string) int {
	n := 0
	for _, m := range w.acct.Stats().Mutations[from:] {
		if m.Action != action || m.ErrorCode != "" {
			continue
		}
		if eni != "" && !slices.Contains(m.Params["NetworkInterfaceId"], eni) {
			continue
		}
		n++
	}
	return n
}

// attempts counts create calls for eni from index from, failed ones too
// (injected faults excluded).
func (w *world) attempts(from int, eni string) int {
	n := 0
	for _, m := range w.acct.Stats().Mutations[from:] {
		if m.Action == "CreateTrafficMirrorSession" && m.Fault == "" && slices.Contains(m.Params["NetworkInterfaceId"], eni) {
			n++
		}
	}
	return n
}

func (w *world) mark() int { return len(w.acct.Stats().Mutations) }

// deletedIDs are the sessions successfully deleted through the API.
func (w *world) deletedIDs() map[string]bool {
	out := map[string]bool{}
	for _, m := range w.acct.Stats().Mutations {
		if m.Action == "DeleteTrafficMirrorSession" && m.ErrorCode == "" {
			for _, id := range m.Params["TrafficMirrorSessionId"] {
				out[id] = true
			}
		}
	}
	return out
}

// clean fails the test on the result's errors.
func clean(t *testing.T, what string, r *orchestrator.Result) *orchestrator.Result {
	t.Helper()
	if err := r.Err(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return r
}

// problem returns the first problem about lb whose reason contains text.
func problem(ps []mirror.Problem, lb, eni, text string) (mirror.Problem, bool) {
	for _, p := range ps {
		if (lb == "" || p.LB == lb) && (eni == "" || p.ENI == eni) && strings.Contains(p.Reason, text) {
			return p, true
		}
	}
	return mirror.Problem{}, false
}

func bg() context.Context { return context.Background() }
