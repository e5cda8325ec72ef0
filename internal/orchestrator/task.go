package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/apitap/apitap/internal/inventory"
)

// Task is an ECS task's network, as its "ECS Task State Change" event
// names it: the task's own network interfaces (awsvpc mode, every Fargate
// task) and their private addresses, which an ip target group registers.
type Task struct {
	ARN string
	// Running is true for a RUNNING task, false for a STOPPED one.
	Running bool
	// AwaitTarget asks for a few more looks when the task is no target of
	// a selected load balancer yet: ECS registers a service's task with its
	// target groups itself, and AWS does not say whether before or after it
	// publishes RUNNING (docs/aws.md, "EventBridge events").
	AwaitTarget bool
	ENIs        []string
	IPs         []string
}

// ReconcileTask handles an ECS task that started or stopped: exactly its
// network interfaces are planned for. Each is mirrored when one of its
// addresses is a target of a selected load balancer (and the interface is
// in the stack's VPC: the reader checks), and our sessions on it are
// deleted when it is not. For a stopped task they go without the grace
// period, as for a stopped instance: the task is known not to run. An
// interface already deleted has no sessions left (AWS deletes them with
// it), so there is nothing to do for it. Ownership is decided by the
// writer on the tags read back, as on every delete path.
func (o *Orchestrator) ReconcileTask(ctx context.Context, t Task, deadline time.Time) *Result {
	const op = "reconcile task"
	r := o.start(deadline)
	if len(t.ENIs) == 0 {
		// Bridge or host network mode: the task has no interface of its
		// own; its instance's events and the reconcile cover it.
		o.log.Info("task has no network interface of its own: nothing to do", "task", t.ARN)
		return r.finish(op)
	}
	var lbs []inventory.LoadBalancer
	var ts []inventory.Target
	if len(t.IPs) > 0 {
		var err error
		if lbs, err = r.rd.Selection(ctx); err != nil {
			r.fail(err)
			return r.finish(op)
		}
		looks := 1
		if t.Running && t.AwaitTarget {
			looks = o.cfg.TargetLooks
		}
		for done := 1; ; done++ {
			if ts, err = r.rd.Targets(ctx, lbs, t.IPs); err != nil {
				r.fail(err)
				return r.finish(op)
			}
			if len(ts) > 0 || looks == 1 {
				break
			}
			wait, ok := nextLook(done, looks, o.cfg.TargetLookDelay, o.clock.Now(), r.stopBy)
			if !ok {
				// The scheduled reconcile is the guarantee: it mirrors the
				// task if ECS registers it later.
				o.log.Info("task is no target of a selected load balancer: stopped looking, the scheduled reconcile mirrors it if it becomes one",
					"task", t.ARN, "ips", t.IPs, "looks", done)
				break
			}
			o.log.Info("task is no target of a selected load balancer yet: looking again", "task", t.ARN, "ips", t.IPs, "look", done, "wait", wait)
			if err := o.clock.Sleep(ctx, wait); err != nil {
				r.fail(fmt.Errorf("waiting to look again for the targets of task %s: %w", t.ARN, err))
				return r.finish(op)
			}
		}
	}
	// Without targets nothing is desired: our sessions on the task's
	// interfaces are deleted (a late RUNNING event of a task deregistered
	// since keeps the grace period; a STOPPED one does not).
	var gone map[string]bool
	if !t.Running {
		gone = set(t.ENIs)
	}
	o.scoped(ctx, r, scope{lbs: lbs, targets: ts, enis: t.ENIs, onlyENIs: set(t.ENIs), gone: gone})
	return r.finish(op)
}

// nextLook decides whether a task that is no target yet is looked at again
// after done looks of at most max, and after how long: the first wait is
// first, each next one twice the last, and the look must start before
// stopBy (zero: no limit).
func nextLook(done, max int, first time.Duration, now, stopBy time.Time) (time.Duration, bool) {
	if done >= max || done < 1 || first <= 0 {
		return 0, false
	}
	wait := first << (done - 1)
	if !stopBy.IsZero() && !now.Add(wait).Before(stopBy) {
		return 0, false
	}
	return wait, true
}

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}
