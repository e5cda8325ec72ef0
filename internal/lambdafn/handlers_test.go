package lambdafn

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

// The handlers run against the simulated account of the sample events
// (tests/invoke/sampleworld): the samples, with their ids rewritten to the
// account's, are fed to a freshly built Function (a cold container), and
// the sessions left in the account are compared with what the event
// implies.

// fixture is the sample world and the functions' configuration, read from
// the environment the stack would set.
type fixture struct {
	t   *testing.T
	w   *sampleworld.World
	cfg orchestrator.Config
	vni map[string]uint32 // the selected load balancers' VNIs
	// clock, when set, is the functions' clock instead of the world's.
	clock orchestrator.Clock

	log     bytes.Buffer // the last invocation's JSON log
	metrics bytes.Buffer // the last invocation's EMF output
	calls   int          // AWS requests of the last invocation
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, awssim.Options{}) }

// newFixtureWith builds the sample world on an account with opts.
func newFixtureWith(t *testing.T, opts awssim.Options) *fixture {
	t.Helper()
	w, err := sampleworld.NewWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	env := w.Env()
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("configuration of the sample world: %v", err)
	}
	return &fixture{t: t, w: w, cfg: cfg, vni: mirror.VNIs([]string{w.ALB, w.NLB, w.Classic})}
}

// inst and eni are the world's ids of sample instance n and ENI n.
func (f *fixture) inst(n int) string { return f.w.ID(sampleworld.SampleInstance(n)) }
func (f *fixture) eni(n int) string  { return f.w.ID(sampleworld.SampleENI(n)) }

// must fails the test on a world-building error.
func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// mirror brings the account to what an earlier full reconcile left.
func (f *fixture) mirror() {
	f.t.Helper()
	f.must(f.w.Mirror(context.Background(), f.cfg))
}

// sample is a sample event with the world's ids.
func (f *fixture) sample(name string) []byte { return f.w.Rewrite(events.Sample(name)) }

// function builds a function as a cold container would, logging into
// f.log and writing metrics into f.metrics.
func (f *fixture) function(name string) *Function {
	f.t.Helper()
	f.log.Reset()
	f.metrics.Reset()
	log := slog.New(slog.NewJSONHandler(&f.log, nil))
	var clock orchestrator.Clock = f.w.Clock
	if f.clock != nil {
		clock = f.clock
	}
	o, err := orchestrator.New(f.cfg, f.w.Clients(), clock, log)
	if err != nil {
		f.t.Fatal(err)
	}
	return &Function{Name: name, StackName: f.cfg.Mirror.StackName, O: o, Clock: clock, Log: log, Metrics: &f.metrics}
}

// invoke runs handler h of a new function on raw with a Lambda-like
// deadline, counting the AWS requests it makes.
func (f *fixture) invoke(name string, h Handler, raw []byte) error {
	f.t.Helper()
	return f.invokeWithin(name, h, raw, 5*time.Minute)
}

func (f *fixture) invokeWithin(name string, h Handler, raw []byte, timeout time.Duration) error {
	f.t.Helper()
	fn := f.function(name)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	f.w.Acct.ResetCalls()
	err := h(fn, ctx, raw)
	f.calls = f.w.Acct.Calls().Total
	return err
}

// steady is what a full reconcile of the sample world mirrors, by sample
// ENI number: instance 1 is a target of web-alb and legacy-clb, and is
// mirrored once, for the first in ARN order (web-alb).
func (f *fixture) steady() map[int]string {
	return map[int]string{1: f.w.ALB, 2: f.w.ALB, 3: f.w.ALB, 5: f.w.ALB, 6: f.w.Classic, 11: f.w.NLB, 12: f.w.NLB}
}

func without(m map[int]string, ns ...int) map[int]string {
	out := map[int]string{}
	for k, v := range m {
		if !slices.Contains(ns, k) {
			out[k] = v
		}
	}
	return out
}

// expect checks that the stack's sessions are exactly want (sample ENI
// number -> load balancer ARN), each with the contract's tags, the load
// balancer's VNI, the stack's target and filter and session number 1.
func (f *fixture) expect(want map[int]string) {
	f.t.Helper()
	got := f.w.Ours()
	wantENI := map[string]int{}
	for n, lb := range want {
		eni := f.eni(n)
		wantENI[eni] = n
		s, ok := got[eni]
		if !ok {
			f.t.Errorf("%s (%s): no session of the stack, want one for %s%s", sampleworld.SampleENI(n), eni, f.w.LBName(lb), f.summaryNote())
			continue
		}
		vni := f.vni[lb]
		if s.Tags[contract.TagStack] != sampleworld.StackName || s.Tags[contract.TagLB] != lb || s.Tags[contract.TagVNI] != strconv.FormatUint(uint64(vni), 10) {
			f.t.Errorf("%s: session %s has tags %v, want %s=%s %s=%s %s=%d", sampleworld.SampleENI(n), s.ID, s.Tags,
				contract.TagStack, sampleworld.StackName, contract.TagLB, lb, contract.TagVNI, vni)
		}
		// A replacement (the ENI's load balancer changed) is created
		// before its predecessor is deleted, so it may take the next free
		// number.
		if uint32(s.VNI) != vni || s.Target != f.w.Target || s.Filter != f.w.Filter || s.Number < 1 || s.Number > 3 || s.PacketLength != 0 {
			f.t.Errorf("%s: session %s has VNI %d target %s filter %s number %d packet length %d, want VNI %d (%s) target %s filter %s number 1 (2 or 3 for a replacement), whole packets",
				sampleworld.SampleENI(n), s.ID, s.VNI, s.Target, s.Filter, s.Number, s.PacketLength, vni, f.w.LBName(lb), f.w.Target, f.w.Filter)
		}
	}
	for eni, s := range got {
		if _, ok := wantENI[eni]; !ok {
			f.t.Errorf("unexpected session: %s%s", f.w.Describe(s), f.summaryNote())
		}
	}
}

// summary is the last invocation's summary record, nil when none was
// logged.
func (f *fixture) summary() map[string]any {
	sc := bufio.NewScanner(bytes.NewReader(f.log.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "invocation summary" {
			return rec
		}
	}
	return nil
}

func (f *fixture) summaryNote() string {
	if s := f.summary(); s != nil {
		b, _ := json.Marshal(s)
		return "\n\tinvocation summary: " + string(b)
	}
	return ""
}

// foreign adds a session the stack does not own on ENI n, as another
// tool would, and returns its id. owner "" leaves the stack tag out.
func (f *fixture) foreign(n int, number int32, owner string) string {
	f.t.Helper()
	tags := map[string]string{"team": "security"}
	if owner != "" {
		tags[contract.TagStack] = owner
		if n <= 6 {
			// Another stack tags its sessions with the instance as ours
			// do: a lookup by instance must not take it for ours.
			tags["apitap:instance"] = f.inst(n)
		}
	}
	id, err := f.w.Acct.AddSession(awssim.SessionSpec{ENI: f.eni(n), Target: f.w.Target, Filter: f.w.Filter, Number: number, VNI: 77, Tags: tags})
	f.must(err)
	return id
}

// exists reports whether the session with this id exists.
func (f *fixture) exists(id string) bool {
	for _, s := range f.w.Acct.Sessions() {
		if s.ID == id {
			return true
		}
	}
	return false
}

func TestInstanceEvents(t *testing.T) {
	type change func(f *fixture)
	stopped := func(n int) change { return func(f *fixture) { f.must(f.w.Acct.StopInstance(f.inst(n))) } }
	state := func(n int, s string) change {
		return func(f *fixture) { f.must(f.w.Acct.SetInstanceState(f.inst(n), s)) }
	}
	deregistered := func(tg func(*fixture) string, ids ...func(*fixture) string) change {
		return func(f *fixture) {
			for _, id := range ids {
				f.must(f.w.Acct.Deregister(tg(f), id(f)))
			}
		}
	}
	registered := func(tg func(*fixture) string, ids ...func(*fixture) string) change {
		return func(f *fixture) {
			for _, id := range ids {
				f.must(f.w.Acct.Register(tg(f), id(f)))
			}
		}
	}
	classic := func(ns ...int) change {
		return func(f *fixture) {
			var ids []string
			for _, n := range ns {
				ids = append(ids, f.inst(n))
			}
			f.must(f.w.Acct.SetClassicInstances(sampleworld.ClassicName, ids...))
		}
	}
	web := func(f *fixture) string { return f.w.WebInstances }
	apiIPs := func(f *fixture) string { return f.w.APIIPs }
	inst := func(n int) func(*fixture) string { return func(f *fixture) string { return f.inst(n) } }
	ip := func(sample string) func(*fixture) string { return func(f *fixture) string { return f.w.ID(sample) } }
	both := func(a, b change) change { return func(f *fixture) { a(f); b(f) } }

	for _, tc := range []struct {
		name   string
		sample string
		before change // before the last reconcile
		change change // since: what the event reports
		want   func(f *fixture) map[int]string
		// quiet events make no AWS request at all.
		quiet bool
	}{
		{name: "running", sample: "ec2-state-running.json", before: stopped(1), change: state(1, awssim.StateRunning),
			want: (*fixture).steady},
		{name: "stopping", sample: "ec2-state-stopping.json", change: state(1, awssim.StateStopping),
			want: func(f *fixture) map[int]string { return without(f.steady(), 1) }},
		{name: "stopped", sample: "ec2-state-stopped.json", change: state(1, awssim.StateStopped),
			want: func(f *fixture) map[int]string { return without(f.steady(), 1) }},
		{name: "shutting-down", sample: "ec2-state-shutting-down.json", change: state(1, awssim.StateShuttingDown),
			want: func(f *fixture) map[int]string { return without(f.steady(), 1) }},
		// Until EC2 deletes the primary ENI, the session is there.
		{name: "terminated, ENI not yet deleted", sample: "ec2-state-terminated.json", change: state(1, awssim.StateShuttingDown),
			want: func(f *fixture) map[int]string { return without(f.steady(), 1) }},
		{name: "terminated, ENI deleted by EC2", sample: "ec2-state-terminated.json", change: state(1, awssim.StateTerminated),
			want: func(f *fixture) map[int]string { return without(f.steady(), 1) }},
		{name: "auto scaling launch", sample: "autoscaling-launch-successful.json", before: stopped(2), change: state(2, awssim.StateRunning),
			want: (*fixture).steady},
		{name: "auto scaling terminate", sample: "autoscaling-terminate-successful.json",
			change: both(deregistered(web, inst(3)), state(3, awssim.StateShuttingDown)),
			want:   func(f *fixture) map[int]string { return without(f.steady(), 3) }},
		{name: "auto scaling launch failed", sample: "autoscaling-launch-unsuccessful.json", want: (*fixture).steady, quiet: true},
		{name: "auto scaling terminate failed", sample: "autoscaling-terminate-unsuccessful.json", want: (*fixture).steady, quiet: true},
		{name: "RegisterTargets instance", sample: "cloudtrail-elbv2-register-targets-instance.json",
			before: deregistered(web, inst(2)), change: registered(web, inst(2)), want: (*fixture).steady},
		{name: "DeregisterTargets instance", sample: "cloudtrail-elbv2-deregister-targets-instance.json",
			change: deregistered(web, inst(3)), want: func(f *fixture) map[int]string { return without(f.steady(), 3) }},
		{name: "RegisterTargets ip", sample: "cloudtrail-elbv2-register-targets-ip.json",
			before: deregistered(apiIPs, ip(sampleworld.SampleIP11), ip(sampleworld.SampleIP12)),
			change: registered(apiIPs, ip(sampleworld.SampleIP11), ip(sampleworld.SampleIP12)), want: (*fixture).steady},
		{name: "DeregisterTargets ip", sample: "cloudtrail-elbv2-deregister-targets-ip.json",
			change: deregistered(apiIPs, ip(sampleworld.SampleIP12)), want: func(f *fixture) map[int]string { return without(f.steady(), 12) }},
		// The failed call changed nothing, and must not even be looked at:
		// instance 3 stopped since the last reconcile, which the handler
		// would act on if it took the call for a registration.
		{name: "RegisterTargets failed", sample: "cloudtrail-elbv2-register-targets-failed.json", change: stopped(3),
			want: (*fixture).steady, quiet: true},
		{name: "Classic register", sample: "cloudtrail-classic-register-instances.json",
			before: classic(1), change: classic(1, 6), want: (*fixture).steady},
		{name: "Classic deregister", sample: "cloudtrail-classic-deregister-instances.json",
			change: classic(1), want: func(f *fixture) map[int]string { return without(f.steady(), 6) }},
		{name: "scheduled event is not for this function", sample: "scheduled-event.json", change: stopped(5),
			want: (*fixture).steady, quiet: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.before != nil {
				tc.before(f)
			}
			f.mirror()
			if tc.change != nil {
				tc.change(f)
			}
			if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample(tc.sample)); err != nil {
				t.Fatalf("handler: %v", err)
			}
			f.expect(tc.want(f))
			if tc.quiet && f.calls != 0 {
				t.Errorf("%d AWS requests, want none", f.calls)
			}
			if s := f.summary(); s != nil && s["errors"] != 0.0 {
				t.Errorf("summary reports errors: %v", s)
			}
		})
	}
}

// A pending instance is mirrored for a selected load balancer that lists
// it (legacy-clb lists instances whatever their state, web-alb reports a
// target that is not running as unused).
func TestInstanceEventsPending(t *testing.T) {
	f := newFixture(t)
	f.must(f.w.Acct.StopInstance(f.inst(1)))
	f.mirror()
	f.must(f.w.Acct.SetInstanceState(f.inst(1), awssim.StatePending))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample("ec2-state-pending.json")); err != nil {
		t.Fatal(err)
	}
	s, ok := f.w.Ours()[f.eni(1)]
	if !ok || (s.Tags[contract.TagLB] != f.w.ALB && s.Tags[contract.TagLB] != f.w.Classic) {
		t.Errorf("pending instance 1: session %+v (found %v), want one for web-alb or legacy-clb%s", s, ok, f.summaryNote())
	}
}

// An instance that starts and is no target of a selected load balancer is
// not mirrored.
func TestInstanceEventsNotATarget(t *testing.T) {
	f := newFixture(t)
	f.must(f.w.Acct.Deregister(f.w.WebInstances, f.inst(5)))
	f.must(f.w.Acct.StopInstance(f.inst(5)))
	f.mirror()
	f.must(f.w.Acct.StartInstance(f.inst(5)))
	ev := bytes.ReplaceAll(events.Sample("ec2-state-running.json"), []byte(sampleworld.SampleInstance(1)), []byte(sampleworld.SampleInstance(5)))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.w.Rewrite(ev)); err != nil {
		t.Fatal(err)
	}
	f.expect(without(f.steady(), 5))
	if s := f.summary(); s == nil || s["errors"] != 0.0 || s["created"] != 0.0 {
		t.Errorf("summary %v, want no error and nothing created", s)
	}
}

// Events come late: a running event for an instance terminated since
// changes nothing and is no error.
func TestInstanceEventsLateRunning(t *testing.T) {
	f := newFixture(t)
	f.mirror()
	f.must(f.w.Acct.TerminateInstance(f.inst(1)))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample("ec2-state-running.json")); err != nil {
		t.Fatal(err)
	}
	f.expect(without(f.steady(), 1))
	if s := f.summary(); s == nil || s["errors"] != 0.0 {
		t.Errorf("summary %v, want no errors", s)
	}
}

// Instance 1 is a target of web-alb and of legacy-clb, mirrored for
// web-alb. Deregistered from web-alb only, it is still a target of a
// selected load balancer: it must stay mirrored, for legacy-clb now.
func TestDeregisterFromOneOfTwoLoadBalancers(t *testing.T) {
	f := newFixture(t)
	f.mirror()
	f.must(f.w.Acct.Deregister(f.w.WebInstances, f.inst(1)))
	ev := bytes.ReplaceAll(events.Sample("cloudtrail-elbv2-deregister-targets-instance.json"),
		[]byte(sampleworld.SampleInstance(3)), []byte(sampleworld.SampleInstance(1)))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.w.Rewrite(ev)); err != nil {
		t.Fatal(err)
	}
	want := f.steady()
	want[1] = f.w.Classic
	f.expect(want)
}

// Sessions the stack does not own are left alone when an instance stops
// or is deregistered, even when they carry the same instance tag.
func TestInstanceEventsLeaveForeignSessions(t *testing.T) {
	for _, tc := range []struct {
		sample string
		change func(f *fixture)
		n      int // the ENI that loses our session
	}{
		{"ec2-state-stopped.json", func(f *fixture) { f.must(f.w.Acct.StopInstance(f.inst(1))) }, 1},
		{"cloudtrail-elbv2-deregister-targets-instance.json", func(f *fixture) { f.must(f.w.Acct.Deregister(f.w.WebInstances, f.inst(3))) }, 3},
	} {
		t.Run(tc.sample, func(t *testing.T) {
			f := newFixture(t)
			f.mirror()
			other := f.foreign(tc.n, 2, "other-stack")
			untagged := f.foreign(tc.n, 3, "")
			tc.change(f)
			if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample(tc.sample)); err != nil {
				t.Fatal(err)
			}
			f.expect(without(f.steady(), tc.n))
			for _, id := range []string{other, untagged} {
				if !f.exists(id) {
					t.Errorf("foreign session %s was deleted", id)
				}
			}
		})
	}
}

func TestInstanceEventsRejectsMalformedEvents(t *testing.T) {
	f := newFixture(t)
	for _, raw := range []string{`not json`, `{"detail":{}}`, `{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"state":"running"}}`} {
		if err := f.invoke("instance-events", (*Function).InstanceEvents, []byte(raw)); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
	if f.calls != 0 {
		t.Errorf("%d AWS requests for malformed events", f.calls)
	}
}

func TestStackEvents(t *testing.T) {
	var names []string
	for _, n := range events.Samples() {
		if strings.HasPrefix(n, "cfn-stack-") || strings.HasPrefix(n, "cfn-resource-") {
			names = append(names, n)
		}
	}
	if len(names) < 15 {
		t.Fatalf("only %d CloudFormation samples: %v", len(names), names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			e, err := events.Parse(events.Sample(name))
			if err != nil {
				t.Fatal(err)
			}
			status := ""
			if d, err := e.StackStatusChange(); err == nil {
				status = d.Status
			}
			// Before an update, the selection was web-alb alone; the
			// update selects the others too.
			update := strings.HasPrefix(status, "UPDATE_")
			if update || strings.HasPrefix(status, "DELETE_") {
				cfg := f.cfg
				if update {
					cfg.LBARNs, cfg.LBTags = []string{f.w.ALB}, nil
				}
				f.must(f.w.Mirror(context.Background(), cfg))
			}
			before := f.w.Ours()
			if err := f.invoke("stack-events", (*Function).StackEvents, f.sample(name)); err != nil {
				t.Fatalf("handler: %v", err)
			}
			switch status {
			case "CREATE_COMPLETE", "UPDATE_COMPLETE":
				f.expect(f.steady())
				s := f.summary()
				if s == nil || s["trigger"] != "stack "+status || s["errors"] != 0.0 {
					t.Errorf("summary %v, want trigger %q and no errors", s, "stack "+status)
				}
			default:
				if f.calls != 0 {
					t.Errorf("status %q: %d AWS requests, want none", status, f.calls)
				}
				if after := f.w.Ours(); len(after) != len(before) {
					t.Errorf("status %q: %d sessions before, %d after", status, len(before), len(after))
				}
			}
		})
	}
}

func TestStackEventsOfAnotherStack(t *testing.T) {
	f := newFixture(t)
	ev := bytes.ReplaceAll(f.sample("cfn-stack-create-complete.json"), []byte(":stack/apitap/"), []byte(":stack/apitap-staging/"))
	if err := f.invoke("stack-events", (*Function).StackEvents, ev); err != nil {
		t.Fatal(err)
	}
	if f.calls != 0 || len(f.w.Acct.Sessions()) != 0 {
		t.Errorf("another stack's CREATE_COMPLETE: %d requests, %d sessions; want none", f.calls, len(f.w.Acct.Sessions()))
	}
}

func TestReconcile(t *testing.T) {
	// Events were lost since the last pass: instance 2 started, 5
	// stopped, 6 left legacy-clb.
	f := newFixture(t)
	f.must(f.w.Acct.StopInstance(f.inst(2)))
	f.mirror()
	f.expect(without(f.steady(), 2))
	f.must(f.w.Acct.StartInstance(f.inst(2)))
	f.must(f.w.Acct.StopInstance(f.inst(5)))
	f.must(f.w.Acct.SetClassicInstances(sampleworld.ClassicName, f.inst(1)))
	if err := f.invoke("reconcile", (*Function).Reconcile, f.sample("scheduled-event.json")); err != nil {
		t.Fatal(err)
	}
	f.expect(without(f.steady(), 5, 6))
	s := f.summary()
	if s == nil || s["trigger"] != "Scheduled" || s["created"] != 1.0 || s["deleted"] != 2.0 || s["kept"] != 4.0 || s["desired"] != 5.0 {
		t.Errorf("summary %v, want trigger Scheduled, desired 5, created 1, deleted 2, kept 4", s)
	}
}

// Any payload asks for a full pass (a manual invoke, another function).
func TestReconcileAnyPayload(t *testing.T) {
	f := newFixture(t)
	if err := f.invoke("reconcile", (*Function).Reconcile, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	f.expect(f.steady())
	if s := f.summary(); s == nil || s["trigger"] != "invoke" {
		t.Errorf("summary %v, want trigger invoke", s)
	}
}

func TestReconcileErrors(t *testing.T) {
	t.Run("nothing readable: the invocation fails", func(t *testing.T) {
		f := newFixture(t)
		f.w.Acct.SetFaults(awssim.Faults{ServerErrorRate: 1})
		if err := f.invoke("reconcile", (*Function).Reconcile, f.sample("scheduled-event.json")); err == nil {
			t.Error("no error when every request fails")
		}
		if s := f.summary(); s == nil || s["errors"] == 0.0 {
			t.Errorf("summary %v, want errors", s)
		}
	})
	t.Run("creates fail: reported, the next pass retries", func(t *testing.T) {
		f := newFixture(t)
		f.w.Acct.SetFaults(awssim.Faults{ServerErrorRate: 1, Actions: []string{"CreateTrafficMirrorSession"}})
		if err := f.invoke("reconcile", (*Function).Reconcile, f.sample("scheduled-event.json")); err != nil {
			t.Errorf("handler: %v", err)
		}
		f.expect(nil)
		if s := f.summary(); s == nil || s["errors"] != 7.0 || s["desired"] != 7.0 {
			t.Errorf("summary %v, want desired 7, errors 7", s)
		}
	})
}

// cfnServer records the responses PUT to a custom resource's ResponseURL.
type cfnServer struct {
	*httptest.Server
	status int // answer; 0 means 200

	mu   sync.Mutex
	puts []cfnPut
}

type cfnPut struct {
	method, contentType string
	size                int
	body                cfnResponse
}

func newCFNServer(t *testing.T) *cfnServer {
	s := &cfnServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body cfnResponse
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("response body %q: %v", b, err)
		}
		s.mu.Lock()
		s.puts = append(s.puts, cfnPut{method: r.Method, contentType: r.Header.Get("Content-Type"), size: len(b), body: body})
		status := s.status
		s.mu.Unlock()
		if status != 0 {
			http.Error(w, "AccessDenied", status)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *cfnServer) responses() []cfnPut {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.puts)
}

// request is a custom resource sample with the world's ids, answering to
// the server.
func (f *fixture) request(name string, s *cfnServer) ([]byte, events.CustomResourceRequest) {
	f.t.Helper()
	var m map[string]any
	f.must(json.Unmarshal(f.sample(name), &m))
	m["ResponseURL"] = s.URL + "/response?X-Amz-Signature=abc"
	raw, err := json.Marshal(m)
	f.must(err)
	req, err := events.ParseCustomResource(raw)
	f.must(err)
	return raw, req
}

// oneResponse checks that exactly one response was PUT, for req, and
// returns it.
func oneResponse(t *testing.T, s *cfnServer, req events.CustomResourceRequest, physicalID string) cfnResponse {
	t.Helper()
	rs := s.responses()
	if len(rs) != 1 {
		t.Fatalf("%d responses to CloudFormation, want 1: %+v", len(rs), rs)
	}
	r := rs[0]
	if r.method != http.MethodPut || r.contentType != "" {
		t.Errorf("response sent with %s and content type %q, want PUT without a content type (the URL is presigned without one)", r.method, r.contentType)
	}
	b := r.body
	if b.StackID != req.StackID || b.RequestID != req.RequestID || b.LogicalResourceID != req.LogicalResourceID || b.PhysicalResourceID != physicalID {
		t.Errorf("response ids: stack %q request %q logical %q physical %q, want %q %q %q %q",
			b.StackID, b.RequestID, b.LogicalResourceID, b.PhysicalResourceID, req.StackID, req.RequestID, req.LogicalResourceID, physicalID)
	}
	return b
}

func TestTeardownDelete(t *testing.T) {
	f := newFixture(t)
	f.mirror()
	other := f.foreign(2, 2, "other-stack")
	untagged := f.foreign(3, 2, "")
	srv := newCFNServer(t)
	raw, req := f.request("cfn-custom-resource-delete.json", srv)
	if err := f.invoke("teardown", (*Function).Teardown, raw); err != nil {
		t.Fatalf("handler: %v", err)
	}
	f.expect(nil)
	for _, id := range []string{other, untagged} {
		if !f.exists(id) {
			t.Errorf("foreign session %s was deleted", id)
		}
	}
	b := oneResponse(t, srv, req, "apitap-teardown")
	if b.Status != "SUCCESS" || b.Reason != "" {
		t.Errorf("response %+v, want SUCCESS without a reason", b)
	}
	if b.Data["Deleted"] != 7.0 {
		t.Errorf("response data %v, want Deleted 7", b.Data)
	}
	if s := f.summary(); s == nil || s["deleted"] != 7.0 || s["actual"] != 7.0 || s["trigger"] != "teardown Delete" {
		t.Errorf("summary %v, want actual 7, deleted 7", s)
	}
}

func TestTeardownDeleteFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		faults  awssim.Faults
		because string // in the reason
	}{
		{"deletes fail", awssim.Faults{ServerErrorRate: 1, Actions: []string{"DeleteTrafficMirrorSession"}}, "deleting mirror session"},
		{"sessions cannot be listed", awssim.Faults{ServerErrorRate: 1}, "describing mirror sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.mirror()
			f.w.Acct.SetFaults(tc.faults)
			srv := newCFNServer(t)
			raw, req := f.request("cfn-custom-resource-delete.json", srv)
			// The handler retries until shortly before its deadline: a
			// short one keeps the test quick.
			if err := f.invokeWithin("teardown", (*Function).Teardown, raw, 30*time.Second); err != nil {
				t.Fatalf("handler: %v (it answered, so the invocation succeeded)", err)
			}
			b := oneResponse(t, srv, req, "apitap-teardown")
			if b.Status != "FAILED" || !strings.Contains(b.Reason, tc.because) || !strings.Contains(b.Reason, sampleworld.StackName) {
				t.Errorf("response status %s reason %q, want FAILED saying %q", b.Status, b.Reason, tc.because)
			}
			if n := srv.responses()[0].size; n > 4096 {
				t.Errorf("response of %d bytes: CloudFormation takes at most 4096", n)
			}
			if n := len(f.w.Ours()); n != 7 {
				t.Errorf("%d sessions left, want the 7 that could not be deleted", n)
			}
			// The stack owns 7 sessions, however often they were listed.
			if s := f.summary(); tc.because == "deleting mirror session" && (s == nil || s["actual"] != 7.0 || s["deleted"] != 0.0) {
				t.Errorf("summary actual %v deleted %v, want 7 sessions found and none deleted", s["actual"], s["deleted"])
			}
		})
	}
}

// TestTeardownWithForeignSessions: foreign sessions on the stack's own
// mirror target (untagged, other tags only, another stack's) and our
// stack's tag on another target, on accounts that apply, ignore or refuse
// tag filters: the teardown deletes ours, touches none of theirs, and
// answers SUCCESS well before its deadline.
func TestTeardownWithForeignSessions(t *testing.T) {
	for _, mode := range awssim.FilterModes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixtureWith(t, awssim.Options{UndocumentedFilters: mode})
			f.mirror()
			foreign := []string{f.foreign(12, 2, ""), f.foreign(2, 3, "other-stack")}
			otherNLB, err := f.w.Acct.AddLoadBalancer("network", f.w.VPC, "other-mirror", nil)
			f.must(err)
			otherTarget, err := f.w.Acct.AddMirrorTarget(otherNLB)
			f.must(err)
			id, err := f.w.Acct.AddSession(awssim.SessionSpec{ENI: f.eni(3), Target: otherTarget, Filter: f.w.Filter, Number: 4, VNI: 5,
				Tags: map[string]string{contract.TagStack: sampleworld.StackName, contract.TagInstance: f.inst(3)}})
			f.must(err)
			foreign = append(foreign, id)
			srv := newCFNServer(t)
			raw, req := f.request("cfn-custom-resource-delete.json", srv)
			start := time.Now()
			if err := f.invokeWithin("teardown", (*Function).Teardown, raw, 5*time.Minute); err != nil {
				t.Fatalf("handler: %v", err)
			}
			if took := time.Since(start); took > time.Minute {
				t.Errorf("teardown took %s", took)
			}
			b := oneResponse(t, srv, req, "apitap-teardown")
			if b.Status != "SUCCESS" {
				t.Errorf("response %+v, want SUCCESS", b)
			}
			f.expect(nil)
			for _, id := range foreign {
				if !f.exists(id) {
					t.Errorf("foreign session %s was deleted", id)
				}
			}
		})
	}
}

// TestTeardownDenied: deletes refused by IAM fail the same way every
// time: the teardown answers FAILED saying so at once, without waiting for
// its deadline.
func TestTeardownDenied(t *testing.T) {
	f := newFixture(t)
	f.mirror()
	f.w.Acct.SetFaults(awssim.Faults{Denied: []string{"DeleteTrafficMirrorSession"}})
	srv := newCFNServer(t)
	raw, req := f.request("cfn-custom-resource-delete.json", srv)
	before := f.w.Clock.Now()
	if err := f.invokeWithin("teardown", (*Function).Teardown, raw, 10*time.Minute); err != nil {
		t.Fatalf("handler: %v", err)
	}
	b := oneResponse(t, srv, req, "apitap-teardown")
	if b.Status != "FAILED" || !strings.Contains(b.Reason, "UnauthorizedOperation") || !strings.Contains(b.Reason, "7 still listed") {
		t.Errorf("response status %s reason %q, want FAILED with 7 sessions still listed, saying UnauthorizedOperation", b.Status, b.Reason)
	}
	if spent := f.w.Clock.Now().Sub(before); spent > time.Minute {
		t.Errorf("the teardown spent %s of its 10 minutes on deletes that cannot succeed", spent)
	}
}

func TestTeardownCreateUpdate(t *testing.T) {
	for _, name := range []string{"cfn-custom-resource-create.json", "cfn-custom-resource-update.json"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.mirror()
			srv := newCFNServer(t)
			raw, req := f.request(name, srv)
			if err := f.invoke("teardown", (*Function).Teardown, raw); err != nil {
				t.Fatalf("handler: %v", err)
			}
			// Create has no physical id yet: the function names it; Update
			// keeps the one Create returned.
			b := oneResponse(t, srv, req, "apitap-teardown")
			if b.Status != "SUCCESS" {
				t.Errorf("response %+v, want SUCCESS", b)
			}
			if f.calls != 0 {
				t.Errorf("%d AWS requests, want none", f.calls)
			}
			f.expect(f.steady())
		})
	}
}

func TestTeardownResponseErrors(t *testing.T) {
	t.Run("response refused", func(t *testing.T) {
		f := newFixture(t)
		srv := newCFNServer(t)
		srv.status = http.StatusForbidden
		raw, _ := f.request("cfn-custom-resource-create.json", srv)
		err := f.invoke("teardown", (*Function).Teardown, raw)
		if err == nil || !strings.Contains(err.Error(), "403") {
			t.Errorf("handler error %v, want one saying HTTP 403", err)
		}
	})
	t.Run("not a custom resource request", func(t *testing.T) {
		f := newFixture(t)
		if err := f.invoke("teardown", (*Function).Teardown, f.sample("scheduled-event.json")); err == nil {
			t.Error("no error for a scheduled event")
		}
	})
}

// The summary line carries the counts, and the EMF line the same counts as
// CloudWatch metrics.
func TestSummaryAndMetrics(t *testing.T) {
	f := newFixture(t)
	f.must(f.w.Acct.Deregister(f.w.APIIPs, f.w.ID(sampleworld.SampleIP11), f.w.ID(sampleworld.SampleIP12)))
	f.mirror()
	f.must(f.w.Acct.Register(f.w.APIIPs, f.w.ID(sampleworld.SampleIP11), f.w.ID(sampleworld.SampleIP12)))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample("cloudtrail-elbv2-register-targets-ip.json")); err != nil {
		t.Fatal(err)
	}
	s := f.summary()
	if s == nil {
		t.Fatalf("no summary in the log:\n%s", f.log.String())
	}
	want := map[string]any{
		"function": "instance-events", "trigger": "CloudTrailELB RegisterTargets", "level": "INFO",
		"desired": 2.0, "actual": 0.0, "created": 2.0, "deleted": 0.0, "kept": 0.0, "conflicts": 0.0,
		"unsupported": 0.0, "protected": 0.0, "errors": 0.0,
		// Every request the orchestrator made, as the account saw them.
		"api_calls": float64(f.calls),
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("summary %s = %v, want %v", k, s[k], v)
		}
	}

	lines := bytes.Split(bytes.TrimSuffix(f.metrics.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 1 {
		t.Fatalf("%d EMF lines, want 1:\n%s", len(lines), f.metrics.String())
	}
	var emf struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function, Stack           string
		Created, Deleted, Desired float64
		Errors, APICalls          float64
	}
	if err := json.Unmarshal(lines[0], &emf); err != nil {
		t.Fatalf("EMF line is not JSON: %v\n%s", err, lines[0])
	}
	if len(emf.AWS.CloudWatchMetrics) != 1 || emf.AWS.Timestamp == 0 {
		t.Fatalf("EMF _aws = %+v, want one metric directive and a timestamp", emf.AWS)
	}
	d := emf.AWS.CloudWatchMetrics[0]
	if d.Namespace != contract.FunctionNamespace || fmt.Sprint(d.Dimensions) != "[[Function Stack]]" || emf.Function != "instance-events" || emf.Stack != sampleworld.StackName {
		t.Errorf("EMF namespace %q dimensions %v (Function=%q Stack=%q), want %q [[Function Stack]] instance-events %s",
			d.Namespace, d.Dimensions, emf.Function, emf.Stack, contract.FunctionNamespace, sampleworld.StackName)
	}
	var names []string
	for _, m := range d.Metrics {
		names = append(names, m.Name)
	}
	for _, n := range []string{"APICalls", "Created", "Deleted", "Desired", "Errors"} {
		if !slices.Contains(names, n) {
			t.Errorf("EMF metrics %v lack %s", names, n)
		}
	}
	if emf.Created != 2 || emf.Deleted != 0 || emf.Desired != 2 || emf.Errors != 0 || emf.APICalls != float64(f.calls) {
		t.Errorf("EMF values created %v deleted %v desired %v errors %v api calls %v, want 2 0 2 0 %d",
			emf.Created, emf.Deleted, emf.Desired, emf.Errors, emf.APICalls, f.calls)
	}
}

// Issue 3: each function logs one summary per invocation and emits the
// same counts as metrics, whatever the event.
func TestEveryInvocationLogsOneSummary(t *testing.T) {
	var wrong []string
	for _, name := range events.Samples() {
		f := newFixture(t)
		f.mirror()
		raw := f.sample(name)
		var fn string
		var h Handler
		switch {
		case strings.HasPrefix(name, "cfn-custom-resource-"):
			fn, h = "teardown", (*Function).Teardown
			raw, _ = f.request(name, newCFNServer(t))
		case strings.HasPrefix(name, "cfn-"):
			fn, h = "stack-events", (*Function).StackEvents
		case strings.HasPrefix(name, "scheduled-"):
			fn, h = "reconcile", (*Function).Reconcile
		default:
			fn, h = "instance-events", (*Function).InstanceEvents
		}
		if err := f.invoke(fn, h, raw); err != nil {
			t.Fatalf("%s on %s: %v", fn, name, err)
		}
		summaries := bytes.Count(f.log.Bytes(), []byte(`"msg":"invocation summary"`))
		metrics := bytes.Count(f.metrics.Bytes(), []byte("\n"))
		if summaries != 1 || metrics != 1 {
			wrong = append(wrong, fmt.Sprintf("%s on %s: %d summary lines, %d EMF lines", fn, name, summaries, metrics))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("invocations without exactly one summary and one EMF line:\n\t%s", strings.Join(wrong, "\n\t"))
	}
}

func TestConfigFromEnv(t *testing.T) {
	alb := "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-alb/50dc6c495c0c9188"
	clb := "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/legacy-clb"
	good := map[string]string{
		contract.EnvStackName: "apitap", contract.EnvTargetID: "tmt-0abc0000000000001", contract.EnvFilterID: "tmf-0abc0000000000001",
		contract.EnvVPCID: "vpc-0abc0000000000001", contract.EnvLBARNs: alb, contract.EnvRegion: "us-east-1", contract.EnvAccountID: "123456789012",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c orchestrator.Config)
		err   string // "" for none; else in the error
	}{
		{name: "minimal", env: good, check: func(t *testing.T, c orchestrator.Config) {
			if c.Mirror.StackName != "apitap" || c.Mirror.TargetID != good[contract.EnvTargetID] || c.Mirror.FilterID != good[contract.EnvFilterID] ||
				c.VPCID != good[contract.EnvVPCID] || c.Region != "us-east-1" || c.AccountID != "123456789012" ||
				!slices.Equal(c.LBARNs, []string{alb}) || c.LBTags != nil || c.Mirror.SessionNumber != 0 || c.MutationsPerSecond != 0 {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "everything", env: with(contract.EnvLBARNs, " "+alb+" , "+clb+",", contract.EnvLBTags, "team=web, apitap:mirror=true,,env=",
			contract.EnvSessionNumber, "7", contract.EnvConflict, "coexist", contract.EnvRate, "2.5"), check: func(t *testing.T, c orchestrator.Config) {
			if !slices.Equal(c.LBARNs, []string{alb, clb}) {
				t.Errorf("LB ARNs %q", c.LBARNs)
			}
			if len(c.LBTags) != 3 || c.LBTags["team"] != "web" || c.LBTags["apitap:mirror"] != "true" || c.LBTags["env"] != "" {
				t.Errorf("LB tags %q", c.LBTags)
			}
			if c.Mirror.SessionNumber != 7 || c.Mirror.Conflict != mirror.ConflictCoexist || c.MutationsPerSecond != 2.5 {
				t.Errorf("session number %d conflict %q rate %v", c.Mirror.SessionNumber, c.Mirror.Conflict, c.MutationsPerSecond)
			}
		}},
		{name: "selection by tag only", env: with(contract.EnvLBARNs, "", contract.EnvLBTags, "apitap=on"), check: func(t *testing.T, c orchestrator.Config) {
			if len(c.LBARNs) != 0 || c.LBTags["apitap"] != "on" {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "missing stack name", env: with(contract.EnvStackName, ""), err: "stack name is required"},
		{name: "missing target", env: with(contract.EnvTargetID, ""), err: "target id is required"},
		{name: "missing filter", env: with(contract.EnvFilterID, ""), err: "filter id is required"},
		{name: "missing VPC", env: with(contract.EnvVPCID, ""), err: "VPC id is required"},
		{name: "missing region", env: with(contract.EnvRegion, ""), err: contract.EnvRegion},
		{name: "tag without =", env: with(contract.EnvLBTags, "team"), err: contract.EnvLBTags},
		{name: "tag without key", env: with(contract.EnvLBTags, "=web"), err: contract.EnvLBTags},
		{name: "session number not a number", env: with(contract.EnvSessionNumber, "one"), err: contract.EnvSessionNumber},
		{name: "session number beyond int32", env: with(contract.EnvSessionNumber, "4294967297"), err: contract.EnvSessionNumber},
		{name: "session number out of range", env: with(contract.EnvSessionNumber, "32767"), err: "session number"},
		{name: "negative session number", env: with(contract.EnvSessionNumber, "-1"), err: "session number"},
		{name: "rate not a number", env: with(contract.EnvRate, "fast"), err: contract.EnvRate},
		{name: "rate zero", env: with(contract.EnvRate, "0"), err: contract.EnvRate},
		{name: "rate negative", env: with(contract.EnvRate, "-5"), err: contract.EnvRate},
		{name: "unknown conflict policy", env: with(contract.EnvConflict, "replace"), err: "conflict policy"},
		{name: "no selection", env: with(contract.EnvLBARNs, " , "), err: "no load balancers selected"},
		{name: "not an ARN", env: with(contract.EnvLBARNs, "web-alb"), err: "is not a load balancer ARN"},
		{name: "target group ARN", env: with(contract.EnvLBARNs, "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-instances/73e2d6bc24d8a067"), err: "is not a load balancer ARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ConfigFromEnv(func(k string) string { return tc.env[k] })
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.err != "" && err == nil:
				t.Fatalf("no error, want one saying %q", tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Fatalf("error %q, want one saying %q", err, tc.err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// Several problems are reported at once.
func TestConfigFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{contract.EnvLBTags: "team", contract.EnvRate: "fast", contract.EnvSessionNumber: "x"}
	_, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{contract.EnvLBTags, contract.EnvRate, contract.EnvSessionNumber, contract.EnvRegion} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
