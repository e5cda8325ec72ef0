package orchestrator_test

import (
	"testing"
	"time"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

// A full reconcile mirrors every kind of target once, with the ownership
// tags and VNIs of docs/contracts.md §2-3, and a second run changes nothing.
func TestReconcileMirrorsEveryTargetKindOnce(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	i1, e1 := w.instance("m5.large")
	i2, e2 := w.instance("c6i.xlarge")
	ipENI, ip := func() (string, string) {
		e, ip, err := w.acct.AddENI(w.vpc)
		if err != nil {
			t.Fatal(err)
		}
		return e, ip
	}()
	i4, e4 := w.instance("m5.large") // behind an ALB behind the NLB
	i5, e5 := w.instance("m5.large") // behind the Classic LB
	_, e6 := w.instance("m5.large")  // registered nowhere

	web := w.lb("application", "web", nil)
	w.group(web, "instance", i1, i2)
	w.group(web, "ip", ip)
	inner := w.lb("application", "inner", nil) // not selected itself
	w.group(inner, "instance", i4)
	edge := w.lb("network", "edge", nil)
	w.group(edge, "alb", inner)
	old := w.classic(w.vpc, "old", nil, i5)

	arns := []string{web, edge, old}
	vnis := mirror.VNIs(arns)
	o := w.orch(w.config(arns...))
	r := clean(t, "first reconcile", o.Reconcile(bg(), time.Time{}))
	if r.Created != 5 || r.Deleted != 0 || len(r.Problems) != 0 || len(r.Conflicts) != 0 || len(r.Unsupported) != 0 {
		t.Errorf("first reconcile: %+v; want 5 created, nothing else", *r)
	}
	w.wantMirrored(map[string]string{e1: web, e2: web, ipENI: web, e4: edge, e5: old}, vnis, 1)
	for _, s := range w.acct.Sessions() {
		if s.ENI == e6 {
			t.Errorf("unregistered instance's ENI %s mirrored: %+v", e6, s)
		}
		if s.Tags[contract.TagStack] != stack {
			t.Errorf("session %s not tagged with the stack: %v", s.ID, s.Tags)
		}
	}

	before := w.mark()
	r = clean(t, "second reconcile", o.Reconcile(bg(), time.Time{}))
	if n := w.mark() - before; n != 0 {
		t.Errorf("second reconcile made %d mutations, want 0: %+v", n, w.acct.Stats().Mutations[before:])
	}
	if r.Created != 0 || r.Deleted != 0 || r.Kept != 5 {
		t.Errorf("second reconcile: created %d deleted %d kept %d; want 0 0 5", r.Created, r.Deleted, r.Kept)
	}

	// A fresh container (no memory) sees the same: nothing to do.
	before = w.mark()
	clean(t, "reconcile from a new container", w.orch(w.config(arns...)).Reconcile(bg(), time.Time{}))
	if n := w.mark() - before; n != 0 {
		t.Errorf("new container's reconcile made %d mutations, want 0", n)
	}
}

// Load balancers are selected by tag or by ARN; what cannot be selected
// is reported with why, and nothing of it is mirrored.
func TestSelection(t *testing.T) {
	type world2 struct {
		*world
		tagged, untagged, otherVPC, legacy, lambda string
		eTagged, eUntagged, eOther, eClassic       string
	}
	build := func(t *testing.T) *world2 {
		w := &world2{world: newWorld(t, awssim.Options{})}
		team := map[string]string{"team": "api"}
		var i string
		i, w.eTagged = w.instance("m5.large")
		w.tagged = w.lb("application", "tagged", team)
		w.group(w.tagged, "instance", i)
		i, w.eUntagged = w.instance("m5.large")
		w.untagged = w.lb("application", "untagged", map[string]string{"team": "web"})
		w.group(w.untagged, "instance", i)
		// A load balancer in another VPC, its target there too.
		oi, oe, err := w.acct.AddInstance(w.other, "m5.large")
		if err != nil {
			t.Fatal(err)
		}
		w.eOther = oe
		w.otherVPC = w.lbIn(w.other, "network", "elsewhere", team)
		w.group(w.otherVPC, "instance", oi)
		i, w.eClassic = w.instance("m5.large")
		w.legacy = w.classic(w.vpc, "legacy", team, i)
		w.lambda = w.lb("application", "functions", nil)
		w.group(w.lambda, "lambda", "arn:aws:lambda:us-east-1:123456789012:function:f")
		return w
	}
	missing := "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/gone/00000000000000ff"
	missingClassic := "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/gone-classic"

	for _, tc := range []struct {
		name     string
		cfg      func(w *world2) orchestrator.Config
		mirrored func(w *world2) map[string]string // ENI -> LB
		selected func(w *world2) []string          // for VNIs
		problems func(w *world2) map[string]string // LB -> reason text
	}{
		{
			name: "by tag",
			cfg: func(w *world2) orchestrator.Config {
				c := w.config()
				c.LBTags = map[string]string{"team": "api"}
				return c
			},
			mirrored: func(w *world2) map[string]string {
				return map[string]string{w.eTagged: w.tagged, w.eClassic: w.legacy}
			},
			selected: func(w *world2) []string { return []string{w.tagged, w.legacy} },
			problems: func(w *world2) map[string]string {
				return map[string]string{w.otherVPC: "not in the stack's VPC"}
			},
		},
		{
			name: "by ARN",
			cfg: func(w *world2) orchestrator.Config {
				return w.config(w.untagged, w.otherVPC, missing, missingClassic)
			},
			mirrored: func(w *world2) map[string]string { return map[string]string{w.eUntagged: w.untagged} },
			selected: func(w *world2) []string { return []string{w.untagged} },
			problems: func(w *world2) map[string]string {
				return map[string]string{w.otherVPC: "not in the stack's VPC", missing: "not found", missingClassic: "not found"}
			},
		},
		{
			name: "lambda targets",
			cfg:  func(w *world2) orchestrator.Config { return w.config(w.lambda, w.tagged) },
			mirrored: func(w *world2) map[string]string {
				return map[string]string{w.eTagged: w.tagged}
			},
			selected: func(w *world2) []string { return []string{w.lambda, w.tagged} },
			problems: func(w *world2) map[string]string { return map[string]string{w.lambda: "not mirrorable"} },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := build(t)
			r := clean(t, "reconcile", w.orch(tc.cfg(w)).Reconcile(bg(), time.Time{}))
			w.wantMirrored(tc.mirrored(w), mirror.VNIs(tc.selected(w)), 1)
			want := tc.problems(w)
			for lb, text := range want {
				if _, ok := problem(r.Problems, lb, "", text); !ok {
					t.Errorf("no problem about %s saying %q in %+v", lb, text, r.Problems)
				}
			}
			for _, p := range r.Problems {
				if _, ok := want[p.LB]; !ok {
					t.Errorf("unexpected problem %+v", p)
				}
			}
			for _, s := range w.acct.Sessions() {
				if s.ENI == w.eOther {
					t.Errorf("target in another VPC mirrored: %+v", s)
				}
			}
		})
	}
}

// A stopped instance is no longer mirrored: its session goes once the
// grace period is over. Draining and unused targets are not mirrored.
func TestStoppedAndDrainingTargets(t *testing.T) {
	w := newWorld(t, awssim.Options{DrainDelay: time.Hour})
	i1, e1 := w.instance("m5.large")
	i2, e2 := w.instance("m5.large")
	i3, e3 := w.instance("m5.large")
	i4, e4 := w.instance("m5.large")
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance", i1, i2, i3, i4)
	if err := w.acct.StopInstance(i4); err != nil { // unused from the start
		t.Fatal(err)
	}
	w.deregister(tg, i3) // draining for an hour
	vnis := mirror.VNIs([]string{web})
	o := w.orch(w.config(web))
	clean(t, "first reconcile", o.Reconcile(bg(), time.Time{}))
	w.wantMirrored(map[string]string{e1: web, e2: web}, vnis, 1)
	for _, e := range []string{e3, e4} {
		if n := w.attempts(0, e); n != 0 {
			t.Errorf("%s (draining or unused) got %d create calls", e, n)
		}
	}

	// Stopped, and deregistered (draining), right after their sessions
	// were created: still within the grace period, they stay.
	if err := w.acct.StopInstance(i1); err != nil {
		t.Fatal(err)
	}
	w.deregister(tg, i2)
	w.clock.Advance(time.Minute)
	r := clean(t, "reconcile within grace", o.Reconcile(bg(), time.Time{}))
	if len(r.Protected) != 2 || r.Deleted != 0 {
		t.Errorf("within grace: protected %d deleted %d, want 2 0", len(r.Protected), r.Deleted)
	}
	w.wantMirrored(map[string]string{e1: web, e2: web}, vnis, 1)

	w.clock.Advance(3 * time.Minute)
	r = clean(t, "reconcile after grace", o.Reconcile(bg(), time.Time{}))
	if r.Deleted != 2 {
		t.Errorf("after grace: deleted %d, want 2", r.Deleted)
	}
	w.wantMirrored(map[string]string{}, vnis, 1)

	// Started again: mirrored again.
	if err := w.acct.StartInstance(i1); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Second)
	clean(t, "reconcile after start", o.Reconcile(bg(), time.Time{}))
	w.wantMirrored(map[string]string{e1: web}, vnis, 1)
}

// An ENI that two selected load balancers target gets one session, for
// the first ARN in sorted order (whatever the configuration's order).
func TestENIOfTwoLoadBalancers(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ipFor string // which load balancer registers the ENI by IP
	}{
		{"both by instance", ""},
		{"first by ip", "alpha"},
		{"second by ip", "zeta"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			i, e := w.instance("m5.large")
			// zeta is created first: creation order is not ARN order.
			zeta := w.lb("application", "zeta", nil)
			alpha := w.lb("application", "alpha", nil)
			if !(alpha < zeta) {
				t.Fatalf("test bug: %s sorts after %s", alpha, zeta)
			}
			for name, lb := range map[string]string{"alpha": alpha, "zeta": zeta} {
				if tc.ipFor == name {
					w.group(lb, "ip", w.ipOf(e))
				} else {
					w.group(lb, "instance", i)
				}
			}
			vnis := mirror.VNIs([]string{alpha, zeta})
			o := w.orch(w.config(zeta, alpha))
			r := clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))
			if r.Created != 1 {
				t.Errorf("created %d, want 1", r.Created)
			}
			w.wantMirrored(map[string]string{e: alpha}, vnis, 1)
			before := w.mark()
			clean(t, "second reconcile", o.Reconcile(bg(), time.Time{}))
			if n := w.mark() - before; n != 0 {
				t.Errorf("second reconcile made %d mutations (the two load balancers fight over the ENI?)", n)
			}
		})
	}
}

// A foreign session on an ENI we want is never touched: the ENI is
// skipped and reported, or with ConflictCoexist ours goes above it and is
// reported as possibly shadowed.
func TestForeignSessionConflict(t *testing.T) {
	for _, tc := range []struct {
		name          string
		policy        mirror.ConflictPolicy
		foreignNumber int32
		wantNumber    int32 // 0: no session of ours
		wantReason    string
	}{
		{"skip", mirror.ConflictSkip, 1, 0, "skipped"},
		{"default is skip", "", 1, 0, "skipped"},
		{"coexist above", mirror.ConflictCoexist, 1, 2, "possibly shadowed"},
		{"coexist above a high number", mirror.ConflictCoexist, 7, 8, "possibly shadowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			i, e := w.instance("m5.large")
			i2, e2 := w.instance("m5.large")
			web := w.lb("application", "web", nil)
			w.group(web, "instance", i, i2)
			fid := w.foreign(e, tc.foreignNumber, map[string]string{"owner": "security-team"})
			foreignBefore, _ := w.session(fid)

			cfg := w.config(web)
			cfg.Mirror.Conflict = tc.policy
			o := w.orch(cfg)
			r := clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))
			p, ok := problem(r.Conflicts, "", e, tc.wantReason)
			if !ok {
				t.Fatalf("no conflict on %s saying %q: %+v", e, tc.wantReason, r.Conflicts)
			}
			if len(p.Sessions) != 1 || p.Sessions[0] != fid {
				t.Errorf("conflict names sessions %v, want [%s]", p.Sessions, fid)
			}
			vnis := mirror.VNIs([]string{web})
			got := w.ours()
			if tc.wantNumber == 0 {
				if len(got[e]) != 0 {
					t.Errorf("session of ours created next to the foreign one: %+v", got[e])
				}
			} else if len(got[e]) != 1 || got[e][0].Number != tc.wantNumber {
				t.Errorf("ours on %s: %+v, want one numbered %d", e, got[e], tc.wantNumber)
			}
			if len(got[e2]) != 1 || uint32(got[e2][0].VNI) != vnis[web] {
				t.Errorf("ENI without conflict: %+v", got[e2])
			}

			// Later runs leave the foreign session exactly as it was.
			w.clock.Advance(10 * time.Minute)
			clean(t, "second reconcile", o.Reconcile(bg(), time.Time{}))
			after, ok := w.session(fid)
			if !ok || after.Number != foreignBefore.Number || after.VNI != foreignBefore.VNI || after.Tags["owner"] != "security-team" {
				t.Errorf("foreign session changed: before %+v after %+v (exists %v)", foreignBefore, after, ok)
			}
			if w.deletedIDs()[fid] {
				t.Errorf("foreign session %s deleted", fid)
			}
		})
	}
}

// A source whose instance type cannot be mirrored is reported and not
// tried again until its backoff has passed on the clock; then once.
func TestUnsupportedInstanceTypeBackoff(t *testing.T) {
	w := newWorld(t, awssim.Options{}) // t2 unsupported by default
	it2, et2 := w.instance("t2.micro")
	ok, eok := w.instance("m5.large")
	web := w.lb("application", "web", nil)
	w.group(web, "instance", it2, ok)
	cfg := w.config(web)
	cfg.BackoffBase = 10 * time.Minute
	o := w.orch(cfg)

	r := clean(t, "first reconcile", o.Reconcile(bg(), time.Time{}))
	if _, found := problem(r.Unsupported, "", et2, "not supported for Traffic Mirroring"); !found {
		t.Errorf("t2 ENI not reported unsupported: %+v", r.Unsupported)
	}
	if r.Fallbacks != 0 {
		t.Errorf("%d errors understood from their message: awssim answers the documented code", r.Fallbacks)
	}
	if n := w.attempts(0, et2); n != 1 {
		t.Errorf("first run: %d create calls for the t2 ENI, want 1", n)
	}
	w.wantMirrored(map[string]string{eok: web}, mirror.VNIs([]string{web}), 1)

	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{time.Minute, 0},      // 1m after the failure: blocked
		{8 * time.Minute, 0},  // 9m: still blocked
		{2 * time.Minute, 1},  // 11m: retried once
		{time.Minute, 0},      // blocked again, for longer
		{15 * time.Minute, 0}, // 16m+: the second backoff is 20m
	} {
		w.clock.Advance(step.advance)
		before := w.mark()
		r := clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))
		if n := w.attempts(before, et2); n != step.want {
			t.Errorf("at %s: %d create calls for the t2 ENI, want %d", w.clock.Now().Sub(start), n, step.want)
		}
		if _, found := problem(r.Unsupported, "", et2, ""); !found {
			t.Errorf("at %s: t2 ENI not reported: %+v", w.clock.Now().Sub(start), r.Unsupported)
		}
	}
}

// Deselecting a load balancer deletes its sessions and never a foreign
// one, even one on our mirror target next to ours.
func TestDeselectDeletesOnlyOurs(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	ia, ea := w.instance("m5.large")
	ib, eb := w.instance("m5.large")
	ib2, eb2 := w.instance("m5.large")
	a := w.lb("application", "a", nil)
	b := w.lb("application", "b", nil)
	w.group(a, "instance", ia)
	w.group(b, "instance", ib, ib2)
	clean(t, "reconcile", w.orch(w.config(a, b)).Reconcile(bg(), time.Time{}))
	w.wantMirrored(map[string]string{ea: a, eb: b, eb2: b}, mirror.VNIs([]string{a, b}), 1)
	// Foreign sessions on b's ENIs, after ours: another stack's, and one
	// with no tag at all.
	other := w.foreign(eb, 2, map[string]string{contract.TagStack: "other-stack", contract.TagLB: b})
	untagged := w.foreign(eb2, 3, nil)

	o := w.orch(w.config(a)) // a stack update: new containers
	w.clock.Advance(time.Minute)
	r := clean(t, "reconcile within grace", o.Reconcile(bg(), time.Time{}))
	if r.Deleted != 0 || len(r.Protected) != 2 {
		t.Errorf("within grace: deleted %d protected %d, want 0 2", r.Deleted, len(r.Protected))
	}
	w.clock.Advance(5 * time.Minute)
	r = clean(t, "reconcile after grace", o.Reconcile(bg(), time.Time{}))
	if r.Deleted != 2 {
		t.Errorf("deleted %d, want 2", r.Deleted)
	}
	w.wantMirrored(map[string]string{ea: a}, mirror.VNIs([]string{a}), 1)
	for _, id := range []string{other, untagged} {
		if _, ok := w.session(id); !ok || w.deletedIDs()[id] {
			t.Errorf("foreign session %s deleted", id)
		}
	}
}

// RemoveInstances deletes this stack's sessions of stopped instances only.
func TestRemoveInstances(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	i1, e1 := w.instance("m5.large")
	i2, e2 := w.instance("m5.large")
	web := w.lb("application", "web", nil)
	w.group(web, "instance", i1, i2)
	o := w.orch(w.config(web))
	clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))
	// Another stack mirrors i1 too, with the same instance tag.
	other := w.foreign(e1, 2, map[string]string{contract.TagStack: "other-stack", "apitap:instance": i1})
	if err := w.acct.StopInstance(i1); err != nil {
		t.Fatal(err)
	}

	// No grace here: the instance is known to be stopped.
	r := clean(t, "remove", o.RemoveInstances(bg(), []string{i1, i2}, time.Time{}))
	if r.Deleted != 1 {
		t.Errorf("deleted %d, want 1", r.Deleted)
	}
	got := w.ours()
	if len(got[e1]) != 0 {
		t.Errorf("stopped instance keeps our session: %+v", got[e1])
	}
	if len(got[e2]) != 1 {
		t.Errorf("running instance lost its session: %+v", got[e2])
	}
	if _, ok := w.session(other); !ok {
		t.Errorf("other stack's session %s deleted", other)
	}
	// Repeated (a duplicated event): nothing more to do, no error.
	before := w.mark()
	r = clean(t, "remove again", o.RemoveInstances(bg(), []string{i1}, time.Time{}))
	if w.mark() != before || r.Deleted != 0 {
		t.Errorf("repeated remove: %d mutations, deleted %d", w.mark()-before, r.Deleted)
	}
	// A terminated instance no longer described: still no error.
	if err := w.acct.TerminateInstance(i1); err != nil {
		t.Fatal(err)
	}
	clean(t, "remove terminated", o.RemoveInstances(bg(), []string{i1, "i-00000000000000dead"}, time.Time{}))
}

// ReconcileTargets looks only at the targets an event names, in the load
// balancers of that group.
func TestReconcileTargets(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	i1, e1 := w.instance("m5.large")
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance", i1)
	vnis := mirror.VNIs([]string{web})
	o := w.orch(w.config(web))
	clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))

	// Registered together, but the event names only i9: i8 waits for the
	// full reconcile.
	i8, e8 := w.instance("m5.large")
	i9, e9 := w.instance("m5.large")
	w.register(tg, i8, i9)
	w.acct.ResetCalls()
	r := clean(t, "register", o.ReconcileTargets(bg(), tg, []string{i9}, time.Time{}))
	if calls := w.acct.Calls().Total; calls > 10 {
		t.Errorf("one registration took %d API calls, want <= 10: %v", calls, w.acct.Calls().ByAction)
	}
	if r.Created != 1 {
		t.Errorf("created %d, want 1", r.Created)
	}
	w.wantMirrored(map[string]string{e1: web, e9: web}, vnis, 1)

	w.clock.Advance(5 * time.Minute)
	w.deregister(tg, i9)
	r = clean(t, "deregister", o.ReconcileTargets(bg(), tg, []string{i9}, time.Time{}))
	if r.Deleted != 1 {
		t.Errorf("deregistration deleted %d, want 1", r.Deleted)
	}
	w.wantMirrored(map[string]string{e1: web}, vnis, 1)

	// A group not behind a selected load balancer: nothing at all.
	i7, e7 := w.instance("m5.large")
	other := w.lb("application", "other", nil)
	otg := w.group(other, "instance", i7)
	before := w.mark()
	r = clean(t, "unselected group", o.ReconcileTargets(bg(), otg, []string{i7}, time.Time{}))
	if w.mark() != before || r.Created != 0 || r.Deleted != 0 {
		t.Errorf("unselected group: %d mutations, %+v", w.mark()-before, *r)
	}
	if len(w.ours()[e7]) != 0 {
		t.Errorf("target of an unselected load balancer mirrored")
	}
	clean(t, "full reconcile", o.Reconcile(bg(), time.Time{}))
	w.wantMirrored(map[string]string{e1: web, e8: web}, vnis, 1)
}

// A registration event in an instance target group of a load balancer that
// also has an ip target group mirrors the new target.
func TestReconcileTargetsMixedTargetGroups(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	eip, ip, err := w.acct.AddENI(w.vpc)
	if err != nil {
		t.Fatal(err)
	}
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance")
	iptg := w.group(web, "ip", ip)
	o := w.orch(w.config(web))
	clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))

	i, e := w.instance("m5.large")
	w.register(tg, i)
	r := o.ReconcileTargets(bg(), tg, []string{i}, time.Time{})
	if err := r.Err(); err != nil {
		t.Fatalf("ReconcileTargets(%s, [%s]) with an ip group %s on the same load balancer: %v", tg, i, iptg, err)
	}
	w.wantMirrored(map[string]string{eip: web, e: web}, mirror.VNIs([]string{web}), 1)
}

// ReconcileClassic mirrors an instance registered with a selected Classic
// load balancer and removes the session when it is deregistered.
func TestReconcileClassic(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	i1, e1 := w.instance("m5.large")
	old := w.classic(w.vpc, "old", nil)
	vnis := mirror.VNIs([]string{old})
	o := w.orch(w.config(old))
	if err := w.acct.SetClassicInstances("old", i1); err != nil {
		t.Fatal(err)
	}
	clean(t, "register", o.ReconcileClassic(bg(), "old", []string{i1}, time.Time{}))
	w.wantMirrored(map[string]string{e1: old}, vnis, 1)
	w.clock.Advance(5 * time.Minute)
	if err := w.acct.SetClassicInstances("old"); err != nil {
		t.Fatal(err)
	}
	clean(t, "deregister", o.ReconcileClassic(bg(), "old", []string{i1}, time.Time{}))
	w.wantMirrored(map[string]string{}, vnis, 1)
}

// Teardown deletes every session of the stack and nothing else, also when
// Describe lags behind creates and deletes.
func TestTeardown(t *testing.T) {
	for _, tc := range []struct {
		name        string
		delay       time.Duration
		sinceCreate time.Duration // between the last create and the teardown
	}{
		{"consistent", 0, time.Minute},
		{"deletes visible for a while", 30 * time.Second, time.Minute},
		{"creates not visible yet", 30 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			web := w.lb("application", "web", nil)
			tg := w.group(web, "instance")
			var enis []string
			for range 4 {
				i, e := w.instance("m5.large")
				w.register(tg, i)
				enis = append(enis, e)
			}
			w.acct.SetFaults(awssim.Faults{SessionVisibilityDelay: tc.delay})
			clean(t, "reconcile", w.orch(w.config(web)).Reconcile(bg(), time.Time{}))
			if n := len(w.ours()); n != 4 {
				t.Fatalf("setup: %d ENIs mirrored, want 4", n)
			}
			// Foreign sessions next to ours.
			other := w.foreign(enis[0], 2, map[string]string{contract.TagStack: "other-stack"})
			untagged := w.foreign(enis[1], 3, nil)
			w.clock.Advance(tc.sinceCreate)

			o := w.orch(w.config(web))
			r := clean(t, "teardown", o.Teardown(bg(), w.clock.Now().Add(5*time.Minute)))
			if got := w.ours(); len(got) != 0 {
				t.Errorf("teardown left sessions of ours (created %s before it, visibility delay %s): %+v", tc.sinceCreate, tc.delay, got)
			}
			if r.Left != 0 {
				t.Errorf("left %d", r.Left)
			}
			for _, id := range []string{other, untagged} {
				if _, ok := w.session(id); !ok {
					t.Errorf("foreign session %s deleted", id)
				}
			}
		})
	}
}

// Under injected faults the reconcile converges within a few runs and
// never creates a session twice.
func TestFaultsConverge(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults awssim.Faults
	}{
		{"throttling", awssim.Faults{ThrottleRate: 0.3}},
		{"server errors", awssim.Faults{ServerErrorRate: 0.2}},
		{"lost create responses", awssim.Faults{LostResponseRate: 0.5, Actions: []string{"CreateTrafficMirrorSession"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{Seed: 7})
			web := w.lb("application", "web", nil)
			tg := w.group(web, "instance")
			want := map[string]string{}
			for range 12 {
				i, e := w.instance("m5.large")
				w.register(tg, i)
				want[e] = web
			}
			w.acct.SetFaults(tc.faults)
			o := w.orch(w.config(web))
			runs := 0
			for ; runs < 4; runs++ {
				r := o.Reconcile(bg(), time.Time{})
				w.clock.Advance(time.Minute)
				if r.Err() == nil && len(w.ours()) == len(want) && r.Created == 0 {
					break
				}
			}
			if runs == 4 {
				t.Errorf("not converged after 4 runs")
			}
			w.acct.SetFaults(awssim.Faults{})
			w.wantMirrored(want, mirror.VNIs([]string{web}), 1)
			st := w.acct.Stats()
			if len(st.Duplicates) != 0 {
				t.Errorf("duplicate sessions: %+v", st.Duplicates)
			}
			if st.SessionsCreated != len(want) || st.SessionsDeleted != 0 {
				t.Errorf("sessions created %d deleted %d, want %d 0", st.SessionsCreated, st.SessionsDeleted, len(want))
			}
		})
	}
}

// A reconcile stops before its deadline, says how much it left, and the
// next run does the rest.
func TestDeadlineLeavesRestForNextRun(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance")
	want := map[string]string{}
	for range 10 {
		i, e := w.instance("m5.large")
		w.register(tg, i)
		want[e] = web
	}
	cfg := w.config(web)
	cfg.MutationsPerSecond = 1
	cfg.Margin = time.Second
	o := w.orch(cfg)
	deadline := w.clock.Now().Add(5 * time.Second)
	r := clean(t, "reconcile with deadline", o.Reconcile(bg(), deadline))
	if r.Left == 0 || r.Created == 0 || r.Created+r.Left != 10 {
		t.Errorf("created %d left %d; want some of each, 10 in all", r.Created, r.Left)
	}
	if got := len(w.ours()); got != r.Created {
		t.Errorf("%d sessions exist, result says %d created", got, r.Created)
	}
	if w.clock.Now().After(deadline) {
		t.Errorf("worked until %s, past the deadline %s", w.clock.Now(), deadline)
	}
	r2 := clean(t, "next reconcile", o.Reconcile(bg(), time.Time{}))
	if r2.Created != r.Left || r2.Left != 0 {
		t.Errorf("next run created %d left %d; want %d 0", r2.Created, r2.Left, r.Left)
	}
	w.wantMirrored(want, mirror.VNIs([]string{web}), 1)
	if d := w.acct.Stats().Duplicates; len(d) != 0 {
		t.Errorf("duplicates: %+v", d)
	}
}

// The rate limiter sleeps on the orchestrator's clock: 20 creates at 5 a
// second (burst 5) take at least 3 simulated seconds.
func TestRateLimitUsesClock(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance")
	for range 20 {
		i, _ := w.instance("m5.large")
		w.register(tg, i)
	}
	cfg := w.config(web)
	cfg.MutationsPerSecond = 5
	o := w.orch(cfg)
	t0 := w.clock.Now()
	r := clean(t, "reconcile", o.Reconcile(bg(), time.Time{}))
	if r.Created != 20 {
		t.Fatalf("created %d, want 20", r.Created)
	}
	if d := w.clock.Now().Sub(t0); d < 3*time.Second || d > 5*time.Second {
		t.Errorf("20 creates took %s of simulated time, want 3s to 5s", d)
	}
	// Creates were spaced: no second held more than 5 + burst.
	perSecond := map[int64]int{}
	for _, m := range w.acct.Stats().Mutations {
		perSecond[m.Time.Unix()]++
	}
	for s, n := range perSecond {
		if n > 10 {
			t.Errorf("%d mutations in second %d", n, s)
		}
	}
}

// A session we deleted and want again is re-created, whether or not EC2
// would answer the create's ClientToken with the deleted session.
func TestRecreateAfterDelete(t *testing.T) {
	for _, tc := range []struct {
		name string
		gap  time.Duration // between the delete and the new create
		// newContainer re-creates from another orchestrator than the one
		// that deleted (another Lambda function or a cold start).
		newContainer bool
	}{
		{"same second: token replay", 100 * time.Millisecond, false},
		{"seconds later: token mismatch", 5 * time.Second, false},
		{"next token window", 11 * time.Minute, false},
		{"same second, other container", 100 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			i, e := w.instance("m5.large")
			web := w.lb("application", "web", nil)
			tg := w.group(web, "instance", i)
			cfg := w.config(web)
			cfg.Mirror.Grace = 50 * time.Millisecond
			o := w.orch(cfg)
			clean(t, "create", o.Reconcile(bg(), time.Time{}))
			first := w.ours()[e]
			if len(first) != 1 {
				t.Fatalf("setup: %+v", first)
			}
			w.clock.Advance(200 * time.Millisecond)
			w.deregister(tg, i)
			r := clean(t, "delete", o.Reconcile(bg(), time.Time{}))
			if r.Deleted != 1 || len(w.ours()[e]) != 0 {
				t.Fatalf("setup: deregistered target's session not deleted: %+v", *r)
			}
			w.clock.Advance(tc.gap)
			w.register(tg, i)
			if tc.newContainer {
				o = w.orch(cfg)
			}
			r = clean(t, "re-create", o.Reconcile(bg(), time.Time{}))
			got := w.ours()[e]
			if tc.newContainer && len(got) == 0 {
				// Within the same second, another container cannot tell
				// EC2's replay of the deleted session from a new one (the
				// creation tags are equal): the next run heals it.
				w.clock.Advance(5 * time.Minute)
				r = clean(t, "next run", o.Reconcile(bg(), time.Time{}))
				got = w.ours()[e]
			}
			if len(got) != 1 || got[0].ID == first[0].ID {
				t.Errorf("after re-registration: sessions of ours %+v (deleted %s), result created %d", got, first[0].ID, r.Created)
			}
		})
	}
}

// ReconcileInstances (an instance launched or started) mirrors the
// instance if a selected load balancer targets it, within the 10-call
// budget, and leaves everything else alone.
func TestReconcileInstances(t *testing.T) {
	for _, tc := range []struct {
		name string
		// setup returns the event's instance ids and the ENIs that must
		// then be mirrored (for web).
		setup    func(w *world, web, tg string) (ids []string, want []string)
		maxCalls int
	}{
		{
			name: "launched target",
			setup: func(w *world, web, tg string) ([]string, []string) {
				i, e := w.instance("m5.large")
				w.register(tg, i)
				return []string{i}, []string{e}
			},
			maxCalls: 10,
		},
		{
			name: "launched target of a load balancer with ip targets too",
			setup: func(w *world, web, tg string) ([]string, []string) {
				// The ip target is not named by the event: it waits for
				// the full reconcile.
				_, ip, err := w.acct.AddENI(w.vpc)
				if err != nil {
					w.t.Fatal(err)
				}
				w.group(web, "ip", ip)
				i, e := w.instance("m5.large")
				w.register(tg, i)
				return []string{i}, []string{e}
			},
			maxCalls: 10,
		},
		{
			name: "instance in another VPC",
			setup: func(w *world, web, tg string) ([]string, []string) {
				i, _, err := w.acct.AddInstance(w.other, "m5.large")
				if err != nil {
					w.t.Fatal(err)
				}
				return []string{i}, nil
			},
			maxCalls: 10,
		},
		{
			name: "instance targeted by nothing",
			setup: func(w *world, web, tg string) ([]string, []string) {
				i, _ := w.instance("m5.large")
				return []string{i}, nil
			},
			maxCalls: 10,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, awssim.Options{})
			web := w.lb("application", "web", nil)
			tg := w.group(web, "instance")
			o := w.orch(w.config(web))
			ids, want := tc.setup(w, web, tg)
			w.acct.ResetCalls()
			r := o.ReconcileInstances(bg(), ids, time.Time{})
			if err := r.Err(); err != nil {
				t.Fatalf("ReconcileInstances(%v): %v", ids, err)
			}
			if calls := w.acct.Calls().Total; calls > tc.maxCalls {
				t.Errorf("%d API calls, want <= %d: %v", calls, tc.maxCalls, w.acct.Calls().ByAction)
			}
			m := map[string]string{}
			for _, e := range want {
				m[e] = web
			}
			w.wantMirrored(m, mirror.VNIs([]string{web}), 1)
		})
	}
}

// A late "running" event for an instance stopped since removes its
// session rather than keeping it.
func TestReconcileInstancesStoppedSince(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	i, e := w.instance("m5.large")
	web := w.lb("application", "web", nil)
	w.group(web, "instance", i)
	o := w.orch(w.config(web))
	clean(t, "launch", o.ReconcileInstances(bg(), []string{i}, time.Time{}))
	w.wantMirrored(map[string]string{e: web}, mirror.VNIs([]string{web}), 1)
	if err := w.acct.StopInstance(i); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(5 * time.Minute)
	r := clean(t, "late event", o.ReconcileInstances(bg(), []string{i}, time.Time{}))
	if r.Deleted != 1 {
		t.Errorf("deleted %d, want 1", r.Deleted)
	}
	w.wantMirrored(map[string]string{}, nil, 1)
}

// An Auto Scaling launch asks only the group's target groups; a group
// that cannot be found falls back to asking the selected load balancers.
func TestReconcileLaunch(t *testing.T) {
	w := newWorld(t, awssim.Options{})
	web := w.lb("application", "web", nil)
	tg := w.group(web, "instance")
	other := w.lb("application", "other", nil)
	w.group(other, "instance")
	if err := w.acct.AddAutoScalingGroup("web-asg", []string{tg}, nil); err != nil {
		t.Fatal(err)
	}
	o := w.orch(w.config(web, other))
	i, e := w.instance("m5.large")
	if err := w.acct.SetInstanceGroup(i, "web-asg"); err != nil {
		t.Fatal(err)
	}
	w.register(tg, i)
	w.acct.ResetCalls()
	clean(t, "launch", o.ReconcileLaunch(bg(), "web-asg", i, time.Time{}))
	if n := w.acct.Calls().Get("elbv2", "DescribeTargetHealth"); n != 1 {
		t.Errorf("%d DescribeTargetHealth calls, want 1 (the group's target group only)", n)
	}
	if len(w.ours()[e]) != 1 {
		t.Errorf("launched instance not mirrored: %+v", w.ours())
	}
	j, f := w.instance("m5.large")
	w.register(tg, j)
	clean(t, "launch of an unknown group", o.ReconcileLaunch(bg(), "gone-asg", j, time.Time{}))
	if len(w.ours()[f]) != 1 {
		t.Errorf("instance of an unknown group not mirrored: %+v", w.ours())
	}
}
