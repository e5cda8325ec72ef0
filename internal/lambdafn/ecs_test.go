package lambdafn

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apitap/apitap/events"
	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/orchestrator"
	"github.com/apitap/apitap/tests/invoke/sampleworld"
)

// The ECS task samples: the running task holds ip target 10.0.1.25 of
// api-ips on ENI 11, the stopped one 10.0.2.47 on ENI 12 (events/README.md).
const (
	ecsRunning = "ecs-task-state-running.json"
	ecsStopped = "ecs-task-state-stopped.json"
)

// taskEvent is an ECS sample about another task network: its ENI and IPv4
// address replaced by eni and ip (world ids), its group by group ("" keeps
// the sample's "service:shop-api").
func (f *fixture) taskEvent(sample, eni, ip, group string) []byte {
	raw := events.Sample(sample)
	oldENI, oldIP := sampleworld.SampleENI(11), sampleworld.SampleIP11
	if sample == ecsStopped {
		oldENI, oldIP = sampleworld.SampleENI(12), sampleworld.SampleIP12
	}
	raw = bytes.ReplaceAll(raw, []byte(oldENI), []byte(eni))
	raw = bytes.ReplaceAll(raw, []byte(`"`+oldIP+`"`), []byte(`"`+ip+`"`))
	if group != "" {
		raw = bytes.ReplaceAll(raw, []byte(`"service:shop-api"`), []byte(`"`+group+`"`))
	}
	return f.w.Rewrite(raw)
}

// describeTargetHealth counts the last invocation's looks at api-ips (the
// only ip target group of the selection).
func (f *fixture) describeTargetHealth() int {
	return f.w.Acct.Calls().Get("elbv2", "DescribeTargetHealth")
}

func TestECSTaskEvents(t *testing.T) {
	ip := func(f *fixture, sample string) string { return f.w.ID(sample) }
	for _, tc := range []struct {
		name    string
		before  func(f *fixture) // before the last reconcile
		change  func(f *fixture) // since: what the event reports
		event   func(f *fixture) []byte
		want    func(f *fixture) map[int]string
		created float64
		deleted float64
		// looks at api-ips: more than one when a service's task is waited for
		looks int
	}{
		{name: "running: a selected ip target is mirrored on the task's ENI",
			before: func(f *fixture) { f.must(f.w.Acct.Deregister(f.w.APIIPs, ip(f, sampleworld.SampleIP11))) },
			change: func(f *fixture) { f.must(f.w.Acct.Register(f.w.APIIPs, ip(f, sampleworld.SampleIP11))) },
			event:  func(f *fixture) []byte { return f.sample(ecsRunning) },
			want:   (*fixture).steady, created: 1, looks: 1},
		{name: "running, already mirrored: nothing to do",
			event: func(f *fixture) []byte { return f.sample(ecsRunning) },
			want:  (*fixture).steady, looks: 1},
		{name: "stopped and deregistered: our session goes",
			change: func(f *fixture) { f.must(f.w.Acct.Deregister(f.w.APIIPs, ip(f, sampleworld.SampleIP12))) },
			event:  func(f *fixture) []byte { return f.sample(ecsStopped) },
			want:   func(f *fixture) map[int]string { return without(f.steady(), 12) }, deleted: 1, looks: 1},
		// AWS deletes an ENI's sessions with it: nothing is left to do, and
		// nothing fails.
		{name: "stopped, ENI deleted already",
			change: func(f *fixture) {
				f.must(f.w.Acct.Deregister(f.w.APIIPs, ip(f, sampleworld.SampleIP12)))
				f.must(f.w.Acct.DeleteENI(f.eni(12)))
			},
			event: func(f *fixture) []byte { return f.sample(ecsStopped) },
			want:  func(f *fixture) map[int]string { return without(f.steady(), 12) }, looks: 1},
		// The rule is "no longer a selected target", not "stopped": an
		// address still registered on an ENI that still holds it stays
		// mirrored (the event may be older than a new registration).
		{name: "stopped but still a target: kept",
			event: func(f *fixture) []byte { return f.sample(ecsStopped) },
			want:  (*fixture).steady, looks: 1},
		{name: "running task behind no selected load balancer (standalone: one look)",
			event: func(f *fixture) []byte {
				eni, addr, err := f.w.Acct.AddENI(f.w.VPC)
				f.must(err)
				return f.taskEvent(ecsRunning, eni, addr, "family:batch-report")
			},
			want: (*fixture).steady, looks: 1},
		{name: "running service task behind no selected load balancer: three looks, then the reconcile's",
			event: func(f *fixture) []byte {
				eni, addr, err := f.w.Acct.AddENI(f.w.VPC)
				f.must(err)
				return f.taskEvent(ecsRunning, eni, addr, "")
			},
			want: (*fixture).steady, looks: orchestrator.DefaultTargetLooks},
		// Its address is registered in api-ips, but no ENI in the stack's
		// VPC holds it: reported, not mirrored.
		{name: "running task in another VPC",
			event: func(f *fixture) []byte {
				other := f.w.Acct.AddVPC()
				eni, addr, err := f.w.Acct.AddENI(other)
				f.must(err)
				f.must(f.w.Acct.Register(f.w.APIIPs, addr))
				return f.taskEvent(ecsRunning, eni, addr, "")
			},
			want: (*fixture).steady, looks: 1},
		{name: "task status not handled",
			event: func(f *fixture) []byte {
				return bytes.ReplaceAll(f.sample(ecsRunning), []byte(`"lastStatus": "RUNNING"`), []byte(`"lastStatus": "PENDING"`))
			},
			want: (*fixture).steady},
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
			ev := tc.event(f)
			if err := f.invoke("instance-events", (*Function).InstanceEvents, ev); err != nil {
				t.Fatalf("handler: %v", err)
			}
			f.expect(tc.want(f))
			s := f.summary()
			if s == nil || s["errors"] != 0.0 || s["created"] != tc.created || s["deleted"] != tc.deleted {
				t.Errorf("summary %v, want no errors, created %v, deleted %v", s, tc.created, tc.deleted)
			}
			if !strings.HasPrefix(s["trigger"].(string), "ECSTask arn:aws:ecs:") {
				t.Errorf("trigger %q, want ECSTask and the task", s["trigger"])
			}
			if n := f.describeTargetHealth(); n != tc.looks {
				t.Errorf("%d looks at api-ips, want %d", n, tc.looks)
			}
		})
	}
}

// The task in another VPC is reported as such.
func TestECSTaskInAnotherVPCIsReported(t *testing.T) {
	f := newFixture(t)
	f.mirror()
	eni, addr, err := f.w.Acct.AddENI(f.w.Acct.AddVPC())
	f.must(err)
	f.must(f.w.Acct.Register(f.w.APIIPs, addr))
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.taskEvent(ecsRunning, eni, addr, "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.log.String(), "no network interface in the stack's VPC holds target IP "+addr) {
		t.Errorf("log does not say that %s is not in the stack's VPC:\n%s", addr, f.log.String())
	}
}

// sleepHook is the world's clock, running hook before its first sleep.
type sleepHook struct {
	*awssim.ManualClock
	once sync.Once
	hook func()
}

func (c *sleepHook) Sleep(ctx context.Context, d time.Duration) error {
	c.once.Do(c.hook)
	return c.ManualClock.Sleep(ctx, d)
}

// ECS may register a service's task with its target group after it
// publishes RUNNING (AWS does not say): the handler looks again and
// mirrors the task once it is registered.
func TestECSTaskRegisteredAfterTheEvent(t *testing.T) {
	f := newFixture(t)
	addr := f.w.ID(sampleworld.SampleIP11)
	f.must(f.w.Acct.Deregister(f.w.APIIPs, addr))
	f.mirror()
	f.w.Clock.Advance(time.Hour) // the deregistered target has drained
	registered := false
	f.clock = &sleepHook{ManualClock: f.w.Clock, hook: func() {
		f.must(f.w.Acct.Register(f.w.APIIPs, addr))
		registered = true
	}}
	start := f.w.Clock.Now()
	if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample(ecsRunning)); err != nil {
		t.Fatal(err)
	}
	if !registered {
		t.Fatalf("the handler never waited: the target was not registered after its first look\n%s", f.log.String())
	}
	f.expect(f.steady())
	if n := f.describeTargetHealth(); n != 2 {
		t.Errorf("%d looks at api-ips, want 2 (not a target, then a target)", n)
	}
	if waited := f.w.Clock.Now().Sub(start); waited < orchestrator.DefaultTargetLookDelay {
		t.Errorf("waited %s before looking again, want %s", waited, orchestrator.DefaultTargetLookDelay)
	}
	if !strings.Contains(f.log.String(), "looking again") {
		t.Errorf("log does not say it looks again:\n%s", f.log.String())
	}
}

// The looks stop before the invocation's deadline: a short one leaves
// time for a single look.
func TestECSTaskLooksWithinTheDeadline(t *testing.T) {
	f := newFixture(t)
	eni, addr, err := f.w.Acct.AddENI(f.w.VPC)
	f.must(err)
	f.mirror()
	// Margin 10 s: 15 s leaves 5 s, less than the first wait.
	if err := f.invokeWithin("instance-events", (*Function).InstanceEvents, f.taskEvent(ecsRunning, eni, addr, ""), 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := f.describeTargetHealth(); n != 1 {
		t.Errorf("%d looks with 15 s to go, want 1", n)
	}
	if !strings.Contains(f.log.String(), "stopped looking") {
		t.Errorf("log does not say it stopped looking:\n%s", f.log.String())
	}
}

// A stopped task's event deletes only our session on its ENI: foreign
// sessions there (untagged, another stack's) stay.
func TestECSTaskStoppedLeavesForeignSessions(t *testing.T) {
	for _, mode := range awssim.FilterModes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixtureWith(t, awssim.Options{UndocumentedFilters: mode})
			f.mirror()
			other := f.foreign(12, 2, "other-stack")
			untagged := f.foreign(12, 3, "")
			f.must(f.w.Acct.Deregister(f.w.APIIPs, f.w.ID(sampleworld.SampleIP12)))
			if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample(ecsStopped)); err != nil {
				t.Fatal(err)
			}
			f.expect(without(f.steady(), 12))
			for _, id := range []string{other, untagged} {
				if !f.exists(id) {
					t.Errorf("foreign session %s was deleted", id)
				}
			}
		})
	}
}

// Events come twice, and in any order: repeating them changes nothing,
// and a late RUNNING after the STOPPED does not bring the session back.
func TestECSTaskEventsRepeated(t *testing.T) {
	f := newFixture(t)
	addr := f.w.ID(sampleworld.SampleIP11)
	f.must(f.w.Acct.Deregister(f.w.APIIPs, addr))
	f.mirror()
	f.must(f.w.Acct.Register(f.w.APIIPs, addr))
	for i := 0; i < 2; i++ {
		if err := f.invoke("instance-events", (*Function).InstanceEvents, f.sample(ecsRunning)); err != nil {
			t.Fatal(err)
		}
		f.expect(f.steady())
		if s := f.summary(); s == nil || s["errors"] != 0.0 || s["created"] != float64(1-i) {
			t.Errorf("RUNNING #%d: summary %v, want created %d and no errors", i+1, s, 1-i)
		}
	}
	// The task stops at once: ECS deregisters it and deletes its ENI. The
	// session made moments ago goes all the same: a stopped task gets no
	// grace period.
	stopped := f.taskEvent(ecsStopped, f.eni(11), sampleworld.SampleIP11, "")
	f.must(f.w.Acct.Deregister(f.w.APIIPs, addr))
	for i := 0; i < 2; i++ {
		if err := f.invoke("instance-events", (*Function).InstanceEvents, stopped); err != nil {
			t.Fatal(err)
		}
		f.expect(without(f.steady(), 11))
	}
	f.must(f.w.Acct.DeleteENI(f.eni(11)))
	for _, ev := range [][]byte{stopped, f.sample(ecsRunning)} {
		if err := f.invoke("instance-events", (*Function).InstanceEvents, ev); err != nil {
			t.Fatal(err)
		}
		f.expect(without(f.steady(), 11))
		if s := f.summary(); s == nil || s["errors"] != 0.0 {
			t.Errorf("late event: summary %v, want no errors", s)
		}
	}
}

func TestECSTaskMalformedEvents(t *testing.T) {
	f := newFixture(t)
	for _, raw := range []string{
		`{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"lastStatus":"RUNNING"}}`,
		`{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":{"taskArn":"t","lastStatus":"RUNNING","attachments":"eni"}}`,
		`{"source":"aws.ecs","detail-type":"ECS Task State Change","detail":"RUNNING"}`,
	} {
		if err := f.invoke("instance-events", (*Function).InstanceEvents, []byte(raw)); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
	if f.calls != 0 {
		t.Errorf("%d AWS requests for malformed events", f.calls)
	}
}
