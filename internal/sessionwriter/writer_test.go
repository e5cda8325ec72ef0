package sessionwriter_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/apitap/apitap/internal/awssim"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
	"github.com/apitap/apitap/internal/sessionwriter"
)

const stack = "apitap-test"

type fixture struct {
	t     *testing.T
	acct  *awssim.Account
	clock *awssim.ManualClock
	cfg   mirror.Config
	eni   string
}

func newFixture(t *testing.T, opts awssim.Options) *fixture {
	t.Helper()
	clock := awssim.NewManualClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	opts.Clock = clock
	acct := awssim.New(opts)
	t.Cleanup(acct.Close)
	vpc := acct.AddVPC()
	nlb, err := acct.AddLoadBalancer("network", vpc, "apitap-mirror", nil)
	if err != nil {
		t.Fatal(err)
	}
	target, err := acct.AddMirrorTarget(nlb)
	if err != nil {
		t.Fatal(err)
	}
	_, eni, err := acct.AddInstance(vpc, "m5.large")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, acct: acct, clock: clock, eni: eni,
		cfg: mirror.Config{StackName: stack, TargetID: target, FilterID: acct.AddMirrorFilter()}.WithDefaults()}
}

// container is one Lambda container: its own clients, writer and reader.
func (f *fixture) container() (*sessionwriter.Writer, *inventory.Reader) {
	f.t.Helper()
	c := f.acct.Config()
	c.Retryer = awssim.QuickRetryer(5)
	client := ec2.NewFromConfig(c)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := sessionwriter.New(sessionwriter.Config{Mirror: f.cfg, MutationsPerSecond: 100}, client, f.clock, log)
	if err != nil {
		f.t.Fatal(err)
	}
	return w, inventory.New(inventory.Config{Mirror: f.cfg}, inventory.Clients{EC2: client}, nil, log)
}

// create plans and applies the session of the fixture's ENI.
func (f *fixture) create(w *sessionwriter.Writer, rd *inventory.Reader) *sessionwriter.Outcome {
	src := mirror.Source{ENI: f.eni, LB: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1", VNI: 42,
		InstanceID: "i-1", Epoch: "2026-12-01T11:00:00Z@2026-12-01"}
	p := mirror.Input{Config: f.cfg, Desired: []mirror.Source{src}, Now: f.clock.Now()}.Plan()
	if len(p.Creates) != 1 {
		f.t.Fatalf("plan %+v", p)
	}
	return w.Apply(context.Background(), p, time.Time{}, rd)
}

func (f *fixture) ours() []awssim.Session {
	var out []awssim.Session
	for _, s := range f.acct.Sessions() {
		if s.Tags[contract.TagStack] == stack && s.Target == f.cfg.TargetID {
			out = append(out, s)
		}
	}
	return out
}

// tokenModes are the two ways EC2 may compare a reused ClientToken's
// parameters: with the tags (our creation time differs: mismatch) or
// without (the original session is replayed).
var tokenModes = []struct {
	name string
	opts awssim.Options
}{
	{"token compares tags", awssim.Options{}},
	{"token ignores tags", awssim.Options{TokenIgnoresTags: true}},
}

// TestRecreateAfterDeleteMovesToNextGeneration: a session deleted (by
// another container) and wanted again the same day is created with the
// token's next generation, once.
func TestRecreateAfterDeleteMovesToNextGeneration(t *testing.T) {
	for _, mode := range tokenModes {
		t.Run(mode.name, func(t *testing.T) {
			f := newFixture(t, mode.opts)
			w, rd := f.container()
			if o := f.create(w, rd); o.Created != 1 || o.Err() != nil {
				t.Fatalf("first create: %+v", o)
			}
			first := f.ours()[0]
			if err := f.acct.DeleteSessionByID(first.ID); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
			for i, c := range []string{"a fresh container", "the same container"} {
				w2, rd2 := w, rd
				if i == 0 {
					w2, rd2 = f.container()
				}
				o := f.create(w2, rd2)
				ours := f.ours()
				if o.Err() != nil || len(ours) != 1 || ours[0].ID == first.ID {
					t.Fatalf("%s: outcome %+v, sessions %+v", c, o, ours)
				}
				if i == 0 && o.Created != 1 {
					t.Errorf("%s: created %d, adopted %d; want a new session", c, o.Created, o.Adopted)
				}
				if i == 1 && (o.Created != 0 || o.Adopted != 1) {
					// The session exists: its token answers with it.
					t.Errorf("%s: created %d, adopted %d; want the existing session adopted", c, o.Created, o.Adopted)
				}
			}
		})
	}
}

// TestConcurrentCreatesMakeOneSession: containers creating the same
// session at the same time, on an account that accepts duplicate session
// numbers and shows new sessions only after a delay, make one session.
func TestConcurrentCreatesMakeOneSession(t *testing.T) {
	for _, mode := range tokenModes {
		for _, deletedBefore := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/deleted before %v", mode.name, deletedBefore), func(t *testing.T) {
				opts := mode.opts
				opts.AllowDuplicateNumbers = true
				f := newFixture(t, opts)
				if deletedBefore {
					// The token's generation 0 belongs to a deleted session.
					w, rd := f.container()
					f.create(w, rd)
					for _, s := range f.ours() {
						if err := f.acct.DeleteSessionByID(s.ID); err != nil {
							t.Fatal(err)
						}
					}
					f.clock.Advance(time.Minute)
				}
				f.acct.SetFaults(awssim.Faults{SessionVisibilityDelay: 3 * time.Second})
				// Four containers planned the create before any of them
				// made it (their plans see no session), and send it a
				// second apart: each of the later ones finds the token
				// used, and the session invisible for a while yet.
				created, adopted := 0, 0
				for range 4 {
					w, rd := f.container()
					o := f.create(w, rd)
					if err := o.Err(); err != nil {
						t.Errorf("outcome error: %v", err)
					}
					created += o.Created
					adopted += o.Adopted
					f.clock.Advance(time.Second)
				}
				if n := len(f.ours()); n != 1 || created != 1 || adopted != 3 {
					t.Errorf("%d sessions of ours, %d created, %d adopted; want 1, 1, 3", n, created, adopted)
				}
				// In the same second they send the same parameters: EC2
				// answers each with the one session.
				var wg sync.WaitGroup
				for range 4 {
					w, rd := f.container()
					wg.Add(1)
					go func() {
						defer wg.Done()
						if o := f.create(w, rd); o.Err() != nil || o.Created+o.Adopted != 1 {
							t.Errorf("simultaneous create: %+v", o)
						}
					}()
				}
				wg.Wait()
				if n := len(f.ours()); n != 1 {
					t.Errorf("%d sessions of ours after simultaneous creates", n)
				}
				if d := f.acct.Stats().Duplicates; len(d) != 0 {
					t.Errorf("duplicates: %+v", d)
				}
			})
		}
	}
}

// TestDeleteRefusesWhatIsNotOurs: the writer deletes nothing that is not
// ours by the tags it was given, whatever a caller asks.
func TestDeleteRefusesWhatIsNotOurs(t *testing.T) {
	f := newFixture(t, awssim.Options{})
	id, err := f.acct.AddSession(awssim.SessionSpec{ENI: f.eni, Target: f.cfg.TargetID, Filter: f.cfg.FilterID, Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	w, rd := f.container()
	for _, tags := range []map[string]string{nil, {"owner": "security-team"}, {contract.TagStack: "other"}} {
		s := mirror.Session{ID: id, ENI: f.eni, TargetID: f.cfg.TargetID, Tags: tags}
		o := w.Apply(context.Background(), mirror.Plan{Deletes: []mirror.Delete{{Session: s, Reason: "test"}}}, time.Time{}, rd)
		if o.Refused != 1 || o.Deleted != 0 || o.Err() == nil {
			t.Errorf("tags %v: %+v", tags, o)
		}
	}
	// Our tag on another target: not ours either.
	s := mirror.Session{ID: id, ENI: f.eni, TargetID: "tmt-other", Tags: map[string]string{contract.TagStack: stack}}
	if o := w.Apply(context.Background(), mirror.Plan{Deletes: []mirror.Delete{{Session: s}}}, time.Time{}, rd); o.Refused != 1 {
		t.Errorf("our tag on another target: %+v", o)
	}
	if len(f.acct.Sessions()) != 1 {
		t.Fatal("a foreign session was deleted")
	}
	for _, m := range f.acct.Stats().Mutations {
		if m.Action == "DeleteTrafficMirrorSession" {
			t.Errorf("a delete was sent: %+v", m)
		}
	}
}

// TestErrorsByDocumentedCode: what each documented create error becomes.
func TestErrorsByDocumentedCode(t *testing.T) {
	f := newFixture(t, awssim.Options{UnsupportedInstanceTypes: []string{"m5"}})
	w, rd := f.container()
	o := f.create(w, rd)
	if len(o.Unsupported) != 1 || o.Fallbacks != 0 || o.Err() != nil {
		t.Fatalf("unsupported source: %+v", o)
	}
	if r := o.Unsupported[0].Reason; r != `network interface not supported for Traffic Mirroring (instance type ""): NetworkInterfaceNotSupported` {
		t.Errorf("reason %q", r)
	}
	if b := w.Blocked(f.clock.Now()); b[f.eni].Until.Sub(f.clock.Now()) != sessionwriter.DefaultBackoffBase {
		t.Errorf("backoff %+v", b)
	}
}
