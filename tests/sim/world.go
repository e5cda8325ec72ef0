package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/orchestrator"
)

const stackName = "apitap"

// lbInfo is the driver's own model of a load balancer: the expected state
// is computed from it, independently of the code under test.
type lbInfo struct {
	arn, name string
	classic   bool
	vpc       string
	groups    []*tgInfo // ELBv2
	instances []string  // Classic
}

type tgInfo struct {
	arn     string
	kind    string // instance, ip, alb
	targets map[string]bool
}

type instInfo struct {
	id, eni, typ, state, vpc string
}

// world is a simulated account with the driver's model of it.
type world struct {
	rng    *rand.Rand
	acct   *awssim.Account
	clock  *awssim.ManualClock
	vpc    string
	other  string // another VPC: its load balancers are not selectable
	target string
	filter string
	// otherTarget is another stack's mirror target: a session on it is
	// foreign even when it carries our stack's tag.
	otherTarget string
	mirrorNLB   string // the stack's own NLB, behind target
	lbs         []*lbInfo
	insts       map[string]*instInfo
	ipENI       map[string]string // ip target -> ENI
	foreign     map[string]bool   // ids of sessions created by others
	selected    map[string]bool   // LB ARNs selected
	log         *slog.Logger

	mu  sync.Mutex // guards fns: handlers are rebuilt when the selection changes
	fns map[string]*lambdafn.Function
}

// build makes the account: load balancers of every kind, target groups,
// a mirror target and filter; another stack's mirror target.
func build(opt scenarioOptions, logw io.Writer) (*world, error) {
	seed, nLB := opt.Seed, opt.LBs
	mc := awssim.NewManualClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	w := &world{
		rng:      rand.New(rand.NewPCG(seed, seed*7+1)),
		clock:    mc,
		insts:    map[string]*instInfo{},
		ipENI:    map[string]string{},
		foreign:  map[string]bool{},
		selected: map[string]bool{},
		log:      slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	w.acct = awssim.New(awssim.Options{Seed: seed, Clock: mc, UnsupportedInstanceTypes: []string{"t2"},
		UndocumentedFilters: opt.Filters, RejectFilterCode: opt.RejectCode, AllowDuplicateNumbers: opt.DuplicateNumbers,
		TokenIgnoresTags: opt.TokenIgnoresTags})
	w.vpc = w.acct.AddVPC()
	w.other = w.acct.AddVPC()
	nlb, err := w.acct.AddLoadBalancer("network", w.vpc, "apitap-mirror", nil)
	if err != nil {
		return nil, err
	}
	w.mirrorNLB = nlb
	if w.target, err = w.acct.AddMirrorTarget(nlb); err != nil {
		return nil, err
	}
	w.filter = w.acct.AddMirrorFilter()
	otherNLB, err := w.acct.AddLoadBalancer("network", w.vpc, "other-mirror", nil)
	if err != nil {
		return nil, err
	}
	if w.otherTarget, err = w.acct.AddMirrorTarget(otherNLB); err != nil {
		return nil, err
	}
	for i := 0; i < nLB; i++ {
		if err := w.addLB(i); err != nil {
			return nil, err
		}
	}
	return w, nil
}

func (w *world) addLB(i int) error {
	vpc := w.vpc
	if i%11 == 10 {
		vpc = w.other
	}
	name := fmt.Sprintf("lb-%d", i)
	lb := &lbInfo{name: name, vpc: vpc}
	switch i % 5 {
	case 4:
		lb.classic = true
		if err := w.acct.AddClassicLB(name, vpc, nil, nil); err != nil {
			return err
		}
		lb.arn = fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", awssim.DefaultRegion, awssim.DefaultAccountID, name)
	default:
		kind := "application"
		if i%2 == 1 {
			kind = "network"
		}
		arn, err := w.acct.AddLoadBalancer(kind, vpc, name, nil)
		if err != nil {
			return err
		}
		lb.arn = arn
		types := []string{"instance"}
		if i%3 == 0 {
			types = append(types, "ip")
		}
		// An NLB in front of an ALB (target type alb).
		if kind == "network" && len(w.lbs) > 0 && !w.lbs[0].classic && w.lbs[0].vpc == vpc {
			types = append(types, "alb")
		}
		for _, t := range types {
			tg, err := w.acct.AddTargetGroup(arn, t)
			if err != nil {
				return err
			}
			g := &tgInfo{arn: tg, kind: t, targets: map[string]bool{}}
			if t == "alb" {
				if err := w.acct.Register(tg, w.lbs[0].arn); err != nil {
					return err
				}
				g.targets[w.lbs[0].arn] = true
			}
			lb.groups = append(lb.groups, g)
		}
	}
	w.lbs = append(w.lbs, lb)
	return nil
}

// config is the orchestrator configuration for the current selection.
func (w *world) config() orchestrator.Config {
	var arns []string
	for arn, on := range w.selected {
		if on {
			arns = append(arns, arn)
		}
	}
	sort.Strings(arns)
	return orchestrator.Config{
		Config: inventory.Config{
			Mirror:       mirror.Config{StackName: stackName, TargetID: w.target, FilterID: w.filter},
			MirrorNLBARN: w.mirrorNLB,
			VPCID:        w.vpc,
			Region:       awssim.DefaultRegion,
			AccountID:    awssim.DefaultAccountID,
			LBARNs:       arns,
		},
		Settle: 5 * time.Second,
		Margin: 5 * time.Second,
	}
}

// function builds a Lambda function's handler as a cold container would:
// its own clients and orchestrator, the real SDK pointed at the account.
func (w *world) function(name string) (*lambdafn.Function, error) {
	cfg := w.acct.Config()
	cfg.Retryer = awssim.QuickRetryer(10)
	o, err := orchestrator.New(w.config(), orchestrator.Clients{
		EC2: ec2.NewFromConfig(cfg), ELBv2: elbv2.NewFromConfig(cfg), Classic: elb.NewFromConfig(cfg),
		AutoScaling: autoscaling.NewFromConfig(cfg),
	}, w.clock, w.log)
	if err != nil {
		return nil, err
	}
	return &lambdafn.Function{Name: name, StackName: stackName, O: o, Clock: w.clock, Log: w.log}, nil
}

// rebuild replaces the functions after a selection change (a stack update
// changes the functions' environment, so Lambda starts new containers).
func (w *world) rebuild() error {
	fns := map[string]*lambdafn.Function{}
	for _, n := range []string{"instance-events", "stack-events", "reconcile"} {
		f, err := w.function(n)
		if err != nil {
			return err
		}
		fns[n] = f
	}
	w.mu.Lock()
	w.fns = fns
	w.mu.Unlock()
	return nil
}

func (w *world) fn(name string) *lambdafn.Function {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.fns[name]
}

// invoke runs a handler with a Lambda-like deadline.
func (w *world) invoke(name string, ev []byte) error {
	f := w.fn(name)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch name {
	case "instance-events":
		return f.InstanceEvents(ctx, ev)
	case "stack-events":
		return f.StackEvents(ctx, ev)
	default:
		return f.Reconcile(ctx, ev)
	}
}

// expected is the session each ENI must have, ENI -> VNI, computed from
// the driver's model with the rules of docs/contracts.md §2-3, and
// the ENIs that may have one (a foreign session came after ours).
func (w *world) expected() (want, maybe map[string]uint32) {
	var sel []string
	for _, lb := range w.lbs {
		if w.selected[lb.arn] && lb.vpc == w.vpc {
			sel = append(sel, lb.arn)
		}
	}
	sort.Strings(sel)
	vnis := mirror.VNIs(sel)
	byARN := map[string]*lbInfo{}
	for _, lb := range w.lbs {
		byARN[lb.arn] = lb
	}
	first := map[string]string{} // ENI -> LB
	var walk func(sel string, lb *lbInfo, depth int)
	walk = func(sel string, lb *lbInfo, depth int) {
		add := func(eni string) {
			if eni == "" {
				return
			}
			if cur, ok := first[eni]; !ok || sel < cur {
				first[eni] = sel
			}
		}
		if lb.classic {
			// The Classic API lets an instance of another VPC be listed;
			// it cannot be mirrored to this VPC's target.
			for _, id := range lb.instances {
				if in := w.insts[id]; in != nil && in.state == awssim.StateRunning && in.vpc == w.vpc {
					add(in.eni)
				}
			}
			return
		}
		for _, g := range lb.groups {
			for id := range g.targets {
				switch g.kind {
				case "instance":
					if in := w.insts[id]; in != nil && in.state == awssim.StateRunning {
						add(in.eni)
					}
				case "ip":
					add(w.ipENI[id])
				case "alb":
					if depth == 0 && byARN[id] != nil {
						walk(sel, byARN[id], 1)
					}
				}
			}
		}
	}
	for _, arn := range sel {
		walk(arn, byARN[arn], 0)
	}
	// Unsupported instance types cannot be mirrored. On an ENI with a
	// foreign session, a session of ours is never created (conflict policy
	// skip), but one that was there first is kept: either is right.
	foreign := map[string]bool{}
	for _, s := range w.acct.Sessions() {
		if !w.ours(s) {
			foreign[s.ENI] = true
		}
	}
	unsupported := map[string]bool{}
	for _, in := range w.insts {
		if strings.HasPrefix(in.typ, "t2.") {
			unsupported[in.eni] = true
		}
	}
	want = map[string]uint32{}
	maybe = map[string]uint32{}
	for eni, lb := range first {
		switch {
		case unsupported[eni]:
		case foreign[eni]:
			maybe[eni] = vnis[lb]
		default:
			want[eni] = vnis[lb]
		}
	}
	return want, maybe
}

// outcome compares the account with the expectation.
type outcome struct {
	converged                                   bool
	desired, actual, foreignTouched, duplicates int
	overLimit, apiCalls                         int
	diff                                        []string
}

func (o outcome) String() string {
	return fmt.Sprintf("converged=%v desired=%d actual=%d foreign_touched=%d duplicates=%d over_limit=%d api_calls=%d",
		o.converged, o.desired, o.actual, o.foreignTouched, o.duplicates, o.overLimit, o.apiCalls)
}

func (w *world) check() outcome {
	want, maybe := w.expected()
	got := map[string][]uint32{}
	for _, s := range w.acct.Sessions() {
		if w.ours(s) {
			got[s.ENI] = append(got[s.ENI], uint32(s.VNI))
		}
	}
	o := outcome{desired: len(want)}
	for _, v := range got {
		o.actual += len(v)
	}
	for eni, vni := range want {
		if g := got[eni]; len(g) != 1 || g[0] != vni {
			o.diff = append(o.diff, fmt.Sprintf("%s: want VNI %d, have %v", eni, vni, g))
		}
	}
	for eni, g := range got {
		if _, ok := want[eni]; ok {
			continue
		}
		if vni, ok := maybe[eni]; ok && len(g) == 1 && g[0] == vni {
			o.desired++ // kept next to a foreign session that came later
			continue
		}
		o.diff = append(o.diff, fmt.Sprintf("%s: not desired, has sessions with VNIs %v", eni, g))
	}
	sort.Strings(o.diff)
	o.converged = len(o.diff) == 0
	// Say what the driver knows of the first few (explaining is slow).
	for i := range o.diff[:min(5, len(o.diff))] {
		eni, _, _ := strings.Cut(o.diff[i], ":")
		o.diff[i] += " [" + w.explain(eni) + "]"
	}
	st := w.acct.Stats()
	for _, m := range st.Mutations {
		if m.Action == "DeleteTrafficMirrorSession" && m.ErrorCode == "" {
			for _, id := range m.Params["TrafficMirrorSessionId"] {
				if w.foreign[id] {
					o.foreignTouched++
				}
			}
		}
	}
	o.duplicates = len(st.Duplicates)
	if st.MaxSessionsOnENI > mirror.MaxSessionsPerENI {
		o.overLimit = 1
	}
	o.apiCalls = w.acct.Calls().Total
	return o
}

// event builds an EventBridge event.
func event(source, detailType string, detail any) []byte {
	d, _ := json.Marshal(detail)
	b, _ := json.Marshal(map[string]any{
		"version": "0", "id": fmt.Sprintf("%x", rand.Uint64()), "detail-type": detailType, "source": source,
		"account": awssim.DefaultAccountID, "time": time.Now().UTC().Format(time.RFC3339), "region": awssim.DefaultRegion,
		"resources": []string{}, "detail": json.RawMessage(d),
	})
	return b
}

func stateEvent(id, state string) []byte {
	return event("aws.ec2", "EC2 Instance State-change Notification", map[string]string{"instance-id": id, "state": state})
}

// taskEvent is an "ECS Task State Change" of a service's Fargate task
// holding ip on eni (events/ecs-task-state-running.json has the full shape).
func taskEvent(status, eni, ip string) []byte {
	task := fmt.Sprintf("arn:aws:ecs:%s:%s:task/sim/%s", awssim.DefaultRegion, awssim.DefaultAccountID, eni)
	return event("aws.ecs", "ECS Task State Change", map[string]any{
		"taskArn": task, "clusterArn": fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/sim", awssim.DefaultRegion, awssim.DefaultAccountID),
		"group": "service:sim-api", "launchType": "FARGATE", "lastStatus": status, "desiredStatus": status,
		"attachments": []map[string]any{{"id": "att-" + eni, "type": "eni", "status": "ATTACHED", "details": []map[string]string{
			{"name": "networkInterfaceId", "value": eni}, {"name": "privateIPv4Address", "value": ip},
		}}},
	})
}

func targetsEvent(name, tg string, ids ...string) []byte {
	var ts []map[string]any
	for _, id := range ids {
		ts = append(ts, map[string]any{"id": id, "port": 80})
	}
	return event("aws.elasticloadbalancing", "AWS API Call via CloudTrail", map[string]any{
		"eventSource": "elasticloadbalancing.amazonaws.com", "eventName": name,
		"requestParameters": map[string]any{"targetGroupArn": tg, "targets": ts},
	})
}

func classicEvent(name, lb string, ids ...string) []byte {
	var in []map[string]string
	for _, id := range ids {
		in = append(in, map[string]string{"instanceId": id})
	}
	return event("aws.elasticloadbalancing", "AWS API Call via CloudTrail", map[string]any{
		"eventSource": "elasticloadbalancing.amazonaws.com", "eventName": name,
		"requestParameters": map[string]any{"loadBalancerName": lb, "instances": in},
	})
}

func stackEvent(status string) []byte {
	return event("aws.cloudformation", "CloudFormation Stack Status Change", map[string]any{
		"stack-id":       fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/0000", awssim.DefaultRegion, awssim.DefaultAccountID, stackName),
		"status-details": map[string]string{"status": status, "status-reason": ""},
	})
}

// explain says what the driver knows of an ENI, for a failure message.
func (w *world) explain(eni string) string {
	var parts []string
	for _, in := range w.insts {
		if in.eni == eni {
			parts = append(parts, fmt.Sprintf("instance %s %s %s", in.id, in.typ, in.state))
		}
	}
	for ip, e := range w.ipENI {
		if e == eni {
			parts = append(parts, "ip "+ip)
		}
	}
	for _, lb := range w.lbs {
		for _, g := range lb.groups {
			for id := range g.targets {
				for _, in := range w.insts {
					if in.id == id && in.eni == eni {
						parts = append(parts, fmt.Sprintf("target of %s/%s (selected %v, vpc ok %v)", lb.name, g.kind, w.selected[lb.arn], lb.vpc == w.vpc))
					}
				}
				if w.ipENI[id] == eni {
					parts = append(parts, fmt.Sprintf("ip target of %s (selected %v)", lb.name, w.selected[lb.arn]))
				}
			}
		}
		for _, id := range lb.instances {
			if in := w.insts[id]; in != nil && in.eni == eni {
				parts = append(parts, fmt.Sprintf("classic %s (selected %v)", lb.name, w.selected[lb.arn]))
			}
		}
	}
	for _, s := range w.acct.Sessions() {
		if s.ENI == eni {
			parts = append(parts, fmt.Sprintf("session %s vni %d tags %v", s.ID, s.VNI, s.Tags))
		}
	}
	return strings.Join(parts, "; ")
}

// mirrored reports whether the ENI has a session of the stack.
func (w *world) mirrored(eni string) bool {
	for _, s := range w.acct.Sessions() {
		if s.ENI == eni && w.ours(s) {
			return true
		}
	}
	return false
}

// ours says whether s is the stack's: its tag and its mirror target.
func (w *world) ours(s awssim.Session) bool {
	return s.Tags[contract.TagStack] == stackName && s.Target == w.target
}
