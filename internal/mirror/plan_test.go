package mirror

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/contract"
)

const (
	stack  = "apitap-prod"
	target = "tmt-ours"
	filter = "tmf-ours"
	lbA    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/a/1"
	lbB    = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/b/2"
	vniA   = 100
	vniB   = 200
	epoch  = "2025-01-02T03:04:05Z"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{StackName: stack, TargetID: target, FilterID: filter}
}

func src(eni, lb string, vni uint32) Source {
	return Source{ENI: eni, LB: lb, VNI: vni, InstanceID: "i-" + eni, Epoch: epoch}
}

// ours is a correct session of this stack for lbA.
func ours(id, eni string, number int32) Session {
	return Session{ID: id, ENI: eni, TargetID: target, FilterID: filter, Number: number, VNI: vniA,
		Tags: map[string]string{contract.TagStack: stack, contract.TagLB: lbA, contract.TagVNI: fmt.Sprint(vniA)}}
}

func foreign(id, eni string, number int32) Session {
	return Session{ID: id, ENI: eni, TargetID: "tmt-theirs", FilterID: "tmf-theirs", Number: number, VNI: 7,
		Tags: map[string]string{contract.TagStack: "someone-else"}}
}

func with(s Session, f func(*Session)) Session {
	s.Tags = maps.Clone(s.Tags)
	f(&s)
	return s
}

// summarize renders a plan as short lines, so a table row reads as what it
// expects.
func summarize(p Plan) []string {
	var out []string
	for _, c := range p.Creates {
		line := fmt.Sprintf("create %s n=%d lb=%s", c.Source.ENI, c.Number, c.Source.LB)
		if c.Replaces != nil {
			line += " replaces=" + c.Replaces.ID
		}
		if c.Shadowed {
			line += " shadowed"
		}
		out = append(out, line)
	}
	for _, d := range p.Deletes {
		out = append(out, fmt.Sprintf("delete %s (%s)", d.Session.ID, d.Reason))
	}
	for _, d := range p.Protected {
		out = append(out, fmt.Sprintf("protect %s (%s)", d.Session.ID, d.Reason))
	}
	if p.Kept > 0 {
		out = append(out, fmt.Sprintf("kept %d", p.Kept))
	}
	for _, c := range p.Conflicts {
		out = append(out, fmt.Sprintf("conflict %s %v", c.ENI, c.Sessions))
	}
	for _, u := range p.Unsupported {
		out = append(out, fmt.Sprintf("unsupported %s", u.ENI))
	}
	return out
}

func TestPlan(t *testing.T) {
	withCfg := func(f func(*Config)) Config {
		c := testConfig()
		f(&c)
		return c
	}
	coexist := withCfg(func(c *Config) { c.Conflict = ConflictCoexist })

	tests := []struct {
		name    string
		cfg     *Config // testConfig() when nil
		desired []Source
		actual  []Session
		blocked map[string]Blocked
		created map[string]time.Time
		want    []string
		// reasons maps "conflict eni" or "unsupported eni" to a substring
		// its reason must contain.
		reasons map[string]string
	}{
		{
			name: "nothing",
		},
		{
			name:    "missing session is created with the configured number",
			desired: []Source{src("eni-1", lbA, vniA)},
			want:    []string{"create eni-1 n=1 lb=" + lbA},
		},
		{
			name:    "configured number is used",
			cfg:     ptr(withCfg(func(c *Config) { c.SessionNumber = 7 })),
			desired: []Source{src("eni-1", lbA, vniA)},
			want:    []string{"create eni-1 n=7 lb=" + lbA},
		},
		{
			name:    "correct session is kept",
			desired: []Source{src("eni-1", lbA, vniA), src("eni-2", lbA, vniA)},
			actual:  []Session{ours("tms-1", "eni-1", 1), ours("tms-2", "eni-2", 4)},
			want:    []string{"kept 2"},
		},
		{
			name:    "session listed twice by Describe is not its own duplicate",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{ours("tms-1", "eni-1", 1), ours("tms-1", "eni-1", 1)},
			want:    []string{"kept 1"},
		},
		{
			name:    "VNI changed: replaced, create first with the next free number",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", 1), func(s *Session) { s.VNI = 99 })},
			want:    []string{"create eni-1 n=2 lb=" + lbA + " replaces=tms-1"},
		},
		{
			name:    "LB changed with the same VNI: replaced",
			desired: []Source{src("eni-1", lbB, vniA)},
			actual:  []Session{ours("tms-1", "eni-1", 1)},
			want:    []string{"create eni-1 n=2 lb=" + lbB + " replaces=tms-1"},
		},
		{
			name:    "tagged with our stack but on another target: foreign, a conflict, never replaced",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", 1), func(s *Session) { s.TargetID = "tmt-old" })},
			want:    []string{"conflict eni-1 [tms-1]"},
		},
		{
			name:    "wrong filter: replaced",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", 1), func(s *Session) { s.FilterID = "tmf-old" })},
			want:    []string{"create eni-1 n=2 lb=" + lbA + " replaces=tms-1"},
		},
		{
			name:    "replacement keeps the configured number when the old one has another",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", 3), func(s *Session) { s.VNI = 99 })},
			want:    []string{"create eni-1 n=1 lb=" + lbA + " replaces=tms-1"},
		},
		{
			name:    "replacement without room, skip policy: delete first, configured number",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-1", "eni-1", 1), func(s *Session) { s.VNI = 99 }),
				foreign("tms-f2", "eni-1", 2), foreign("tms-f3", "eni-1", 3),
			},
			want: []string{
				"create eni-1 n=1 lb=" + lbA,
				"delete tms-1 (replaced)",
				"conflict eni-1 [tms-f2 tms-f3]",
			},
			reasons: map[string]string{"conflict eni-1": "coexisting with foreign mirror sessions tms-f2 (number 2), tms-f3 (number 3); ours (number 1) is evaluated first"},
		},
		{
			name:    "replacement without room, coexist: delete first, number above the foreign ones",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-1", "eni-1", 1), func(s *Session) { s.VNI = 99 }),
				foreign("tms-f2", "eni-1", 2), foreign("tms-f3", "eni-1", 3),
			},
			want: []string{
				"create eni-1 n=4 lb=" + lbA + " shadowed",
				"delete tms-1 (replaced)",
				"conflict eni-1 [tms-f2 tms-f3]",
			},
			reasons: map[string]string{"conflict eni-1": "possibly shadowed by tms-f2, tms-f3"},
		},
		{
			name:    "replacement with room next to a foreign session, skip policy",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-1", "eni-1", 1), func(s *Session) { s.VNI = 99 }),
				foreign("tms-f2", "eni-1", 2),
			},
			want: []string{
				"create eni-1 n=3 lb=" + lbA + " replaces=tms-1 shadowed",
				"conflict eni-1 [tms-f2]",
			},
		},
		{
			name:    "replacement when only the old session's number is free: delete first",
			cfg:     ptr(withCfg(func(c *Config) { c.SessionNumber = MaxSessionNumber })),
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", MaxSessionNumber), func(s *Session) { s.VNI = 99 })},
			want:    []string{"create eni-1 n=32766 lb=" + lbA, "delete tms-1 (replaced)"},
		},
		{
			name:    "foreign session, skip: conflict naming it, no create",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1), foreign("tms-f5", "eni-1", 5)},
			want:    []string{"conflict eni-1 [tms-f1 tms-f5]"},
			reasons: map[string]string{"conflict eni-1": "foreign mirror sessions tms-f1 (number 1), tms-f5 (number 5); skipped"},
		},
		{
			name:    "untagged session is foreign",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(foreign("tms-f1", "eni-1", 4), func(s *Session) { s.Tags = nil })},
			want:    []string{"conflict eni-1 [tms-f1]"},
		},
		{
			name:    "session of another apitap stack on our target is foreign and left alone",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-x", "eni-2", 1), func(s *Session) { s.Tags[contract.TagStack] = "apitap-dev" })},
			want:    []string{"create eni-1 n=1 lb=" + lbA},
		},
		{
			name:    "foreign sessions 1 and 5, coexist: number 6, shadowed",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f5", "eni-1", 5), foreign("tms-f1", "eni-1", 1)},
			want: []string{
				"create eni-1 n=6 lb=" + lbA + " shadowed",
				"conflict eni-1 [tms-f1 tms-f5]",
			},
			reasons: map[string]string{"conflict eni-1": "coexisting with foreign mirror sessions tms-f1 (number 1), tms-f5 (number 5); ours (number 6) possibly shadowed by tms-f1, tms-f5"},
		},
		{
			name:    "coexist above a configured number that is higher than the foreign ones",
			cfg:     ptr(withCfg(func(c *Config) { c.Conflict = ConflictCoexist; c.SessionNumber = 10 })),
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1)},
			want: []string{
				"create eni-1 n=10 lb=" + lbA + " shadowed",
				"conflict eni-1 [tms-f1]",
			},
		},
		{
			name:    "coexist with a foreign session at 32766: unsupported",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 32766)},
			want:    []string{"unsupported eni-1"},
			reasons: map[string]string{"unsupported eni-1": "no free session number from 32767"},
		},
		{
			name:    "coexist at 32765: number 32766",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 32765)},
			want:    []string{"create eni-1 n=32766 lb=" + lbA + " shadowed", "conflict eni-1 [tms-f1]"},
		},
		{
			name:    "3 foreign sessions, coexist: unsupported",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1), foreign("tms-f2", "eni-1", 2), foreign("tms-f3", "eni-1", 3)},
			want:    []string{"unsupported eni-1"},
			reasons: map[string]string{"unsupported eni-1": "ENI already has 3 sessions"},
		},
		{
			name:    "3 foreign sessions, skip: conflict",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1), foreign("tms-f2", "eni-1", 2), foreign("tms-f3", "eni-1", 3)},
			want:    []string{"conflict eni-1 [tms-f1 tms-f2 tms-f3]"},
		},
		{
			name:    "wrong ours and 3 foreign (not possible in AWS): nothing touched",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-1", "eni-1", 9), func(s *Session) { s.VNI = 99 }),
				foreign("tms-f1", "eni-1", 1), foreign("tms-f2", "eni-1", 2), foreign("tms-f3", "eni-1", 3),
			},
			want: []string{"unsupported eni-1"},
		},
		{
			name:    "foreign and correct ours: kept, reported",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{ours("tms-1", "eni-1", 2), foreign("tms-f1", "eni-1", 1)},
			want:    []string{"kept 1", "conflict eni-1 [tms-f1]"},
			reasons: map[string]string{"conflict eni-1": "ours (number 2) possibly shadowed by tms-f1"},
		},
		{
			name:    "coexist with foreign at the configured number: next number",
			cfg:     &coexist,
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1)},
			want:    []string{"create eni-1 n=2 lb=" + lbA + " shadowed", "conflict eni-1 [tms-f1]"},
		},
		{
			name:    "duplicate ours: keep the correct lowest number",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{ours("tms-b", "eni-1", 2), ours("tms-a", "eni-1", 3), ours("tms-c", "eni-1", 1)},
			want:    []string{"delete tms-a (duplicate)", "delete tms-b (duplicate)", "kept 1"},
		},
		{
			name:    "duplicate ours: a correct one beats a lower wrong one",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-a", "eni-1", 1), func(s *Session) { s.VNI = 99 }),
				ours("tms-b", "eni-1", 3),
			},
			want: []string{"delete tms-a (duplicate)", "kept 1"},
		},
		{
			name:    "duplicate ours, equal numbers: tie broken by id",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{ours("tms-b", "eni-1", 1), ours("tms-a", "eni-1", 1)},
			want:    []string{"delete tms-b (duplicate)", "kept 1"},
		},
		{
			name:    "duplicate ours all wrong: keep the lowest and replace it",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual: []Session{
				with(ours("tms-a", "eni-1", 1), func(s *Session) { s.VNI = 99 }),
				with(ours("tms-b", "eni-1", 2), func(s *Session) { s.VNI = 98 }),
			},
			want: []string{"create eni-1 n=2 lb=" + lbA + " replaces=tms-a", "delete tms-b (duplicate)"},
		},
		{
			name:   "ours on an ENI no longer desired: deleted; our tag on another target is not ours",
			actual: []Session{ours("tms-1", "eni-1", 1), with(ours("tms-2", "eni-2", 1), func(s *Session) { s.TargetID = "tmt-old" })},
			want:   []string{"delete tms-1 (source no longer desired)"},
		},
		{
			name:   "no stack name: untagged sessions are not taken for ours",
			cfg:    ptr(withCfg(func(c *Config) { c.StackName = "" })),
			actual: []Session{with(foreign("tms-f1", "eni-1", 1), func(s *Session) { s.Tags = nil })},
		},
		{
			name:    "foreign on an ENI not desired: ignored",
			actual:  []Session{foreign("tms-f1", "eni-1", 1)},
			created: map[string]time.Time{"tms-f1": now.Add(-time.Hour)},
		},
		{
			name:    "ours created within grace: protected",
			actual:  []Session{ours("tms-1", "eni-1", 1), ours("tms-2", "eni-2", 1), ours("tms-3", "eni-3", 1)},
			created: map[string]time.Time{"tms-1": now.Add(-time.Minute), "tms-2": now.Add(-DefaultGrace), "tms-3": now.Add(-time.Hour)},
			want: []string{
				"delete tms-2 (source no longer desired)",
				"delete tms-3 (source no longer desired)",
				"protect tms-1 (source no longer desired)",
			},
		},
		{
			name:    "configured grace",
			cfg:     ptr(withCfg(func(c *Config) { c.Grace = time.Hour })),
			actual:  []Session{ours("tms-1", "eni-1", 1)},
			created: map[string]time.Time{"tms-1": now.Add(-30 * time.Minute)},
			want:    []string{"protect tms-1 (source no longer desired)"},
		},
		{
			name:    "blocked: unsupported with its reason, no create",
			desired: []Source{src("eni-1", lbA, vniA)},
			blocked: map[string]Blocked{"eni-1": {Until: now.Add(time.Minute), Reason: "instance type cannot be a mirror source"}},
			want:    []string{"unsupported eni-1"},
			reasons: map[string]string{"unsupported eni-1": "instance type cannot be a mirror source (next try after 2025-06-01T12:01:00Z)"},
		},
		{
			name:    "blocked until now has expired: created",
			desired: []Source{src("eni-1", lbA, vniA), src("eni-2", lbA, vniA)},
			blocked: map[string]Blocked{
				"eni-1": {Until: now, Reason: "x"},
				"eni-2": {Until: now.Add(-time.Hour), Reason: "x"},
			},
			want: []string{"create eni-1 n=1 lb=" + lbA, "create eni-2 n=1 lb=" + lbA},
		},
		{
			name:    "blocked with a wrong session of ours: left as it is",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{with(ours("tms-1", "eni-1", 1), func(s *Session) { s.VNI = 99 })},
			blocked: map[string]Blocked{"eni-1": {Until: now.Add(time.Minute), Reason: "limit"}},
			want:    []string{"unsupported eni-1"},
		},
		{
			name:    "blocked but already correct: kept",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{ours("tms-1", "eni-1", 1)},
			blocked: map[string]Blocked{"eni-1": {Until: now.Add(time.Minute), Reason: "limit"}},
			want:    []string{"kept 1"},
		},
		{
			name:    "blocked beats a foreign conflict",
			desired: []Source{src("eni-1", lbA, vniA)},
			actual:  []Session{foreign("tms-f1", "eni-1", 1)},
			blocked: map[string]Blocked{"eni-1": {Until: now.Add(time.Minute)}},
			want:    []string{"unsupported eni-1"},
			reasons: map[string]string{"unsupported eni-1": "blocked (next try"},
		},
		{
			name:    "ENI desired twice: the first wins, one create",
			desired: []Source{src("eni-1", lbB, vniB), src("eni-1", lbA, vniA)},
			want:    []string{"create eni-1 n=1 lb=" + lbB},
		},
		{
			name:    "source without an ENI: unsupported",
			desired: []Source{src("", lbA, vniA)},
			want:    []string{"unsupported "},
		},
		{
			name:    "mixed: output sorted by ENI",
			desired: []Source{src("eni-3", lbA, vniA), src("eni-1", lbA, vniA), src("eni-2", lbA, vniA)},
			actual: []Session{
				ours("tms-9", "eni-9", 1), ours("tms-8", "eni-8", 1),
				foreign("tms-f", "eni-2", 1), ours("tms-1", "eni-1", 1),
			},
			want: []string{
				"create eni-3 n=1 lb=" + lbA,
				"delete tms-8 (source no longer desired)",
				"delete tms-9 (source no longer desired)",
				"kept 1",
				"conflict eni-2 [tms-f]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			in := Input{Config: cfg, Desired: tt.desired, Actual: tt.actual, Blocked: tt.blocked, Created: tt.created, Now: now}
			p := in.Plan()
			got := summarize(p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n  got  %q\n  want %q", got, tt.want)
			}
			for key, sub := range tt.reasons {
				kind, eni, _ := strings.Cut(key, " ")
				list := p.Conflicts
				if kind == "unsupported" {
					list = p.Unsupported
				}
				i := slices.IndexFunc(list, func(pr Problem) bool { return pr.ENI == eni })
				if i < 0 {
					t.Errorf("no %s entry", key)
				} else if !strings.Contains(list[i].Reason, sub) {
					t.Errorf("%s reason %q does not contain %q", key, list[i].Reason, sub)
				}
			}
			checkInvariants(t, in, p)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPlanTokens(t *testing.T) {
	cfg := testConfig()
	in := Input{Config: cfg, Desired: []Source{src("eni-1", lbA, vniA)}, Now: now}
	p := in.Plan()
	if len(p.Creates) != 1 {
		t.Fatalf("creates = %d", len(p.Creates))
	}
	want := ClientToken(stack, "eni-1", target, filter, vniA, epoch)
	if p.Creates[0].Token != want {
		t.Errorf("token %q, want %q", p.Creates[0].Token, want)
	}

	// A source restarted since: a new epoch, so EC2 does not answer with
	// the session it remembers for the old token.
	restarted := src("eni-1", lbA, vniA)
	restarted.Epoch = "2025-06-01T11:00:00Z"
	p2 := Input{Config: cfg, Desired: []Source{restarted}, Now: now}.Plan()
	if p2.Creates[0].Token == want {
		t.Error("token did not change with the epoch")
	}
}

func TestPlanDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		in := randomInput(rng)
		// Desired order matters only for an ENI listed twice (the first
		// wins); drop those so shuffling keeps the same meaning.
		seen := map[string]bool{}
		in.Desired = slices.DeleteFunc(in.Desired, func(s Source) bool {
			dup := seen[s.ENI]
			seen[s.ENI] = true
			return dup
		})
		want := in.Plan()
		for range 5 {
			shuffled := in
			shuffled.Desired = slices.Clone(in.Desired)
			shuffled.Actual = slices.Clone(in.Actual)
			rng.Shuffle(len(shuffled.Desired), func(a, b int) {
				shuffled.Desired[a], shuffled.Desired[b] = shuffled.Desired[b], shuffled.Desired[a]
			})
			rng.Shuffle(len(shuffled.Actual), func(a, b int) {
				shuffled.Actual[a], shuffled.Actual[b] = shuffled.Actual[b], shuffled.Actual[a]
			})
			if got := shuffled.Plan(); !reflect.DeepEqual(got, want) {
				t.Fatalf("input %d: plan depends on input order:\n got  %q\n want %q", i, summarize(got), summarize(want))
			}
		}
	}
}

// TestPlanProperties checks the planner's invariants on random inputs.
func TestPlanProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(42, 7))
	// seen counts what the plans did, to show the generator reaches every
	// rule rather than passing trivially.
	seen := map[string]int{}
	for i := range 2000 {
		in := randomInput(rng)
		p := in.Plan()
		for _, c := range p.Creates {
			seen["create"]++
			if c.Replaces != nil {
				seen["create replacing"]++
			}
			if c.Shadowed {
				seen["create shadowed"]++
			}
		}
		for _, d := range p.Deletes {
			seen["delete "+d.Reason]++
		}
		seen["protected"] += len(p.Protected)
		seen["kept"] += p.Kept
		seen["conflict"] += len(p.Conflicts)
		for _, u := range p.Unsupported {
			switch {
			case strings.Contains(u.Reason, "next try"):
				seen["unsupported blocked"]++
			case strings.Contains(u.Reason, "3 sessions"):
				seen["unsupported full"]++
			case strings.Contains(u.Reason, "no free session number"):
				seen["unsupported number"]++
			}
		}
		checkInvariants(t, in, p)
		if t.Failed() {
			t.Logf("input %d: config %+v\ndesired %+v\nactual %+v\nblocked %+v\nplan %q", i, in.Config, in.Desired, in.Actual, in.Blocked, summarize(p))
			return
		}
	}
	for _, k := range []string{
		"create", "create replacing", "create shadowed",
		"delete duplicate", "delete replaced", "delete source no longer desired",
		"protected", "kept", "conflict",
		"unsupported blocked", "unsupported full", "unsupported number",
	} {
		if seen[k] == 0 {
			t.Errorf("random inputs never produced %q", k)
		}
	}
	t.Logf("outcomes: %v", seen)
}

// checkInvariants applies p to in.Actual in the documented order and checks
// what must hold whatever the input.
func checkInvariants(t *testing.T, in Input, p Plan) {
	t.Helper()
	cfg := in.Config.WithDefaults()

	actual := map[string]Session{}
	for _, s := range in.Actual {
		if _, dup := actual[s.ID]; !dup {
			actual[s.ID] = s
		}
	}
	// A session is ours when tagged with our (non-empty) stack name and
	// pointing at our target: checked here without Config.Owns, so that a
	// wrong Owns is caught.
	mine := func(s Session) bool {
		return cfg.StackName != "" && s.Tags[contract.TagStack] == cfg.StackName && s.TargetID == cfg.TargetID
	}
	isOurs := func(id string) bool {
		s, ok := actual[id]
		return ok && mine(s)
	}

	// Never an action on a foreign session.
	for _, d := range slices.Concat(p.Deletes, p.Protected) {
		if !isOurs(d.Session.ID) {
			t.Errorf("delete or protect of %s, which is not an existing session of ours", d.Session.ID)
		}
	}
	for _, c := range p.Creates {
		if c.Replaces != nil && !isOurs(c.Replaces.ID) {
			t.Errorf("create on %s replaces %s, which is not an existing session of ours", c.Source.ENI, c.Replaces.ID)
		}
	}
	// Deleted at most once, and never both deleted and protected.
	touched := map[string]bool{}
	for _, id := range slices.Concat(
		deleteIDs(p.Deletes), deleteIDs(p.Protected), replaceIDs(p.Creates)) {
		if touched[id] {
			t.Errorf("session %s appears in more than one action", id)
		}
		touched[id] = true
	}

	// At most one create per ENI, for a desired ENI, with a valid number
	// and the token of its key.
	firstSource := map[string]Source{}
	for _, s := range in.Desired {
		if _, ok := firstSource[s.ENI]; !ok && s.ENI != "" {
			firstSource[s.ENI] = s
		}
	}
	creates := map[string]Create{}
	for _, c := range p.Creates {
		if _, dup := creates[c.Source.ENI]; dup {
			t.Errorf("two creates for %s", c.Source.ENI)
		}
		creates[c.Source.ENI] = c
		if !reflect.DeepEqual(c.Source, firstSource[c.Source.ENI]) {
			t.Errorf("create for %s is not for its first desired source", c.Source.ENI)
		}
		if c.Number < MinSessionNumber || c.Number > MaxSessionNumber {
			t.Errorf("create for %s has number %d", c.Source.ENI, c.Number)
		}
		want := ClientToken(cfg.StackName, c.Source.ENI, cfg.TargetID, cfg.FilterID, c.Source.VNI, c.Source.Epoch)
		if c.Token != want {
			t.Errorf("create for %s has token %q, want %q", c.Source.ENI, c.Token, want)
		}
		lower := slices.ContainsFunc(in.Actual, func(s Session) bool {
			return s.ENI == c.Source.ENI && !mine(s) && s.Number < c.Number
		})
		if c.Shadowed != lower {
			t.Errorf("create for %s number %d: shadowed %v, but a foreign session numbered lower exists: %v", c.Source.ENI, c.Number, c.Shadowed, lower)
		}
		if len(c.Token) > 64 {
			t.Errorf("token %q longer than 64", c.Token)
		}
	}

	// Apply: deletes, then creates, then the replaced ones. AWS's rules
	// (3 per ENI, unique numbers) must hold at every step.
	state := map[string]Session{}
	for id, s := range actual {
		state[id] = s
	}
	checkENIs := func(step string) {
		counts := map[string]int{}
		for _, s := range state {
			counts[s.ENI]++
		}
		for eni, n := range counts {
			if n > MaxSessionsPerENI && !touchedENI(p, eni) {
				continue // was already over in the input; not our doing
			}
			if n > MaxSessionsPerENI {
				t.Errorf("%s: %s has %d sessions", step, eni, n)
			}
		}
	}
	for _, d := range p.Deletes {
		delete(state, d.Session.ID)
	}
	checkENIs("after deletes")
	for _, c := range p.Creates {
		for _, s := range state {
			if s.ENI == c.Source.ENI && s.Number == c.Number {
				t.Errorf("create for %s uses number %d, taken by %s", c.Source.ENI, c.Number, s.ID)
			}
		}
		id := "new-" + c.Source.ENI
		state[id] = Session{ID: id, ENI: c.Source.ENI, TargetID: cfg.TargetID, FilterID: cfg.FilterID,
			Number: c.Number, VNI: c.Source.VNI,
			Tags: map[string]string{contract.TagStack: cfg.StackName, contract.TagLB: c.Source.LB}}
		checkENIs("after create on " + c.Source.ENI)
	}
	for _, c := range p.Creates {
		if c.Replaces != nil {
			delete(state, c.Replaces.ID)
		}
	}
	checkENIs("after replacing")

	// Foreign sessions are all still there, unchanged.
	for id, s := range actual {
		if !mine(s) && !reflect.DeepEqual(state[id], s) {
			t.Errorf("foreign session %s changed", id)
		}
	}

	// Every desired ENI ends with exactly one correct session of ours, or
	// is reported; an unblocked ENI without foreign sessions always does.
	reported := map[string]bool{}
	for _, pr := range slices.Concat(p.Conflicts, p.Unsupported) {
		reported[pr.ENI] = true
	}
	for eni, src := range firstSource {
		var count, good int
		hasForeign := false
		for _, s := range state {
			if s.ENI != eni {
				continue
			}
			if !mine(s) {
				hasForeign = true
				continue
			}
			count++
			if s.TargetID == cfg.TargetID && s.FilterID == cfg.FilterID && s.VNI == src.VNI && s.Tags[contract.TagLB] == src.LB {
				good++
			}
		}
		b, isBlocked := in.Blocked[eni]
		blocked := isBlocked && b.Until.After(in.Now)
		switch {
		case count == 1 && good == 1:
		case !blocked && !hasForeign:
			t.Errorf("%s: conflict-free and unblocked, but ends with %d sessions of ours, %d correct", eni, count, good)
		case !reported[eni]:
			t.Errorf("%s: ends with %d sessions of ours, %d correct, and is not reported", eni, count, good)
		}
		if count > 1 {
			t.Errorf("%s: ends with %d sessions of ours", eni, count)
		}
	}
	// No session of ours is left on an ENI not desired, unless protected.
	protected := map[string]bool{}
	for _, d := range p.Protected {
		protected[d.Session.ID] = true
	}
	for id, s := range state {
		if _, ok := firstSource[s.ENI]; !ok && mine(s) && !protected[id] {
			t.Errorf("session %s of ours on %s, not desired, is left", id, s.ENI)
		}
	}

	// Sorted output.
	if !slices.IsSortedFunc(p.Creates, func(a, b Create) int { return strings.Compare(a.Source.ENI, b.Source.ENI) }) {
		t.Error("creates not sorted")
	}
	if !slices.IsSortedFunc(p.Deletes, compareDeletes) || !slices.IsSortedFunc(p.Protected, compareDeletes) {
		t.Error("deletes not sorted")
	}
	if !slices.IsSortedFunc(p.Conflicts, compareProblems) || !slices.IsSortedFunc(p.Unsupported, compareProblems) {
		t.Error("problems not sorted")
	}

	// Converged: planning again on the result asks for nothing more.
	after := in
	after.Actual = nil
	for _, s := range state {
		after.Actual = append(after.Actual, s)
	}
	again := after.Plan()
	if len(again.Creates) != 0 || len(again.Deletes) != 0 {
		t.Errorf("not converged: second plan %q", summarize(again))
	}
}

func touchedENI(p Plan, eni string) bool {
	for _, c := range p.Creates {
		if c.Source.ENI == eni {
			return true
		}
	}
	return false
}

func deleteIDs(ds []Delete) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Session.ID)
	}
	return out
}

func replaceIDs(cs []Create) []string {
	var out []string
	for _, c := range cs {
		if c.Replaces != nil {
			out = append(out, c.Replaces.ID)
		}
	}
	return out
}

// randomInput builds a small account where every rule gets exercised:
// few ENIs, a few load balancers, sessions of ours (right and wrong),
// of another stack and untagged, numbers that clash and sit at the limit.
func randomInput(rng *rand.Rand) Input {
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	numbers := []int32{1, 2, 3, 4, 5, 6, 32765, 32766}

	cfg := testConfig()
	if rng.IntN(2) == 0 {
		cfg.Conflict = ConflictCoexist
	}
	cfg.SessionNumber = []int32{0, 1, 2, 32766}[rng.IntN(4)]
	lbs := map[string]uint32{lbA: vniA, lbB: vniB}
	lbOf := func() (string, uint32) {
		lb := pick(lbA, lbB)
		return lb, lbs[lb]
	}

	var in Input
	in.Config = cfg
	in.Now = now
	in.Blocked = map[string]Blocked{}
	in.Created = map[string]time.Time{}
	nENI := 1 + rng.IntN(6)
	id := 0
	for e := range nENI {
		eni := fmt.Sprintf("eni-%d", e)
		if rng.IntN(3) > 0 {
			lb, vni := lbOf()
			s := Source{ENI: eni, LB: lb, VNI: vni, Epoch: pick("e1", "e2")}
			in.Desired = append(in.Desired, s)
			if rng.IntN(8) == 0 { // listed twice
				lb2, vni2 := lbOf()
				in.Desired = append(in.Desired, Source{ENI: eni, LB: lb2, VNI: vni2})
			}
		}
		if rng.IntN(6) == 0 {
			in.Blocked[eni] = Blocked{Until: now.Add(time.Duration(rng.IntN(3)-1) * time.Minute), Reason: "test"}
		}
		// Up to 3 sessions with distinct numbers, as AWS allows.
		nums := slices.Clone(numbers)
		rng.Shuffle(len(nums), func(a, b int) { nums[a], nums[b] = nums[b], nums[a] })
		for k := range rng.IntN(4) {
			id++
			s := Session{ID: fmt.Sprintf("tms-%03d", id), ENI: eni, Number: nums[k], Tags: map[string]string{}}
			lb, vni := lbOf()
			s.VNI = vni
			s.Tags[contract.TagLB] = lb
			switch rng.IntN(4) {
			case 0, 1:
				s.Tags[contract.TagStack] = stack
			case 2:
				s.Tags[contract.TagStack] = "apitap-other"
			case 3: // untagged
				delete(s.Tags, contract.TagLB)
			}
			s.TargetID = pick(target, target, "tmt-old")
			s.FilterID = pick(filter, filter, "tmf-old")
			if rng.IntN(6) == 0 {
				s.VNI = 999
			}
			if rng.IntN(3) == 0 {
				in.Created[s.ID] = now.Add(-time.Duration(rng.IntN(6)) * time.Minute)
			}
			in.Actual = append(in.Actual, s)
			if rng.IntN(10) == 0 { // Describe returned it twice
				in.Actual = append(in.Actual, s)
			}
		}
	}
	return in
}

func TestConfigValidate(t *testing.T) {
	valid := testConfig()
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"all set", func(c *Config) {
			c.SessionNumber = MaxSessionNumber
			c.Conflict = ConflictCoexist
			c.Grace = time.Minute
		}, ""},
		{"no stack", func(c *Config) { c.StackName = "" }, "stack name is required"},
		{"stack too long for a tag value", func(c *Config) { c.StackName = strings.Repeat("s", 257) }, "longer than 256"},
		{"stack at the tag value limit", func(c *Config) { c.StackName = strings.Repeat("é", 256) }, ""},
		{"stack not UTF-8", func(c *Config) { c.StackName = "a\xffb" }, "UTF-8"},
		{"no target", func(c *Config) { c.TargetID = "" }, "target id is required"},
		{"no filter", func(c *Config) { c.FilterID = "" }, "filter id is required"},
		{"number too low", func(c *Config) { c.SessionNumber = -1 }, "session number -1"},
		{"number too high", func(c *Config) { c.SessionNumber = 32767 }, "session number 32767"},
		{"unknown policy", func(c *Config) { c.Conflict = "replace" }, `conflict policy "replace"`},
		{"negative grace", func(c *Config) { c.Grace = -time.Second }, "grace -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.mod(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Errorf("no error, want %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}

	// All problems at once.
	err := (&Config{SessionNumber: -5, Conflict: "x"}).Validate()
	for _, want := range []string{"stack name", "target id", "filter id", "session number", "conflict policy"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	got := Config{}.WithDefaults()
	if got.SessionNumber != 1 || got.Conflict != ConflictSkip || got.Grace != 3*time.Minute {
		t.Errorf("defaults = %+v", got)
	}
	set := Config{SessionNumber: 4, Conflict: ConflictCoexist, Grace: time.Second}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed set fields: %+v", got)
	}
}
