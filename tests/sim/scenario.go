package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
)

// delivery is an event on its way: events are late, duplicated,
// reordered or lost, as EventBridge's best-effort delivery allows.
type delivery struct {
	fn string
	ev []byte
}

type scenario struct {
	*world
	queue []delivery
	errs  []string
}

// scenarioOptions tunes a run; the zero value is what CI runs.
type scenarioOptions struct {
	Seed     uint64
	Ops      int
	LBs      int
	Throttle float64 // fraction of API requests throttled
	// Filters is what the account does with filters AWS does not
	// document (tag filters on DescribeTrafficMirrorSessions).
	Filters awssim.FilterMode
	// DuplicateNumbers lets the account create a second session with a
	// number already used on the ENI (AWS does not say it refuses one):
	// then only apitap's own care keeps a second session of ours away.
	DuplicateNumbers bool
	// TokenIgnoresTags: a reused ClientToken is compared without its tags
	// (a replay answers with the original session rather than
	// IdempotentParameterMismatch).
	TokenIgnoresTags bool
	// RejectCode is the error of a refused filter (Filters reject).
	RejectCode string
}

// mode names the account's strictness.
func (o scenarioOptions) mode() string {
	m := fmt.Sprintf("filters=%s duplicate_numbers=%v token_ignores_tags=%v", o.Filters, o.DuplicateNumbers, o.TokenIgnoresTags)
	if o.Filters == awssim.FiltersReject && o.RejectCode != "" {
		m += " reject_code=" + o.RejectCode
	}
	return m
}

// runScenario performs ops random operations on the world, delivers their
// events badly, runs scheduled reconciles meanwhile, and at the end runs
// the reconcile until it converges (or gives up) and reports.
func runScenario(opt scenarioOptions, logw io.Writer) (outcome, *world, error) {
	if opt.LBs == 0 {
		opt.LBs = 12
	}
	w, err := build(opt, logw)
	if err != nil {
		return outcome{}, nil, err
	}
	s := &scenario{world: w}
	// The initial selection: half the load balancers (one of them in the
	// other VPC, reported as not selectable).
	for i, lb := range w.lbs {
		if i%2 == 0 {
			w.selected[lb.arn] = true
		}
	}
	if err := w.rebuild(); err != nil {
		return outcome{}, w, err
	}
	w.acct.SetFaults(awssim.Faults{
		ThrottleRate:           opt.Throttle,
		LostResponseRate:       0.02,
		SessionVisibilityDelay: 3 * time.Second,
	})
	s.send("stack-events", stackEvent("CREATE_COMPLETE"))
	for i := 0; i < opt.Ops; i++ {
		s.op()
		w.clock.Advance(time.Duration(1+w.rng.IntN(5)) * time.Second)
		if w.rng.IntN(4) == 0 {
			s.deliver(1 + w.rng.IntN(6))
		}
		if i%50 == 49 {
			s.scheduled()
		}
	}
	s.deliver(len(s.queue))
	// The guarantee: the scheduled reconcile converges, whatever the events
	// did. Grace periods and backoffs pass between rounds.
	var o outcome
	for round := 0; round < 12; round++ {
		w.clock.Advance(5 * time.Minute)
		if err := w.invoke("reconcile", event("aws.events", "Scheduled Event", map[string]any{})); err != nil {
			s.errs = append(s.errs, err.Error())
		}
		if o = w.check(); o.converged && round >= 1 {
			break
		}
	}
	if !o.converged && len(o.diff) > 0 {
		return o, w, fmt.Errorf("not converged: %d differences, first: %s", len(o.diff), strings.Join(o.diff[:min(5, len(o.diff))], "; "))
	}
	return o, w, nil
}

// send queues an event, or loses or duplicates it.
func (s *scenario) send(fn string, ev []byte) {
	switch r := s.rng.IntN(100); {
	case r < 10: // lost
	case r < 20:
		s.queue = append(s.queue, delivery{fn, ev}, delivery{fn, ev})
	default:
		s.queue = append(s.queue, delivery{fn, ev})
	}
}

// deliver hands n queued events, picked at random (reordering), to their
// functions, concurrently, alongside one or two scheduled reconciles at
// times.
func (s *scenario) deliver(n int) {
	var batch []delivery
	for i := 0; i < n && len(s.queue) > 0; i++ {
		j := s.rng.IntN(len(s.queue))
		batch = append(batch, s.queue[j])
		s.queue = append(s.queue[:j], s.queue[j+1:]...)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, d := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.invoke(d.fn, d.ev); err != nil {
				mu.Lock()
				s.errs = append(s.errs, err.Error())
				mu.Unlock()
			}
		}()
	}
	// Full reconciles at the same time as the handlers, at times two of
	// them at once: no function has reserved concurrency, and none needs
	// it (docs/stack.md, "Concurrency").
	reconciles := 0
	switch r := s.rng.IntN(6); {
	case r == 0:
		reconciles = 2
	case r < 3:
		reconciles = 1
	}
	for range reconciles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.scheduled()
		}()
	}
	wg.Wait()
}

func (s *scenario) scheduled() {
	_ = s.invoke("reconcile", event("aws.events", "Scheduled Event", map[string]any{}))
}

var instanceTypes = []string{"m5.large", "c5.xlarge", "m4.large", "r5.large", "t2.micro"}

// inState lists the instances in a state, sorted (map order is random;
// the scenario must follow from its seed).
func (s *scenario) inState(state string) []*instInfo {
	var out []*instInfo
	for _, in := range s.insts {
		if in.state == state {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (s *scenario) running() []*instInfo { return s.inState(awssim.StateRunning) }

func (s *scenario) pick(list []*instInfo) *instInfo {
	if len(list) == 0 {
		return nil
	}
	return list[s.rng.IntN(len(list))]
}

// op performs one random operation.
func (s *scenario) op() {
	w := s.world
	lb := w.lbs[w.rng.IntN(len(w.lbs))]
	switch r := w.rng.IntN(100); {
	case r < 30: // launch an instance behind a load balancer
		typ := instanceTypes[w.rng.IntN(len(instanceTypes))]
		id, eni, err := w.acct.AddInstance(lb.vpc, typ)
		if err != nil {
			return
		}
		w.insts[id] = &instInfo{id: id, eni: eni, typ: typ, state: awssim.StateRunning, vpc: lb.vpc}
		s.send("instance-events", stateEvent(id, "pending"))
		s.send("instance-events", stateEvent(id, "running"))
		s.register(lb, id)
	case r < 40: // register an ip target (an ENI of its own)
		if lb.classic {
			return
		}
		for _, g := range lb.groups {
			if g.kind == "ip" {
				eni, ip, err := w.acct.AddENI(lb.vpc)
				if err != nil {
					return
				}
				w.ipENI[ip] = eni
				if w.acct.Register(g.arn, ip) == nil {
					g.targets[ip] = true
					// An ECS service's task: CloudTrail reports the
					// registration (with a trail), ECS the task itself.
					s.send("instance-events", targetsEvent("RegisterTargets", g.arn, ip))
					s.send("instance-events", taskEvent("RUNNING", eni, ip))
				}
				return
			}
		}
	case r < 48: // stop
		if in := s.pick(s.running()); in != nil && w.acct.StopInstance(in.id) == nil {
			in.state = awssim.StateStopped
			s.send("instance-events", stateEvent(in.id, "stopping"))
			s.send("instance-events", stateEvent(in.id, "stopped"))
		}
	case r < 55: // start a stopped one
		if in := s.pick(s.inState(awssim.StateStopped)); in != nil && w.acct.StartInstance(in.id) == nil {
			in.state = awssim.StateRunning
			s.send("instance-events", stateEvent(in.id, "pending"))
			s.send("instance-events", stateEvent(in.id, "running"))
		}
	case r < 62: // terminate (AWS deregisters its targets)
		if in := s.pick(s.running()); in != nil && w.acct.TerminateInstance(in.id) == nil {
			in.state = awssim.StateTerminated
			for _, l := range w.lbs {
				for _, g := range l.groups {
					delete(g.targets, in.id)
				}
				l.instances = removeString(l.instances, in.id)
			}
			s.send("instance-events", stateEvent(in.id, "shutting-down"))
			s.send("instance-events", stateEvent(in.id, "terminated"))
		}
	case r < 72: // deregister a target
		s.deregister(lb)
	case r < 80: // register a running instance with another load balancer
		if in := s.pick(s.running()); in != nil {
			s.register(lb, in.id)
		}
	case r < 86: // select or deselect a load balancer (a stack update)
		w.selected[lb.arn] = !w.selected[lb.arn]
		if err := w.rebuild(); err != nil {
			s.errs = append(s.errs, err.Error())
		}
		s.send("stack-events", stackEvent("UPDATE_COMPLETE"))
	case r < 92: // a foreign session appears (another tool, another stack)
		in := s.pick(s.running())
		if in == nil {
			return
		}
		target := w.target
		tags := map[string]string{"owner": "security-team"}
		switch w.rng.IntN(3) {
		case 0:
			tags[contract.TagStack] = "other-stack"
		case 1:
			// Our stack's tags, even the instance's, on another
			// target: still not ours.
			target = w.otherTarget
			tags[contract.TagStack] = stackName
			tags[contract.TagInstance] = in.id
		}
		id, err := w.acct.AddSession(awssim.SessionSpec{ENI: in.eni, Target: target, Filter: w.filter, Number: int32(1 + w.rng.IntN(3)), Tags: tags})
		if err == nil {
			w.foreign[id] = true
		}
	default: // a quiet moment: time passes, events arrive
		s.deliver(3)
	}
}

func (s *scenario) register(lb *lbInfo, id string) {
	w := s.world
	if lb.classic {
		lb.instances = append(removeString(lb.instances, id), id)
		if w.acct.SetClassicInstances(lb.name, lb.instances...) == nil {
			s.send("instance-events", classicEvent("RegisterInstancesWithLoadBalancer", lb.name, id))
		}
		return
	}
	for _, g := range lb.groups {
		if g.kind == "instance" {
			if w.acct.Register(g.arn, id) == nil {
				g.targets[id] = true
				s.send("instance-events", targetsEvent("RegisterTargets", g.arn, id))
			}
			return
		}
	}
}

func (s *scenario) deregister(lb *lbInfo) {
	w := s.world
	if lb.classic {
		if len(lb.instances) == 0 {
			return
		}
		id := lb.instances[w.rng.IntN(len(lb.instances))]
		lb.instances = removeString(lb.instances, id)
		if w.acct.SetClassicInstances(lb.name, lb.instances...) == nil {
			s.send("instance-events", classicEvent("DeregisterInstancesFromLoadBalancer", lb.name, id))
		}
		return
	}
	for _, g := range lb.groups {
		if g.kind == "alb" || len(g.targets) == 0 {
			continue
		}
		var ids []string
		for id := range g.targets {
			ids = append(ids, id)
		}
		sortStrings(ids)
		id := ids[w.rng.IntN(len(ids))]
		if w.acct.Deregister(g.arn, id) == nil {
			delete(g.targets, id)
			s.send("instance-events", targetsEvent("DeregisterTargets", g.arn, id))
			if eni, ok := w.ipENI[id]; ok && g.kind == "ip" {
				// The task stopped (the simulated ENI stays: AWS would
				// delete it, and its sessions with it).
				s.send("instance-events", taskEvent("STOPPED", eni, id))
			}
		}
		return
	}
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}
