// Package orchestrator keeps traffic mirror sessions in sync with the
// targets of the selected load balancers. Each operation reads the state
// it needs from AWS, asks the pure planner (package mirror) what to do,
// and applies that through a rate limiter. Nothing is kept between
// invocations except what makes retries cheaper (which ENIs recently
// failed for a lasting reason), so a lost event or a cut-short run is
// repaired by the next scheduled reconcile.
package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/mirror"
)

// Orchestrator is built once per Lambda container; its methods are safe
// for concurrent use.
type Orchestrator struct {
	cfg     Config
	c       Clients
	clock   Clock
	log     *slog.Logger
	limiter *limiter

	mu      sync.Mutex
	blocked map[string]blockState // by ENI
	// deleted remembers sessions this process deleted: EC2 answers a
	// create whose ClientToken it has seen with the original session, even
	// when that session was deleted since (a target deregistered and
	// registered again without a restart).
	deleted map[string]time.Time
}

type blockState struct {
	mirror.Blocked
	failures int
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
	return &Orchestrator{
		cfg: cfg, c: c, clock: clock, log: log,
		limiter: newLimiter(clock, cfg.MutationsPerSecond, max(1, int(cfg.MutationsPerSecond))),
		blocked: map[string]blockState{},
		deleted: map[string]time.Time{},
	}, nil
}

// Result is what one operation did: the counts of the per-invocation
// summary and the items behind them.
type Result struct {
	Desired, Actual, Kept, Created, Deleted int
	Conflicts, Unsupported                  []mirror.Problem
	Protected                               []mirror.Delete
	// Problems are load balancers and targets that cannot be mirrored
	// (wrong VPC, lambda targets, not found).
	Problems []mirror.Problem
	// Left counts actions not attempted because the deadline came: the
	// next run does them.
	Left     int
	APICalls int
	Errors   []error
}

// Err joins the errors.
func (r *Result) Err() error { return errors.Join(r.Errors...) }

// run is one operation's bookkeeping.
type run struct {
	Result
	o        *Orchestrator
	deadline time.Time
}

func (o *Orchestrator) newRun(deadline time.Time) *run {
	return &run{o: o, deadline: deadline}
}

func (r *run) problem(p mirror.Problem) {
	r.Problems = append(r.Problems, p)
	r.o.log.Warn("cannot mirror", "lb", p.LB, "eni", p.ENI, "reason", p.Reason)
}

func (r *run) note(msg string, args ...any) { r.o.log.Info(msg, args...) }

// timeLeft reports whether new work may start.
func (r *run) timeLeft() bool {
	return r.deadline.IsZero() || r.o.clock.Now().Before(r.deadline.Add(-r.o.cfg.Margin))
}

func (r *run) fail(err error) { r.Errors = append(r.Errors, err) }

// selectedTargets finds the selected load balancers and their targets
// (only the given ids, unless none are given); a failure is recorded in r.
func (o *Orchestrator) selectedTargets(ctx context.Context, r *run, only []string) ([]loadBalancer, []target, bool) {
	lbs, err := o.selection(ctx, r)
	if err != nil {
		r.fail(err)
		return nil, nil, false
	}
	ts, err := o.targetsOf(ctx, r, lbs, only)
	if err != nil {
		r.fail(err)
		return nil, nil, false
	}
	return lbs, ts, true
}

// Reconcile is the full pass: every selected load balancer's targets, all
// of our sessions. It works until shortly before deadline (zero: none)
// and leaves the rest to the next run.
func (o *Orchestrator) Reconcile(ctx context.Context, deadline time.Time) *Result {
	r := o.newRun(deadline)
	lbs, ts, ok := o.selectedTargets(ctx, r, nil)
	if !ok {
		return &r.Result
	}
	desired, err := o.sources(ctx, r, lbs, ts)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	actual, err := o.actual(ctx, r)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	o.planAndApply(ctx, r, desired, actual)
	o.logResult("reconcile", r)
	return &r.Result
}

// ReconcileInstances handles instances that started or launched: each is
// mirrored if it is a target of a selected load balancer, and its sessions
// are removed if it is not running (an event that arrived late).
func (o *Orchestrator) ReconcileInstances(ctx context.Context, ids []string, deadline time.Time) *Result {
	if len(ids) == 1 && o.c.AutoScaling != nil {
		// An instance of an Auto Scaling group: its group names the target
		// groups to ask, however many load balancers are selected.
		r := o.newRun(deadline)
		insts, err := o.describeInstances(ctx, r, ids)
		if err != nil {
			r.fail(err)
			return &r.Result
		}
		if in, ok := insts[ids[0]]; ok && in.Group != "" {
			return o.reconcileLaunch(ctx, r, in.Group, ids[0])
		}
		return o.reconcileInstances(ctx, r, ids)
	}
	return o.reconcileInstances(ctx, o.newRun(deadline), ids)
}

// ReconcileLaunch handles an instance an Auto Scaling group launched: only
// the target groups and Classic load balancers of that group are asked
// about it, so a launch costs a few calls whatever the selection's size.
func (o *Orchestrator) ReconcileLaunch(ctx context.Context, group, instanceID string, deadline time.Time) *Result {
	if o.c.AutoScaling == nil {
		return o.ReconcileInstances(ctx, []string{instanceID}, deadline)
	}
	return o.reconcileLaunch(ctx, o.newRun(deadline), group, instanceID)
}

func (o *Orchestrator) reconcileLaunch(ctx context.Context, r *run, group, id string) *Result {
	lbs, err := o.selection(ctx, r)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	r.APICalls++
	out, err := o.c.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		r.fail(fmt.Errorf("describing auto scaling group %s: %w", group, err))
		return &r.Result
	}
	if len(out.AutoScalingGroups) == 0 {
		// The group is gone already (or the event named none): ask the
		// selected load balancers themselves.
		return o.reconcileInstances(ctx, r, []string{id})
	}
	selected := map[string]loadBalancer{}
	for _, lb := range lbs {
		selected[lb.ARN] = lb
	}
	inScope := map[string]bool{}
	var ts []target
	for _, g := range out.AutoScalingGroups {
		for _, name := range g.LoadBalancerNames {
			if lb, ok := selected[o.cfg.classicARN(name)]; ok && slices.Contains(lb.Instances, id) {
				ts = append(ts, target{LB: lb.ARN, InstanceID: id})
				inScope[lb.ARN] = true
			}
		}
		for _, chunk := range chunks(g.TargetGroupARNs, 20) {
			r.APICalls++
			tgs, err := o.c.ELBv2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: chunk})
			if err != nil {
				r.fail(fmt.Errorf("describing target groups of auto scaling group %s: %w", group, err))
				return &r.Result
			}
			for _, tg := range tgs.TargetGroups {
				for _, lbARN := range tg.LoadBalancerArns {
					if _, ok := selected[lbARN]; !ok {
						continue
					}
					found, err := o.groupTargets(ctx, r, lbARN, tg, []string{id}, map[string]bool{})
					if err != nil {
						r.fail(err)
						return &r.Result
					}
					ts = append(ts, found...)
					inScope[lbARN] = true
				}
			}
		}
	}
	o.scoped(ctx, r, lbs, ts, []string{id}, nil, inScope)
	o.logResult("reconcile launch", r)
	return &r.Result
}

func (o *Orchestrator) reconcileInstances(ctx context.Context, r *run, ids []string) *Result {
	lbs, ts, ok := o.selectedTargets(ctx, r, ids)
	if !ok {
		return &r.Result
	}
	o.scoped(ctx, r, lbs, ts, ids, nil, nil)
	o.logResult("reconcile instances", r)
	return &r.Result
}

// ReconcileTargets handles a target registration or deregistration in a
// target group (CloudTrail RegisterTargets / DeregisterTargets): only the
// targets named are looked at, in the load balancers of that group.
func (o *Orchestrator) ReconcileTargets(ctx context.Context, targetGroupARN string, targetIDs []string, deadline time.Time) *Result {
	r := o.newRun(deadline)
	lbs, err := o.selection(ctx, r)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	owners, err := o.groupOwners(ctx, r, targetGroupARN)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	var scope []loadBalancer
	for _, lb := range lbs {
		if owners[lb.ARN] {
			scope = append(scope, lb)
		}
	}
	if len(scope) == 0 {
		r.note("target group is not behind a selected load balancer: nothing to do", "target_group", targetGroupARN)
		return &r.Result
	}
	ts, err := o.targetsOf(ctx, r, scope, targetIDs)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	instanceIDs, extra, err := o.splitTargets(ctx, r, targetIDs)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	inScope := map[string]bool{}
	for _, lb := range scope {
		inScope[lb.ARN] = true
	}
	o.scoped(ctx, r, lbs, ts, instanceIDs, extra, inScope)
	o.logResult("reconcile targets", r)
	return &r.Result
}

// ReconcileDeregistered handles a target deregistration (CloudTrail
// DeregisterTargets): the targets named may still be targets of another
// selected load balancer, so every selected load balancer is asked about
// them (deregistrations are not on the launch path, where calls count).
func (o *Orchestrator) ReconcileDeregistered(ctx context.Context, targetGroupARN string, targetIDs []string, deadline time.Time) *Result {
	r := o.newRun(deadline)
	lbs, ts, ok := o.selectedTargets(ctx, r, targetIDs)
	if !ok {
		return &r.Result
	}
	instanceIDs, extra, err := o.splitTargets(ctx, r, targetIDs)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	o.scoped(ctx, r, lbs, ts, instanceIDs, extra, nil)
	o.logResult("reconcile deregistered targets", r)
	return &r.Result
}

// splitTargets separates instance ids from ip targets, whose ENIs it
// looks up: a deregistered ip target is no longer listed anywhere.
func (o *Orchestrator) splitTargets(ctx context.Context, r *run, targetIDs []string) (instanceIDs, enis []string, err error) {
	var ips []string
	for _, id := range targetIDs {
		if net.ParseIP(id) != nil {
			ips = append(ips, id)
		} else {
			instanceIDs = append(instanceIDs, id)
		}
	}
	if len(ips) > 0 {
		byIP, err := o.enisByIP(ctx, r, ips)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range byIP {
			enis = append(enis, e.ID)
		}
	}
	return instanceIDs, enis, nil
}

// ReconcileClassic handles a Classic registration or deregistration.
func (o *Orchestrator) ReconcileClassic(ctx context.Context, lbName string, instanceIDs []string, deadline time.Time) *Result {
	return o.ReconcileInstances(ctx, instanceIDs, deadline)
}

// RemoveInstances deletes our sessions of instances that are stopping,
// stopped or terminated: sessions are billed while they exist. An
// instance that is running again by now (a late event) is left alone.
func (o *Orchestrator) RemoveInstances(ctx context.Context, ids []string, deadline time.Time) *Result {
	r := o.newRun(deadline)
	insts, err := o.describeInstances(ctx, r, ids)
	if err != nil {
		r.fail(err)
		return &r.Result
	}
	var gone []string
	for _, id := range dedupe(ids) {
		if in, ok := insts[id]; ok && (in.State == "running" || in.State == "pending") {
			r.note("instance is running again: its sessions stay", "instance", id)
			continue
		}
		gone = append(gone, id)
	}
	for _, chunk := range chunks(gone, 200) {
		ss, err := o.sessionsWhere(ctx, r, "of stopped instances", filter("tag:"+mirror.TagStack, o.cfg.Mirror.StackName), filter("tag:"+tagInstance, chunk...))
		if err != nil {
			r.fail(err)
			return &r.Result
		}
		r.Actual += len(ss)
		for _, s := range ss {
			if !r.timeLeft() {
				r.Left++
				continue
			}
			o.delete(ctx, r, mirror.Delete{Session: s, Reason: "instance " + s.Tags[tagInstance] + " is not running"})
		}
	}
	o.logResult("remove instances", r)
	return &r.Result
}

// Teardown deletes every session this stack owns, so that the mirror
// target can be deleted with the stack. A session created moments ago may
// not be listed yet, and a handler may still create one while it runs: it
// keeps listing until several listings, a few seconds apart, find none.
func (o *Orchestrator) Teardown(ctx context.Context, deadline time.Time) *Result {
	r := o.newRun(deadline)
	const quietListings = 6
	quiet, listed := 0, false
	seen := map[string]bool{}
	for round := 0; r.timeLeft() && quiet < quietListings; round++ {
		if round > 0 {
			if err := o.clock.Sleep(ctx, teardownSettle); err != nil {
				r.fail(err)
				break
			}
		}
		ss, err := o.sessionsWhere(ctx, r, "owned by the stack", filter("tag:"+mirror.TagStack, o.cfg.Mirror.StackName))
		if err != nil {
			r.fail(err)
			break
		}
		listed = true
		if len(ss) == 0 {
			quiet++
			continue
		}
		quiet = 0
		for _, s := range ss {
			if !seen[s.ID] {
				seen[s.ID] = true
				r.Actual++
			}
		}
		for _, s := range ss {
			if !r.timeLeft() {
				r.Left++
				continue
			}
			o.delete(ctx, r, mirror.Delete{Session: s, Reason: "stack deleted"})
		}
	}
	if !listed && len(r.Errors) == 0 {
		r.fail(errors.New("no time left to list the stack's mirror sessions"))
	}
	o.logResult("teardown", r)
	return &r.Result
}

// teardownSettle is the pause between the teardown's listings: longer
// than Describe usually lags behind a create or delete.
const teardownSettle = 10 * time.Second

// scoped plans for the given targets only: the ENIs they resolve to, the
// ENIs of our sessions for the given instances, and the extra ENIs. When
// inScope is set, only those load balancers were looked at: an ENI whose
// session of ours is for another load balancer is left to the full
// reconcile, which sees every load balancer.
func (o *Orchestrator) scoped(ctx context.Context, r *run, lbs []loadBalancer, ts []target, instanceIDs, extra []string, inScope map[string]bool) {
	desired, err := o.sources(ctx, r, lbs, ts)
	if err != nil {
		r.fail(err)
		return
	}
	// Our sessions for these instances may have to go (deregistered,
	// stopped): find them by tag.
	enis := append(enisOf(desired), extra...)
	// The ENIs of desired instances are known; the others' (stopped,
	// deregistered) are found through our sessions' instance tag.
	mirrored := map[string]bool{}
	for _, s := range desired {
		mirrored[s.InstanceID] = true
	}
	var unknown []string
	for _, id := range instanceIDs {
		if !mirrored[id] {
			unknown = append(unknown, id)
		}
	}
	for _, chunk := range chunks(dedupe(unknown), 200) {
		ss, err := o.sessionsWhere(ctx, r, "of the instances concerned", filter("tag:"+mirror.TagStack, o.cfg.Mirror.StackName), filter("tag:"+tagInstance, chunk...))
		if err != nil {
			r.fail(err)
			return
		}
		for _, s := range ss {
			enis = append(enis, s.ENI)
		}
	}
	var actual []mirror.Session
	if err := o.addENISessions(ctx, r, enis, func(ss []mirror.Session) { actual = append(actual, ss...) }); err != nil {
		r.fail(err)
		return
	}
	if inScope != nil {
		outside := map[string]bool{}
		for _, s := range actual {
			if s.Owner() == o.cfg.Mirror.StackName && !inScope[s.Tags[mirror.TagLB]] {
				outside[s.ENI] = true
			}
		}
		desired = slices.DeleteFunc(desired, func(s mirror.Source) bool { return outside[s.ENI] })
		actual = slices.DeleteFunc(actual, func(s mirror.Session) bool { return outside[s.ENI] })
	}
	sort.Slice(actual, func(i, j int) bool { return actual[i].ID < actual[j].ID })
	o.planAndApply(ctx, r, desired, actual)
}

func enisOf(ss []mirror.Source) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ENI
	}
	return out
}

// groupOwners returns the load balancers a target group belongs to.
func (o *Orchestrator) groupOwners(ctx context.Context, r *run, tgARN string) (map[string]bool, error) {
	out, err := o.describeGroup(ctx, r, tgARN)
	if err != nil {
		return nil, fmt.Errorf("describing target group %s: %w", tgARN, err)
	}
	return out, nil
}
