package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

// scenario is the world an event implies: how it was when it was last
// reconciled (before), whether it was mirrored then, and what changed
// since (change: what the event reports, done in the account before the
// event arrives, as AWS does).
type scenario struct {
	story  []string
	before func() error
	mirror bool
	// selectOnlyALB mirrors with web-alb alone selected: the stack update
	// the event reports changed the selection.
	selectOnlyALB bool
	change        func() error
}

func (sc *scenario) prepare(w *sampleworld.World, cfg orchestrator.Config) error {
	if sc.before != nil {
		if err := sc.before(); err != nil {
			return err
		}
	}
	if sc.mirror {
		if sc.selectOnlyALB {
			cfg.LBARNs, cfg.LBTags = []string{w.ALB}, nil
		}
		if err := w.Mirror(context.Background(), cfg); err != nil {
			return err
		}
	}
	if sc.change != nil {
		return sc.change()
	}
	return nil
}

func (sc *scenario) say(format string, args ...any) {
	sc.story = append(sc.story, fmt.Sprintf(format, args...))
}

const mirrored = "the last reconcile mirrored the world (%s after it, the event arrives)"

// scenarioFor reads the sample event raw (sample ids, before rewriting)
// and returns the world it implies.
func scenarioFor(w *sampleworld.World, raw []byte) (*scenario, error) {
	sc := &scenario{}
	if req, err := events.ParseCustomResource(raw); err == nil {
		if req.RequestType == events.RequestCreate {
			sc.say("the stack is being created: no session exists yet")
			return sc, nil
		}
		sc.mirror = true
		sc.say(mirrored, sampleworld.Grace)
		return sc, nil
	}
	e, err := events.Parse(raw)
	if err != nil {
		return nil, err
	}
	a := w.Acct
	switch e.Kind() {
	case events.EC2State:
		d, err := e.EC2StateChange()
		if err != nil {
			return nil, err
		}
		ids, err := lookup(w, d.InstanceID)
		if err != nil {
			return nil, err
		}
		id := ids[0]
		sc.mirror = true
		switch d.State {
		case events.StatePending, events.StateRunning:
			sc.before = func() error { return a.StopInstance(id) }
			sc.say("%s was stopped when the world was last reconciled; it is %s now", d.InstanceID, d.State)
			sc.change = func() error { return a.SetInstanceState(id, d.State) }
		case events.StateTerminated:
			// EC2 deletes a terminated instance's primary ENI, and the
			// ENI's sessions with it: the handler is the net for the
			// moments before that, when the event may already be there.
			sc.say(mirrored, sampleworld.Grace)
			sc.say("%s is terminating: its primary ENI (and so its session) still exists", d.InstanceID)
			sc.change = func() error { return a.SetInstanceState(id, awssim.StateShuttingDown) }
		default:
			sc.say(mirrored, sampleworld.Grace)
			sc.say("%s is %s now", d.InstanceID, d.State)
			sc.change = func() error { return a.SetInstanceState(id, d.State) }
		}
	case events.AutoScaling:
		d, err := e.AutoScalingActivity()
		if err != nil {
			return nil, err
		}
		sc.mirror = true
		switch e.DetailType {
		case events.DetailLaunchSuccessful:
			ids, err := lookup(w, d.EC2InstanceID)
			if err != nil {
				return nil, err
			}
			sc.before = func() error { return a.StopInstance(ids[0]) }
			sc.say("%s was not running when the world was last reconciled; %s launched it, registered in web-instances", d.EC2InstanceID, d.AutoScalingGroupName)
			sc.change = func() error { return a.StartInstance(ids[0]) }
		case events.DetailTerminateSuccessful:
			ids, err := lookup(w, d.EC2InstanceID)
			if err != nil {
				return nil, err
			}
			sc.say(mirrored, sampleworld.Grace)
			sc.say("%s deregistered %s from web-instances and is terminating it (its primary ENI still exists)", d.AutoScalingGroupName, d.EC2InstanceID)
			sc.change = func() error {
				if err := a.Deregister(w.WebInstances, ids[0]); err != nil {
					return err
				}
				return a.SetInstanceState(ids[0], awssim.StateShuttingDown)
			}
		default:
			sc.say(mirrored, sampleworld.Grace)
			sc.say("the activity failed: nothing changed")
		}
	case events.CloudTrailELB:
		call, err := e.CloudTrailCall()
		if err != nil {
			return nil, err
		}
		sc.mirror = true
		if call.Failed() {
			sc.say(mirrored, sampleworld.Grace)
			sc.say("the call failed (%s): nothing changed", call.ErrorCode)
			return sc, nil
		}
		switch call.EventName {
		case events.EventRegisterTargets, events.EventDeregisterTargets:
			req, err := call.ELBv2Targets()
			if err != nil {
				return nil, err
			}
			var sample []string
			for _, t := range req.Targets {
				sample = append(sample, t.ID)
			}
			ids, err := lookup(w, sample...)
			if err != nil {
				return nil, err
			}
			tg, err := lookup(w, req.TargetGroupArn)
			if err != nil {
				return nil, err
			}
			if call.EventName == events.EventRegisterTargets {
				sc.before = func() error { return a.Deregister(tg[0], ids...) }
				sc.say("registered since the last reconcile: %s", strings.Join(sample, ", "))
				sc.change = func() error { return a.Register(tg[0], ids...) }
			} else {
				sc.say(mirrored, sampleworld.Grace)
				sc.say("deregistered since: %s", strings.Join(sample, ", "))
				sc.change = func() error { return a.Deregister(tg[0], ids...) }
			}
		case events.EventRegisterInstancesClassic, events.EventDeregisterInstancesClassic:
			req, err := call.ClassicInstances()
			if err != nil {
				return nil, err
			}
			var sample []string
			for _, in := range req.Instances {
				sample = append(sample, in.InstanceID)
			}
			ids, err := lookup(w, sample...)
			if err != nil {
				return nil, err
			}
			without := slices.DeleteFunc(slices.Clone(w.ClassicInstances), func(id string) bool { return slices.Contains(ids, id) })
			if call.EventName == events.EventRegisterInstancesClassic {
				sc.before = func() error { return a.SetClassicInstances(req.LoadBalancerName, without...) }
				sc.say("registered with %s since the last reconcile: %s", req.LoadBalancerName, strings.Join(sample, ", "))
				sc.change = func() error { return a.SetClassicInstances(req.LoadBalancerName, w.ClassicInstances...) }
			} else {
				sc.say(mirrored, sampleworld.Grace)
				sc.say("deregistered from %s since: %s", req.LoadBalancerName, strings.Join(sample, ", "))
				sc.change = func() error { return a.SetClassicInstances(req.LoadBalancerName, without...) }
			}
		default:
			sc.say(mirrored, sampleworld.Grace)
		}
	case events.ECSTask:
		d, err := e.ECSTaskStateChange()
		if err != nil {
			return nil, err
		}
		sc.mirror = true
		var ips []string
		for _, eni := range d.ENIs() {
			if eni.PrivateIPv4 != "" {
				ips = append(ips, eni.PrivateIPv4)
			}
		}
		ids, err := lookup(w, ips...)
		if err != nil {
			return nil, err
		}
		switch d.LastStatus {
		case events.TaskRunning:
			// The task is new: its address was not a target when the
			// world was last reconciled; ECS registered it since.
			sc.before = func() error { return a.Deregister(w.APIIPs, ids...) }
			sc.say("task %s was not running when the world was last reconciled; ECS registered its address %s in api-ips since",
				d.TaskARN, strings.Join(ips, ", "))
			sc.change = func() error { return a.Register(w.APIIPs, ids...) }
		case events.TaskStopped:
			sc.say(mirrored, sampleworld.Grace)
			sc.say("task %s stopped: ECS deregistered its address %s from api-ips (%s)", d.TaskARN, strings.Join(ips, ", "), d.StoppedReason)
			sc.change = func() error { return a.Deregister(w.APIIPs, ids...) }
		default:
			sc.say(mirrored, sampleworld.Grace)
		}
	case events.StackStatus:
		d, err := e.StackStatusChange()
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(d.Status, "UPDATE_"):
			sc.mirror, sc.selectOnlyALB = true, true
			sc.say("before the update only web-alb was selected, and the last reconcile mirrored that; the update selects api-nlb (by ARN) and legacy-clb (by tag) too")
		case strings.HasPrefix(d.Status, "DELETE_"):
			sc.mirror = true
			sc.say(mirrored, sampleworld.Grace)
		default:
			sc.say("the stack is being created: no session exists yet")
		}
	case events.Scheduled:
		i2, i5, i6 := w.ID(sampleworld.SampleInstance(2)), w.ID(sampleworld.SampleInstance(5)), w.ID(sampleworld.SampleInstance(6))
		sc.mirror = true
		sc.before = func() error { return a.StopInstance(i2) }
		sc.say("the last reconcile ran while %s was stopped; since then, with the events lost:", sampleworld.SampleInstance(2))
		sc.say("  %s started, %s stopped, %s was deregistered from legacy-clb", sampleworld.SampleInstance(2), sampleworld.SampleInstance(5), sampleworld.SampleInstance(6))
		sc.change = func() error {
			if err := a.StartInstance(i2); err != nil {
				return err
			}
			if err := a.StopInstance(i5); err != nil {
				return err
			}
			return a.SetClassicInstances(sampleworld.ClassicName, slices.DeleteFunc(slices.Clone(w.ClassicInstances), func(id string) bool { return id == i6 })...)
		}
	default:
		sc.say("no session exists yet")
	}
	return sc, nil
}
