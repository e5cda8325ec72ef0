package orchestrator_test

import (
	"maps"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

// filterModes are the ways an AWS account may treat the tag filters AWS
// does not document for DescribeTrafficMirrorSessions.
var filterModes = []struct {
	name string
	opts awssim.Options
}{
	{"tag filters applied", awssim.Options{UndocumentedFilters: awssim.FiltersApply}},
	{"tag filters ignored", awssim.Options{UndocumentedFilters: awssim.FiltersIgnore}},
	{"tag filters rejected with InvalidFilter", awssim.Options{UndocumentedFilters: awssim.FiltersReject, RejectFilterCode: "InvalidFilter"}},
	{"tag filters rejected with InvalidParameterValue", awssim.Options{UndocumentedFilters: awssim.FiltersReject, RejectFilterCode: "InvalidParameterValue"}},
}

// ownWorld is a stack mirroring an ALB's two instances (i1, i2) and an
// NLB's ip target (e3), next to foreign sessions that look as much like
// ours as they can:
//
//	untagged       on i1's ENI, on our target, no tags
//	otherStack     on i1's ENI, another stack's target, tagged with
//	               another stack and with i1 as its instance
//	security       on x's ENI (not a target), on our target, tagged
//	               owner=security-team only
//	ourTagElsewhere on x's ENI, tagged with our stack and i1, but on
//	               another target: not ours
//	otherOnIP      on e3, on our target, tagged with another stack
type ownWorld struct {
	*world
	alb, nlb          string
	tgA, tgB          string
	i1, i2            string
	e1, e2, e3, ip3   string
	foreign           map[string]awssim.Session // by id, as they were
	vnis              map[string]uint32
	otherTarget, xENI string
}

func newOwnWorld(t *testing.T, opts awssim.Options) *ownWorld {
	w := &ownWorld{world: newWorld(t, opts)}
	w.alb = w.lb("application", "shop", nil)
	w.nlb = w.lb("network", "api", nil)
	w.i1, w.e1 = w.instance("m5.large")
	w.i2, w.e2 = w.instance("m5.large")
	var err error
	if w.e3, w.ip3, err = w.acct.AddENI(w.vpc); err != nil {
		t.Fatal(err)
	}
	_, w.xENI = w.instance("m5.large")
	w.tgA = w.group(w.alb, "instance", w.i1, w.i2)
	w.tgB = w.group(w.nlb, "ip", w.ip3)
	w.vnis = mirror.VNIs([]string{w.alb, w.nlb})

	clean(t, "setup reconcile", w.orch(w.config(w.alb, w.nlb)).Reconcile(bg(), time.Time{}))
	w.wantMirrored(map[string]string{w.e1: w.alb, w.e2: w.alb, w.e3: w.nlb}, w.vnis, 1)

	if w.otherTarget, err = w.acct.AddMirrorTarget(w.lb("network", "other-mirror", nil)); err != nil {
		t.Fatal(err)
	}
	add := func(eni, target string, number int32, tags map[string]string) {
		if _, err := w.acct.AddSession(awssim.SessionSpec{ENI: eni, Target: target, Filter: w.filter, Number: number, VNI: 77, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	add(w.e1, w.target, 5, nil)
	add(w.e1, w.otherTarget, 6, map[string]string{contract.TagStack: "other-stack", contract.TagInstance: w.i1})
	add(w.xENI, w.target, 1, map[string]string{"owner": "security-team"})
	add(w.xENI, w.otherTarget, 2, map[string]string{contract.TagStack: stack, contract.TagInstance: w.i1, contract.TagLB: w.alb})
	add(w.e3, w.target, 9, map[string]string{contract.TagStack: "other-stack"})
	w.foreign = map[string]awssim.Session{}
	for _, s := range w.acct.Sessions() {
		if !(s.Tags[contract.TagStack] == stack && s.Target == w.target) {
			w.foreign[s.ID] = s
		}
	}
	if len(w.foreign) != 5 {
		t.Fatalf("setup: %d foreign sessions, want 5", len(w.foreign))
	}
	// Past the grace period of the sessions just created.
	w.clock.Advance(5 * time.Minute)
	return w
}

// foreignIntact fails unless every foreign session still exists, unchanged.
func (w *ownWorld) foreignIntact() {
	w.t.Helper()
	now := map[string]awssim.Session{}
	for _, s := range w.acct.Sessions() {
		now[s.ID] = s
	}
	for id, was := range w.foreign {
		got, ok := now[id]
		switch {
		case !ok:
			w.t.Errorf("foreign session %s (%s on %s, tags %v) was deleted", id, was.ENI, was.Target, was.Tags)
		case got.Target != was.Target || got.Number != was.Number || got.VNI != was.VNI || !maps.Equal(got.Tags, was.Tags):
			w.t.Errorf("foreign session %s changed: %+v, was %+v", id, got, was)
		}
	}
	for _, m := range w.acct.Stats().Mutations {
		if _, isForeign := w.foreign[first(m.Params["TrafficMirrorSessionId"])]; isForeign {
			w.t.Errorf("%s was called on foreign session %s", m.Action, first(m.Params["TrafficMirrorSessionId"]))
		}
	}
}

func first(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}

// TestDeletePathsLeaveForeignSessions runs every path that deletes or
// replaces a session against accounts that apply, ignore or refuse the tag
// filters AWS does not document: each path does its job and never touches
// a foreign session.
func TestDeletePathsLeaveForeignSessions(t *testing.T) {
	type path struct {
		name string
		// run changes the world and calls the entry point; want is what
		// stays mirrored (ENI -> load balancer).
		run func(w *ownWorld) (*orchestrator.Result, map[string]string)
	}
	paths := []path{
		{"instance stopped", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			if err := w.acct.StopInstance(w.i1); err != nil {
				w.t.Fatal(err)
			}
			return w.orch(w.config(w.alb, w.nlb)).RemoveInstances(bg(), []string{w.i1}, time.Time{}),
				map[string]string{w.e2: w.alb, w.e3: w.nlb}
		}},
		{"instance terminating", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			if err := w.acct.SetInstanceState(w.i1, awssim.StateShuttingDown); err != nil {
				w.t.Fatal(err)
			}
			return w.orch(w.config(w.alb, w.nlb)).RemoveInstances(bg(), []string{w.i1}, time.Time{}),
				map[string]string{w.e2: w.alb, w.e3: w.nlb}
		}},
		{"instance deregistered", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			w.deregister(w.tgA, w.i1)
			return w.orch(w.config(w.alb, w.nlb)).ReconcileDeregistered(bg(), w.tgA, []string{w.i1}, time.Time{}),
				map[string]string{w.e2: w.alb, w.e3: w.nlb}
		}},
		{"ip target deregistered", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			w.deregister(w.tgB, w.ip3)
			return w.orch(w.config(w.alb, w.nlb)).ReconcileDeregistered(bg(), w.tgB, []string{w.ip3}, time.Time{}),
				map[string]string{w.e1: w.alb, w.e2: w.alb}
		}},
		{"instance launched elsewhere (scoped reconcile)", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			// A running event of an instance that is no target: nothing
			// of anyone's changes.
			i4, _ := w.instance("m5.large")
			return w.orch(w.config(w.alb, w.nlb)).ReconcileInstances(bg(), []string{i4}, time.Time{}),
				map[string]string{w.e1: w.alb, w.e2: w.alb, w.e3: w.nlb}
		}},
		{"load balancer deselected", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			return w.orch(w.config(w.alb)).Reconcile(bg(), time.Time{}),
				map[string]string{w.e1: w.alb, w.e2: w.alb}
		}},
		{"VNI changed", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			// i2's session carries a VNI the selection no longer gives
			// the ALB (as after a collision among a new selection).
			for _, s := range w.ours()[w.e2] {
				if err := w.acct.DeleteSessionByID(s.ID); err != nil {
					w.t.Fatal(err)
				}
			}
			old := w.staleOurs(w.e2, 4242)
			r := w.orch(w.config(w.alb, w.nlb)).Reconcile(bg(), time.Time{})
			if _, ok := w.session(old); ok {
				w.t.Errorf("the session with the old VNI is still there")
			}
			return r, map[string]string{w.e1: w.alb, w.e2: w.alb, w.e3: w.nlb}
		}},
		{"stack deleted", func(w *ownWorld) (*orchestrator.Result, map[string]string) {
			r := w.orch(w.config(w.alb, w.nlb)).Teardown(bg(), w.clock.Now().Add(10*time.Minute))
			if !r.Complete || r.Remaining != 0 {
				w.t.Errorf("teardown: complete %v, %d remaining", r.Complete, r.Remaining)
			}
			return r, map[string]string{}
		}},
	}
	for _, mode := range filterModes {
		for _, p := range paths {
			t.Run(mode.name+"/"+p.name, func(t *testing.T) {
				w := newOwnWorld(t, mode.opts)
				r, want := p.run(w)
				if err := r.Err(); err != nil {
					t.Errorf("%s: %v", p.name, err)
				}
				if r.Refused != 0 {
					t.Errorf("%d deletes of foreign sessions were asked for (and refused)", r.Refused)
				}
				// A replacement is created next to its predecessor, so it
				// may have another number.
				w.wantMirrored(want, w.vnis, 0)
				w.foreignIntact()
			})
		}
	}
}

// staleOurs adds a session of ours (our stack, our target) on eni with a
// stale VNI, as an earlier selection made it, and returns its id.
func (w *ownWorld) staleOurs(eni string, vni int32) string {
	w.t.Helper()
	id, err := w.acct.AddSession(awssim.SessionSpec{ENI: eni, Target: w.target, Filter: w.filter, Number: 1, VNI: vni,
		Tags: map[string]string{contract.TagStack: stack, contract.TagLB: w.alb, contract.TagVNI: "4242",
			contract.TagCreated: w.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}})
	if err != nil {
		w.t.Fatal(err)
	}
	return id
}

// TestTeardownEndsWithForeignSessionsOnOurTarget: foreign sessions on the
// stack's own target (which AWS would not let the stack delete) do not
// keep the teardown listing until its deadline.
func TestTeardownEndsWithForeignSessionsOnOurTarget(t *testing.T) {
	for _, mode := range filterModes {
		t.Run(mode.name, func(t *testing.T) {
			w := newOwnWorld(t, mode.opts)
			deadline := w.clock.Now().Add(14 * time.Minute)
			r := w.orch(w.config(w.alb, w.nlb)).Teardown(bg(), deadline)
			if !r.Complete || r.Err() != nil {
				t.Fatalf("complete %v, errors %v", r.Complete, r.Err())
			}
			if r.Deleted != 3 || r.Actual != 3 {
				t.Errorf("found %d and deleted %d sessions of ours, want 3 and 3", r.Actual, r.Deleted)
			}
			// Three foreign sessions use our target: reported, as they
			// keep CloudFormation from deleting it.
			if len(r.ForeignOnTarget) != 3 || len(r.Conflicts) != 1 {
				t.Errorf("foreign sessions on our target %v, conflicts %+v; want 3 reported", r.ForeignOnTarget, r.Conflicts)
			}
			// Six quiet listings a settle time apart, not the whole budget.
			if used := 14*time.Minute - deadline.Sub(w.clock.Now()); used > time.Minute {
				t.Errorf("teardown took %s of simulated time", used)
			}
			w.foreignIntact()
		})
	}
}

// TestOwnershipNeedsTagAndTarget: a session is ours only with our stack's
// tag and on our target.
func TestOwnershipNeedsTagAndTarget(t *testing.T) {
	cfg := mirror.Config{StackName: stack, TargetID: "tmt-ours", FilterID: "tmf-1"}
	tagged := map[string]string{contract.TagStack: stack}
	for _, tc := range []struct {
		s    mirror.Session
		ours bool
	}{
		{mirror.Session{TargetID: "tmt-ours", Tags: tagged}, true},
		{mirror.Session{TargetID: "tmt-other", Tags: tagged}, false},
		{mirror.Session{TargetID: "tmt-ours"}, false},
		{mirror.Session{TargetID: "tmt-ours", Tags: map[string]string{contract.TagStack: "other"}}, false},
		{mirror.Session{TargetID: "tmt-ours", Tags: map[string]string{"owner": "security-team"}}, false},
	} {
		if got := cfg.Owns(tc.s); got != tc.ours {
			t.Errorf("Owns(%+v) = %v", tc.s, got)
		}
	}
	if (mirror.Config{TargetID: "tmt-ours"}).Owns(mirror.Session{TargetID: "tmt-ours", Tags: map[string]string{contract.TagStack: ""}}) {
		t.Error("an empty stack name owns untagged sessions")
	}
}

// TestStackOwnNLBNeverSelected: the NLB behind the stack's mirror target
// is never selected, by ARN or by tag, whether the configuration names it
// or it is looked up from the target; its targets (the sniffers) are not
// mirrored and the reason is reported.
func TestStackOwnNLBNeverSelected(t *testing.T) {
	for _, named := range []bool{true, false} {
		t.Run(map[bool]string{true: "named in the configuration", false: "looked up from the mirror target"}[named], func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			tags := map[string]string{"apitap": "mirror"}
			own := w.lb("network", "apitap-test-mirror", tags)
			target, err := w.acct.AddMirrorTarget(own)
			if err != nil {
				t.Fatal(err)
			}
			sniffer, sniffENI := w.instance("c7g.large")
			w.group(own, "instance", sniffer)
			app := w.lb("application", "app", tags)
			i, e := w.instance("m5.large")
			w.group(app, "instance", i)

			cfg := w.config(own)
			cfg.LBTags = tags
			cfg.Mirror.TargetID = target
			if named {
				cfg.MirrorNLBARN = own
			}
			r := clean(t, "reconcile", w.orch(cfg).Reconcile(bg(), time.Time{}))
			if _, ok := problem(r.Problems, own, "", "the stack's own load balancer"); !ok {
				t.Errorf("own NLB not reported: %+v", r.Problems)
			}
			got := map[string]bool{}
			for _, s := range w.acct.Sessions() {
				got[s.ENI] = true
			}
			if !got[e] || got[sniffENI] || len(got) != 1 {
				t.Errorf("mirrored %v; want only %s (the app's), never the sniffer %s", got, e, sniffENI)
			}
		})
	}
}
