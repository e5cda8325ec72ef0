package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/awssim"
)

// TestScale: 10,000 targets behind 50 load balancers, from nothing to
// converged under the default rate limit (5 mutations a second), with
// Lambda's 15-minute invocations; then one instance launch is mirrored
// within the 10-call budget.
func TestScale(t *testing.T) {
	const nLB, perLB = 50, 200
	if testing.Short() {
		t.Skip("scale test")
	}
	w, err := build(scenarioOptions{Seed: 11}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer w.acct.Close()
	var tgs []*tgInfo
	for i := 0; i < nLB; i++ {
		arn, err := w.acct.AddLoadBalancer("application", w.vpc, fmt.Sprintf("scale-%d", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := w.acct.AddTargetGroup(arn, "instance")
		if err != nil {
			t.Fatal(err)
		}
		g := &tgInfo{arn: tg, kind: "instance", targets: map[string]bool{}}
		var ids []string
		for j := 0; j < perLB; j++ {
			id, eni, err := w.acct.AddInstance(w.vpc, "m5.large")
			if err != nil {
				t.Fatal(err)
			}
			w.insts[id] = &instInfo{id: id, eni: eni, typ: "m5.large", state: awssim.StateRunning, vpc: w.vpc}
			ids = append(ids, id)
			g.targets[id] = true
		}
		if err := w.acct.Register(tg, ids...); err != nil {
			t.Fatal(err)
		}
		w.lbs = append(w.lbs, &lbInfo{arn: arn, name: fmt.Sprintf("scale-%d", i), vpc: w.vpc, groups: []*tgInfo{g}})
		tgs = append(tgs, g)
		w.selected[arn] = true
	}
	if err := w.rebuild(); err != nil {
		t.Fatal(err)
	}
	start := w.clock.Now()
	w.acct.ResetCalls()
	invocations := 0
	var o outcome
	for ; invocations < 10; invocations++ {
		f := w.fn("reconcile")
		// A 15-minute invocation, in simulated time.
		res := f.O.Reconcile(context.Background(), w.clock.Now().Add(15*time.Minute))
		if len(res.Errors) > 0 {
			t.Fatalf("reconcile: %v", res.Err())
		}
		if o = w.check(); o.converged {
			invocations++
			break
		}
		w.clock.Advance(time.Minute) // the next scheduled run
	}
	calls := w.acct.Calls()
	elapsed := w.clock.Now().Sub(start)
	t.Logf("10,000 targets over %d load balancers: converged=%v sessions=%d in %d invocations, %s simulated; %d API calls (%d creates, %d DescribeTrafficMirrorSessions, %d DescribeInstances, %d DescribeTargetHealth)",
		nLB, o.converged, o.actual, invocations, elapsed.Round(time.Second), calls.Total,
		calls.Get("ec2", "CreateTrafficMirrorSession"), calls.Get("ec2", "DescribeTrafficMirrorSessions"),
		calls.Get("ec2", "DescribeInstances"), calls.Get("elbv2", "DescribeTargetHealth"))
	if !o.converged || o.actual != nLB*perLB {
		t.Fatalf("not converged: %s", o)
	}
	// 10,000 creates at 5 a second take 2,000 s at least; describes stay
	// in the order of targets/1000 per kind (plus one health call per
	// target group).
	if elapsed < 2000*time.Second {
		t.Errorf("%s simulated: the rate limit was not applied", elapsed)
	}
	// Per invocation: about targets/1000 describe calls for instances and
	// sessions each, and one per load balancer and target group.
	perRun := func(service, action string) int { return calls.Get(service, action) / invocations }
	if n := perRun("ec2", "DescribeInstances"); n > 3*nLB*perLB/1000 {
		t.Errorf("%d DescribeInstances calls per run", n)
	}
	if n := perRun("ec2", "DescribeTrafficMirrorSessions"); n > 3*nLB*perLB/1000 {
		t.Errorf("%d DescribeTrafficMirrorSessions calls per run", n)
	}
	if n := perRun("elbv2", "DescribeTargetHealth"); n != nLB {
		t.Errorf("%d DescribeTargetHealth calls per run, want one per target group", n)
	}

	// One instance replaced by Auto Scaling (the account holds at most
	// 10,000 sessions, and there are 10,000): the old one terminates, the
	// new one is registered in its target group, and the CloudTrail event
	// mirrors it.
	for old := range tgs[17].targets {
		if err := w.acct.TerminateInstance(old); err != nil {
			t.Fatal(err)
		}
		w.insts[old].state = awssim.StateTerminated
		delete(tgs[17].targets, old)
		break
	}
	id, eni, err := w.acct.AddInstance(w.vpc, "m5.large")
	if err != nil {
		t.Fatal(err)
	}
	w.insts[id] = &instInfo{id: id, eni: eni, typ: "m5.large", state: awssim.StateRunning, vpc: w.vpc}
	if err := w.acct.Register(tgs[17].arn, id); err != nil {
		t.Fatal(err)
	}
	tgs[17].targets[id] = true
	w.acct.ResetCalls()
	if err := w.invoke("instance-events", targetsEvent("RegisterTargets", tgs[17].arn, id)); err != nil {
		t.Fatal(err)
	}
	n := w.acct.Calls().Total
	t.Logf("one instance launch (RegisterTargets event): %d API calls", n)
	if n > 10 {
		t.Errorf("one instance launch took %d API calls, budget 10", n)
	}
	if !w.mirrored(eni) {
		t.Error("the launched instance is not mirrored")
	}
	// The Auto Scaling and EC2 events of a launch reach the function
	// too, possibly first: each must stay within the budget as well.
	if err := w.acct.AddAutoScalingGroup("web-asg", []string{tgs[17].arn}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ev := range []struct {
		what string
		raw  []byte
	}{
		{"Auto Scaling launch", event("aws.autoscaling", "EC2 Instance Launch Successful", map[string]string{"EC2InstanceId": "ID", "AutoScalingGroupName": "web-asg", "StatusCode": "InProgress"})},
		{"EC2 running", stateEvent("ID", "running")},
	} {
		id2, eni2, err := w.acct.AddInstance(w.vpc, "m5.large")
		if err != nil {
			t.Fatal(err)
		}
		w.insts[id2] = &instInfo{id: id2, eni: eni2, typ: "m5.large", state: awssim.StateRunning, vpc: w.vpc}
		// Make room under the account's 10,000 sessions.
		if err := w.acct.TerminateInstance(id); err != nil {
			t.Fatal(err)
		}
		w.insts[id].state = awssim.StateTerminated
		delete(tgs[17].targets, id)
		if err := w.acct.SetInstanceGroup(id2, "web-asg"); err != nil {
			t.Fatal(err)
		}
		if err := w.acct.Register(tgs[17].arn, id2); err != nil {
			t.Fatal(err)
		}
		tgs[17].targets[id2] = true
		w.acct.ResetCalls()
		if err := w.invoke("instance-events", []byte(strings.ReplaceAll(string(ev.raw), `"ID"`, `"`+id2+`"`))); err != nil {
			t.Fatal(err)
		}
		n := w.acct.Calls().Total
		t.Logf("one instance launch (%s event): %d API calls", ev.what, n)
		if n > 10 {
			t.Errorf("one instance launch (%s event) took %d API calls, budget 10", ev.what, n)
		}
		if !w.mirrored(eni2) {
			t.Errorf("the instance launched (%s event) is not mirrored", ev.what)
		}
		id = id2
	}
}
