// Package orchestrator keeps traffic mirror sessions in sync with the
// targets of the selected load balancers. Each entry point is thin: it
// reads what it needs (package inventory), asks the pure planner (package
// mirror) what to do, and has the writer (package sessionwriter) do it.
// Nothing is kept between invocations except what makes retries cheaper
// (which ENIs recently failed for a lasting reason, what the account's
// filters do), so a lost event or a cut-short run is repaired by the next
// scheduled reconcile.
//
// Every delete path (instance stopped or terminated, target deregistered,
// load balancer deselected, VNI changed, stack deleted) decides what is
// ours on the tags read back from AWS (mirror.Config.Owns), never on what a
// server-side filter returned; docs/contracts.md says why.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/sessionwriter"
)

// EC2 is the part of the EC2 API the reader and the writer call.
type EC2 interface {
	inventory.EC2
	sessionwriter.EC2
}

// Clients are the AWS clients, built once per Lambda container.
type Clients struct {
	EC2     EC2
	ELBv2   inventory.ELBv2
	Classic inventory.Classic
	// AutoScaling, when set, bounds the cost of an instance launch: the
	// instance's group names its target groups, so only those are asked.
	AutoScaling inventory.AutoScaling
}

// Orchestrator is built once per Lambda container; its methods are safe
// for concurrent use.
type Orchestrator struct {
	cfg   Config
	c     Clients
	clock Clock
	log   *slog.Logger
	w     *sessionwriter.Writer
	memo  inventory.Memo
}

// New returns an Orchestrator. clock and log may be nil.
func New(cfg Config, c Clients, clock Clock, log *slog.Logger) (*Orchestrator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = RealClock{}
	}
	if log == nil {
		log = slog.Default()
	}
	w, err := sessionwriter.New(cfg.writer(), c.EC2, clock, log)
	if err != nil {
		return nil, err
	}
	return &Orchestrator{cfg: cfg, c: c, clock: clock, log: log, w: w}, nil
}

// Result is what one operation did: the counts of the per-invocation
// summary and the items behind them.
type Result struct {
	Desired, Actual, Kept, Created, Deleted int
	// Adopted counts creates answered with a session an earlier or
	// concurrent create had made (the same ClientToken): nothing new.
	Adopted                int
	Conflicts, Unsupported []mirror.Problem
	Protected              []mirror.Delete
	// Problems are load balancers and targets that cannot be mirrored
	// (wrong VPC, lambda targets, the stack's own NLB, not found).
	Problems []mirror.Problem
	// Left counts actions not attempted because the deadline came: the
	// next run does them.
	Left int
	// Refused counts deletes refused because the session is not ours.
	// Always 0 unless apitap has a bug: the planner never asks.
	Refused int
	// Fallbacks counts AWS errors understood only from their message.
	Fallbacks int
	// Remaining is, for the teardown, how many sessions of ours were still
	// listed at its end; Complete says it saw none in its last listings.
	// ForeignOnTarget are the foreign sessions on the stack's mirror
	// target it saw last: they keep the target from being deleted.
	Remaining       int
	Complete        bool
	ForeignOnTarget []string
	APICalls        int
	Errors          []error
}

// Err joins the errors.
func (r *Result) Err() error { return errors.Join(r.Errors...) }

// run is one operation: its reader and its result so far.
type run struct {
	o      *Orchestrator
	rd     *inventory.Reader
	res    Result
	stopBy time.Time // no new work after this (zero: no limit)
}

func (o *Orchestrator) start(deadline time.Time) *run {
	r := &run{o: o, rd: inventory.New(o.cfg.Config, inventory.Clients{
		EC2: o.c.EC2, ELBv2: o.c.ELBv2, Classic: o.c.Classic, AutoScaling: o.c.AutoScaling,
	}, &o.memo, o.log)}
	if !deadline.IsZero() {
		r.stopBy = deadline.Add(-o.cfg.Margin)
	}
	return r
}

func (r *run) timeLeft() bool { return r.stopBy.IsZero() || r.o.clock.Now().Before(r.stopBy) }

func (r *run) fail(err error) { r.res.Errors = append(r.res.Errors, err) }

// finish completes the result with what the reader did and logs it.
func (r *run) finish(op string) *Result {
	r.res.APICalls += r.rd.Calls()
	r.res.Problems = append(r.res.Problems, r.rd.Problems()...)
	res := &r.res
	r.o.log.Info(op+" done", "desired", res.Desired, "actual", res.Actual, "kept", res.Kept, "created", res.Created,
		"adopted", res.Adopted, "deleted", res.Deleted, "conflicts", len(res.Conflicts), "unsupported", len(res.Unsupported),
		"left", res.Left, "errors", len(res.Errors), "api_calls", res.APICalls)
	return res
}

// planAndApply asks the planner what to do with desired and actual and
// has the writer do it. created feeds the grace period (nil: none).
// relabel, when set, gives deletes of sessions no longer desired a reason
// of the caller's.
func (r *run) planAndApply(ctx context.Context, desired []mirror.Source, actual []mirror.Session, created map[string]time.Time, relabel func(mirror.Session) string) {
	now := r.o.clock.Now()
	plan := mirror.Input{
		Config:  r.o.cfg.Mirror,
		Desired: desired,
		Actual:  actual,
		Blocked: r.o.w.Blocked(now),
		Created: created,
		Now:     now,
	}.Plan()
	if relabel != nil {
		for i := range plan.Deletes {
			plan.Deletes[i].Reason = relabel(plan.Deletes[i].Session)
		}
	}
	res := &r.res
	res.Desired += len(desired)
	res.Actual += len(actual)
	res.Kept += plan.Kept
	res.Conflicts = append(res.Conflicts, plan.Conflicts...)
	res.Unsupported = append(res.Unsupported, plan.Unsupported...)
	res.Protected = append(res.Protected, plan.Protected...)
	for _, c := range plan.Conflicts {
		r.o.log.Warn("mirror conflict", "eni", c.ENI, "lb", c.LB, "reason", c.Reason, "sessions", c.Sessions)
	}
	for _, u := range plan.Unsupported {
		r.o.log.Warn("not mirrored", "eni", u.ENI, "lb", u.LB, "reason", u.Reason)
	}
	r.apply(ctx, plan)
}

func (r *run) apply(ctx context.Context, plan mirror.Plan) *sessionwriter.Outcome {
	out := r.o.w.Apply(ctx, plan, r.stopBy, r.rd)
	res := &r.res
	res.Created += out.Created
	res.Adopted += out.Adopted
	res.Deleted += out.Deleted
	res.Left += out.Left
	res.Unsupported = append(res.Unsupported, out.Unsupported...)
	res.Refused += out.Refused
	res.Fallbacks += out.Fallbacks
	res.APICalls += out.APICalls
	res.Errors = append(res.Errors, out.Errors...)
	return out
}

// scope is what a scoped reconcile looks at.
type scope struct {
	// lbs are the selected load balancers; targets the targets of theirs
	// to mirror.
	lbs     []inventory.LoadBalancer
	targets []inventory.Target
	// instances whose sessions of ours are looked at even when they are
	// not targets any more (deregistered, stopped).
	instances []string
	// enis are looked at too (the ENIs of deregistered ip targets).
	enis []string
	// onlyLBs, when set, are the only load balancers that were asked: an
	// ENI whose session of ours is for another one is left to the full
	// reconcile, which sees every load balancer.
	onlyLBs map[string]bool
	// onlyENIs, when set, are the only ENIs planned for: a target address
	// an event named that another ENI holds now is left to the reconcile.
	onlyENIs map[string]bool
	// gone are ENIs whose owner is known to have stopped (an ECS task):
	// our sessions on them get no grace period.
	gone map[string]bool
}

// Reconcile is the full pass: every selected load balancer's targets, all
// of our sessions. It works until shortly before deadline (zero: none)
// and leaves the rest to the next run.
func (o *Orchestrator) Reconcile(ctx context.Context, deadline time.Time) *Result {
	r := o.start(deadline)
	lbs, err := r.rd.Selection(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile")
	}
	ts, err := r.rd.Targets(ctx, lbs, nil)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile")
	}
	desired, err := r.rd.Sources(ctx, lbs, ts, o.clock.Now())
	if err != nil {
		r.fail(err)
		return r.finish("reconcile")
	}
	actual, err := r.rd.AllSessions(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile")
	}
	r.planAndApply(ctx, desired, actual, inventory.CreatedTimes(actual), nil)
	return r.finish("reconcile")
}

// ReconcileInstances handles instances that started or launched: each is
// mirrored if it is a target of a selected load balancer, and its sessions
// are removed if it is not running (an event that arrived late).
func (o *Orchestrator) ReconcileInstances(ctx context.Context, ids []string, deadline time.Time) *Result {
	r := o.start(deadline)
	if len(ids) == 1 && o.c.AutoScaling != nil {
		// An instance of an Auto Scaling group: its group names the target
		// groups to ask, however many load balancers are selected.
		insts, err := r.rd.Instances(ctx, ids)
		if err != nil {
			r.fail(err)
			return r.finish("reconcile instances")
		}
		if in, ok := insts[ids[0]]; ok && in.Group != "" {
			return o.reconcileLaunch(ctx, r, in.Group, ids[0])
		}
	}
	return o.reconcileInstances(ctx, r, ids)
}

// ReconcileLaunch handles an instance an Auto Scaling group launched: only
// the target groups and Classic load balancers of that group are asked
// about it, so a launch costs a few calls whatever the selection's size.
func (o *Orchestrator) ReconcileLaunch(ctx context.Context, group, instanceID string, deadline time.Time) *Result {
	r := o.start(deadline)
	if o.c.AutoScaling == nil {
		return o.reconcileInstances(ctx, r, []string{instanceID})
	}
	return o.reconcileLaunch(ctx, r, group, instanceID)
}

func (o *Orchestrator) reconcileLaunch(ctx context.Context, r *run, group, id string) *Result {
	lbs, err := r.rd.Selection(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile launch")
	}
	ts, inScope, found, err := r.rd.LaunchTargets(ctx, lbs, group, id)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile launch")
	}
	if !found {
		// The group is gone already (or the event named none): ask the
		// selected load balancers themselves.
		return o.reconcileSelected(ctx, r, lbs, []string{id})
	}
	o.scoped(ctx, r, scope{lbs: lbs, targets: ts, instances: []string{id}, onlyLBs: inScope})
	return r.finish("reconcile launch")
}

func (o *Orchestrator) reconcileInstances(ctx context.Context, r *run, ids []string) *Result {
	lbs, err := r.rd.Selection(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile instances")
	}
	return o.reconcileSelected(ctx, r, lbs, ids)
}

func (o *Orchestrator) reconcileSelected(ctx context.Context, r *run, lbs []inventory.LoadBalancer, ids []string) *Result {
	ts, err := r.rd.Targets(ctx, lbs, ids)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile instances")
	}
	o.scoped(ctx, r, scope{lbs: lbs, targets: ts, instances: ids})
	return r.finish("reconcile instances")
}

// ReconcileTargets handles a target registration in a target group
// (CloudTrail RegisterTargets): only the targets named are looked at, in
// the load balancers of that group.
func (o *Orchestrator) ReconcileTargets(ctx context.Context, targetGroupARN string, targetIDs []string, deadline time.Time) *Result {
	r := o.start(deadline)
	lbs, err := r.rd.Selection(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile targets")
	}
	owners, err := r.rd.GroupOwners(ctx, targetGroupARN)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile targets")
	}
	var inGroup []inventory.LoadBalancer
	onlyLBs := map[string]bool{}
	for _, lb := range lbs {
		if owners[lb.ARN] {
			inGroup = append(inGroup, lb)
			onlyLBs[lb.ARN] = true
		}
	}
	if len(inGroup) == 0 {
		o.log.Info("target group is not behind a selected load balancer: nothing to do", "target_group", targetGroupARN)
		return r.finish("reconcile targets")
	}
	ts, err := r.rd.Targets(ctx, inGroup, targetIDs)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile targets")
	}
	instanceIDs, enis, err := r.rd.SplitTargets(ctx, targetIDs)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile targets")
	}
	o.scoped(ctx, r, scope{lbs: lbs, targets: ts, instances: instanceIDs, enis: enis, onlyLBs: onlyLBs})
	return r.finish("reconcile targets")
}

// ReconcileDeregistered handles a target deregistration (CloudTrail
// DeregisterTargets): the targets named may still be targets of another
// selected load balancer, so every selected load balancer is asked about
// them (deregistrations are not on the launch path, where calls count).
func (o *Orchestrator) ReconcileDeregistered(ctx context.Context, targetGroupARN string, targetIDs []string, deadline time.Time) *Result {
	r := o.start(deadline)
	lbs, err := r.rd.Selection(ctx)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile deregistered targets")
	}
	ts, err := r.rd.Targets(ctx, lbs, targetIDs)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile deregistered targets")
	}
	instanceIDs, enis, err := r.rd.SplitTargets(ctx, targetIDs)
	if err != nil {
		r.fail(err)
		return r.finish("reconcile deregistered targets")
	}
	o.scoped(ctx, r, scope{lbs: lbs, targets: ts, instances: instanceIDs, enis: enis})
	return r.finish("reconcile deregistered targets")
}

// ReconcileClassic handles a Classic registration or deregistration.
func (o *Orchestrator) ReconcileClassic(ctx context.Context, lbName string, instanceIDs []string, deadline time.Time) *Result {
	return o.ReconcileInstances(ctx, instanceIDs, deadline)
}

// RemoveInstances deletes our sessions of instances that are stopping,
// stopped or terminated: sessions are billed while they exist. An
// instance that is running again by now (a late event) is left alone.
func (o *Orchestrator) RemoveInstances(ctx context.Context, ids []string, deadline time.Time) *Result {
	r := o.start(deadline)
	insts, err := r.rd.Instances(ctx, ids)
	if err != nil {
		r.fail(err)
		return r.finish("remove instances")
	}
	var gone []string
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		if in, ok := insts[id]; ok && in.Running() {
			o.log.Info("instance is running again: its sessions stay", "instance", id)
			continue
		}
		gone = append(gone, id)
	}
	if len(gone) == 0 {
		return r.finish("remove instances")
	}
	ours, err := r.rd.OurSessions(ctx, gone)
	if err != nil {
		r.fail(err)
		return r.finish("remove instances")
	}
	// No grace: the instance is known not to be running.
	r.planAndApply(ctx, nil, ours, nil, func(s mirror.Session) string {
		return "instance " + s.Tags[contract.TagInstance] + " is not running"
	})
	return r.finish("remove instances")
}

// Teardown deletes every session this stack owns, so that the mirror
// target can be deleted with the stack. A session created moments ago may
// not be listed yet, and a handler may still create one while it runs: it
// keeps listing until several listings, a few seconds apart, find none of
// ours. Foreign sessions, on the stack's target or not, are never touched
// and do not keep it waiting; those on the stack's target are reported. Result.Complete says whether it got there
// before the deadline; it stops early when listing fails three times in a
// row or when every delete fails for a reason retrying will not fix.
func (o *Orchestrator) Teardown(ctx context.Context, deadline time.Time) *Result {
	r := o.start(deadline)
	const quietListings, maxFailedListings = 6, 3
	quiet, failedListings := 0, 0
	seen := map[string]bool{}
	for round := 0; quiet < quietListings && r.timeLeft(); round++ {
		if round > 0 {
			if err := o.clock.Sleep(ctx, o.cfg.Settle); err != nil {
				r.fail(fmt.Errorf("tearing down: %w", err))
				break
			}
		}
		onTarget, err := r.rd.SessionsOnTarget(ctx)
		if err != nil {
			r.fail(err)
			if failedListings++; failedListings >= maxFailedListings || ctx.Err() != nil {
				break
			}
			continue
		}
		failedListings = 0
		var ours []mirror.Session
		r.res.ForeignOnTarget = nil
		for _, s := range onTarget {
			if o.cfg.Mirror.Owns(s) {
				ours = append(ours, s)
			} else {
				r.res.ForeignOnTarget = append(r.res.ForeignOnTarget, s.ID)
			}
		}
		r.res.Remaining = len(ours)
		if len(ours) == 0 {
			quiet++
			continue
		}
		quiet = 0
		for _, s := range ours {
			if !seen[s.ID] {
				seen[s.ID] = true
				r.res.Actual++
			}
		}
		plan := mirror.Input{Config: o.cfg.Mirror, Actual: ours, Now: o.clock.Now()}.Plan()
		for i := range plan.Deletes {
			plan.Deletes[i].Reason = "stack deleted"
		}
		out := r.apply(ctx, plan)
		r.res.Remaining -= out.Deleted
		if out.Refused > 0 || (out.Deleted == 0 && out.FailedDeletes > 0 && out.Left == 0) {
			break // access denied, or a bug: the next round would fail the same way
		}
	}
	r.res.Complete = quiet >= quietListings
	if n := len(r.res.ForeignOnTarget); n > 0 {
		// Not ours to delete; but while they use the target, CloudFormation
		// cannot delete it (TrafficMirrorTargetInUseException).
		o.log.Warn("foreign sessions use the stack's mirror target: deleting the target fails until their owners delete them",
			"sessions", r.res.ForeignOnTarget)
		r.res.Conflicts = append(r.res.Conflicts, mirror.Problem{Sessions: r.res.ForeignOnTarget,
			Reason: fmt.Sprintf("%d foreign sessions use the stack's mirror target %s (never deleted by apitap): the target cannot be deleted until their owners delete them", n, o.cfg.Mirror.TargetID)})
	}
	if !r.res.Complete && len(r.res.Errors) == 0 {
		r.fail(fmt.Errorf("tearing down: no time left with %d sessions of the stack still listed", r.res.Remaining))
	}
	return r.finish("teardown")
}

// scoped plans for the targets of sc only: the ENIs they resolve to, the
// ENIs of our sessions for sc.instances, and sc.enis.
func (o *Orchestrator) scoped(ctx context.Context, r *run, sc scope) {
	desired, err := r.rd.Sources(ctx, sc.lbs, sc.targets, o.clock.Now())
	if err != nil {
		r.fail(err)
		return
	}
	if sc.onlyENIs != nil {
		desired = slices.DeleteFunc(desired, func(s mirror.Source) bool { return !sc.onlyENIs[s.ENI] })
	}
	enis := slices.Clone(sc.enis)
	mirrored := map[string]bool{}
	for _, s := range desired {
		enis = append(enis, s.ENI)
		mirrored[s.InstanceID] = true
	}
	// The ENIs of instances no longer desired (stopped, deregistered) are
	// found through our sessions' instance tag.
	var unknown []string
	for _, id := range sc.instances {
		if !mirrored[id] {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) > 0 {
		ours, err := r.rd.OurSessions(ctx, unknown)
		if err != nil {
			r.fail(err)
			return
		}
		for _, s := range ours {
			enis = append(enis, s.ENI)
		}
	}
	actual, err := r.rd.SessionsOn(ctx, enis)
	if err != nil {
		r.fail(err)
		return
	}
	if sc.onlyLBs != nil {
		outside := map[string]bool{}
		for _, s := range actual {
			if o.cfg.Mirror.Owns(s) && !sc.onlyLBs[s.Tags[contract.TagLB]] {
				outside[s.ENI] = true
			}
		}
		desired = slices.DeleteFunc(desired, func(s mirror.Source) bool { return outside[s.ENI] })
		actual = slices.DeleteFunc(actual, func(s mirror.Session) bool { return outside[s.ENI] })
	}
	sort.Slice(actual, func(i, j int) bool { return actual[i].ID < actual[j].ID })
	created := inventory.CreatedTimes(actual)
	for _, s := range actual {
		if sc.gone[s.ENI] {
			delete(created, s.ID)
		}
	}
	r.planAndApply(ctx, desired, actual, created, nil)
}
