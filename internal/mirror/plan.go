package mirror

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apitap/apitap/internal/contract"
)

// Defaults for Config's zero values.
const (
	DefaultSessionNumber int32 = 1
	DefaultConflict            = ConflictSkip
	DefaultGrace               = 3 * time.Minute
)

// maxTagValueLen is EC2's limit on a tag value, in Unicode characters.
const maxTagValueLen = 256

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.SessionNumber == 0 {
		c.SessionNumber = DefaultSessionNumber
	}
	if c.Conflict == "" {
		c.Conflict = DefaultConflict
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	return c
}

// Validate reports every problem with c. Zero values stand for the defaults
// and are valid.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.StackName == "":
		errs = append(errs, errors.New("stack name is required"))
	case !utf8.ValidString(c.StackName):
		errs = append(errs, errors.New("stack name is not valid UTF-8"))
	case utf8.RuneCountInString(c.StackName) > maxTagValueLen:
		// It is the value of the apitap:stack tag on every session.
		errs = append(errs, fmt.Errorf("stack name is longer than %d characters, the limit of a tag value", maxTagValueLen))
	}
	if c.TargetID == "" {
		errs = append(errs, errors.New("traffic mirror target id is required"))
	}
	if c.FilterID == "" {
		errs = append(errs, errors.New("traffic mirror filter id is required"))
	}
	if c.SessionNumber != 0 && (c.SessionNumber < MinSessionNumber || c.SessionNumber > MaxSessionNumber) {
		errs = append(errs, fmt.Errorf("session number %d is outside %d-%d", c.SessionNumber, MinSessionNumber, MaxSessionNumber))
	}
	switch c.Conflict {
	case "", ConflictSkip, ConflictCoexist:
	default:
		errs = append(errs, fmt.Errorf("conflict policy %q is not %q or %q", c.Conflict, ConflictSkip, ConflictCoexist))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("grace %s is negative", c.Grace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("validating mirror config: %w", err)
	}
	return nil
}

// Plan decides what to do; it is a pure function of in. Config should have
// passed Validate; its zero fields take their defaults.
//
// The caller applies the result in this order:
//  1. every Delete (a Create may need the room, or the number, it frees);
//  2. every Create;
//  3. for each Create that succeeded and has Replaces, delete that session
//     (create before delete, so a replaced source is never unmirrored).
//
// Rules, per desired ENI (the first Source wins if one appears twice):
//   - several sessions of ours: the best is kept (correct before wrong,
//     then lowest number, then id), the others are deleted as "duplicate";
//   - ours correct (target, filter, VNI and apitap:lb tag as desired): Kept,
//     and reported as a conflict if foreign sessions share the ENI;
//   - blocked until after Now: Unsupported, nothing done;
//   - foreign sessions and none of ours, policy skip: Conflicts, no create;
//   - no room for a session (3 on the ENI): Unsupported;
//   - otherwise one Create, numbered the lowest number not used on the ENI
//     from Config.SessionNumber, or with policy coexist and foreign
//     sessions present from one above the highest foreign number; a number
//     past MaxSessionNumber makes the ENI Unsupported;
//   - ours present but wrong: the Create replaces it (Replaces) when the
//     ENI has room and a free number for both, otherwise it is deleted
//     first ("replaced").
//
// A session of ours is one Config.Owns: its apitap:stack tag is
// Config.StackName and its target is Config.TargetID. A session tagged
// with our stack but pointing elsewhere is foreign (we did not create it
// for this target; deleting it could stop someone else's mirroring). Ours
// on an ENI not desired is deleted ("source no
// longer desired") unless Input.Created shows it was created less than
// Grace ago (Protected). Foreign sessions are never deleted or replaced.
//
// Every list in the result is sorted by ENI, then session id.
func (in Input) Plan() Plan {
	cfg := in.Config.WithDefaults()
	var p Plan

	// A session listed twice (say, pages overlapping in a racing Describe)
	// must not look like a duplicate of itself: it would be deleted.
	seen := make(map[string]bool, len(in.Actual))
	byENI := make(map[string][]Session)
	for _, s := range in.Actual {
		if seen[s.ID] {
			continue
		}
		seen[s.ID] = true
		byENI[s.ENI] = append(byENI[s.ENI], s)
	}

	desired := make(map[string]bool, len(in.Desired))
	for _, src := range in.Desired {
		if src.ENI == "" {
			p.Unsupported = append(p.Unsupported, Problem{LB: src.LB, Reason: "source has no network interface"})
			continue
		}
		if desired[src.ENI] {
			continue
		}
		desired[src.ENI] = true
		planSource(&p, in, cfg, src, byENI[src.ENI])
	}

	for eni, sessions := range byENI {
		if desired[eni] {
			continue
		}
		for _, s := range sessions {
			if !cfg.Owns(s) {
				continue
			}
			d := Delete{Session: s, Reason: "source no longer desired"}
			if created, ok := in.Created[s.ID]; ok && in.Now.Sub(created) < cfg.Grace {
				p.Protected = append(p.Protected, d)
			} else {
				p.Deletes = append(p.Deletes, d)
			}
		}
	}

	slices.SortStableFunc(p.Creates, func(a, b Create) int { return cmp.Compare(a.Source.ENI, b.Source.ENI) })
	slices.SortStableFunc(p.Deletes, compareDeletes)
	slices.SortStableFunc(p.Protected, compareDeletes)
	slices.SortStableFunc(p.Conflicts, compareProblems)
	slices.SortStableFunc(p.Unsupported, compareProblems)
	return p
}

// planSource adds to p what the desired source src needs; sessions are
// every session on its ENI.
func planSource(p *Plan, in Input, cfg Config, src Source, sessions []Session) {
	var ours, foreign []Session
	for _, s := range sessions {
		if cfg.Owns(s) {
			ours = append(ours, s)
		} else {
			foreign = append(foreign, s)
		}
	}
	slices.SortFunc(foreign, compareByNumber)

	correct := func(s *Session) bool {
		return s.TargetID == cfg.TargetID && s.FilterID == cfg.FilterID &&
			s.VNI == src.VNI && s.Tags[contract.TagLB] == src.LB
	}
	// The best of ours is kept. The order is total, so racing invocations
	// that see different subsets never delete the globally best one.
	slices.SortFunc(ours, func(a, b Session) int {
		if ca, cb := correct(&a), correct(&b); ca != cb {
			if ca {
				return -1
			}
			return 1
		}
		return compareByNumber(a, b)
	})
	var keeper *Session
	if len(ours) > 0 {
		keeper = &ours[0]
		for _, s := range ours[1:] {
			p.Deletes = append(p.Deletes, Delete{Session: s, Reason: "duplicate"})
		}
	}

	problem := func(reason string) Problem {
		return Problem{ENI: src.ENI, LB: src.LB, Reason: reason, Sessions: ids(foreign)}
	}

	if keeper != nil && correct(keeper) {
		p.Kept++
		if len(foreign) > 0 {
			p.Conflicts = append(p.Conflicts, problem(coexisting(foreign, keeper.Number)))
		}
		return
	}

	if b, ok := in.Blocked[src.ENI]; ok && b.Until.After(in.Now) {
		reason := b.Reason
		if reason == "" {
			reason = "blocked"
		}
		p.Unsupported = append(p.Unsupported, problem(fmt.Sprintf("%s (next try after %s)", reason, b.Until.UTC().Format(time.RFC3339))))
		return
	}

	// The conflict policy decides whether we join an ENI that someone else
	// mirrors. Replacing a session of ours that is already there does not
	// join it, so that goes ahead under either policy.
	if len(foreign) > 0 && keeper == nil && cfg.Conflict != ConflictCoexist {
		p.Conflicts = append(p.Conflicts, problem(fmt.Sprintf("foreign mirror sessions %s; skipped (conflict policy %s)", describe(foreign), cfg.Conflict)))
		return
	}

	base := max(cfg.SessionNumber, MinSessionNumber)
	if len(foreign) > 0 && cfg.Conflict == ConflictCoexist {
		// AWS mirrors a packet once, by the lowest-numbered session that
		// accepts it: going above the foreign sessions leaves them their
		// traffic and makes ours the one possibly shadowed.
		base = max(base, foreign[len(foreign)-1].Number+1)
	}

	// Sessions on the ENI while the create runs: the foreign ones, and the
	// one we replace if there is room to create before deleting it.
	used := make(map[int32]bool, len(foreign)+1)
	for _, s := range foreign {
		used[s.Number] = true
	}
	onENI := len(foreign)
	createFirst := keeper != nil && len(foreign)+1 < MaxSessionsPerENI
	if createFirst {
		used[keeper.Number] = true
		onENI++
	}
	if onENI >= MaxSessionsPerENI {
		p.Unsupported = append(p.Unsupported, problem(fmt.Sprintf("ENI already has %d sessions", MaxSessionsPerENI)))
		return
	}
	number := lowestFree(base, used)
	if number > MaxSessionNumber && createFirst {
		// Only the number of the session we replace was free (say, the
		// configured 32766): delete it first and reuse its number.
		createFirst = false
		delete(used, keeper.Number)
		number = lowestFree(base, used)
	}
	if number > MaxSessionNumber {
		p.Unsupported = append(p.Unsupported, problem(fmt.Sprintf("no free session number from %d to %d", base, MaxSessionNumber)))
		return
	}

	c := Create{
		Source: src,
		Number: number,
		Token:  ClientToken(cfg.StackName, src.ENI, cfg.TargetID, cfg.FilterID, src.VNI, src.Epoch),
	}
	for _, s := range foreign {
		if s.Number < number {
			c.Shadowed = true
		}
	}
	if keeper != nil {
		if createFirst {
			replaced := *keeper
			c.Replaces = &replaced
		} else {
			p.Deletes = append(p.Deletes, Delete{Session: *keeper, Reason: "replaced"})
		}
	}
	p.Creates = append(p.Creates, c)
	if len(foreign) > 0 {
		p.Conflicts = append(p.Conflicts, problem(coexisting(foreign, number)))
	}
}

// lowestFree is the lowest number from base not in used; it may exceed
// MaxSessionNumber.
func lowestFree(base int32, used map[int32]bool) int32 {
	n := base
	for used[n] {
		n++
	}
	return n
}

// coexisting is the conflict report for our session numbered ours sharing
// an ENI with the foreign sessions.
func coexisting(foreign []Session, ours int32) string {
	var lower []Session
	for _, s := range foreign {
		if s.Number < ours {
			lower = append(lower, s)
		}
	}
	reason := fmt.Sprintf("coexisting with foreign mirror sessions %s", describe(foreign))
	if len(lower) == 0 {
		return fmt.Sprintf("%s; ours (number %d) is evaluated first", reason, ours)
	}
	return fmt.Sprintf("%s; ours (number %d) possibly shadowed by %s", reason, ours, strings.Join(ids(lower), ", "))
}

// describe lists sessions as "tms-1 (number 1), tms-2 (number 5)".
func describe(sessions []Session) string {
	parts := make([]string, len(sessions))
	for i, s := range sessions {
		parts[i] = fmt.Sprintf("%s (number %d)", s.ID, s.Number)
	}
	return strings.Join(parts, ", ")
}

func ids(sessions []Session) []string {
	if len(sessions) == 0 {
		return nil
	}
	out := make([]string, len(sessions))
	for i, s := range sessions {
		out[i] = s.ID
	}
	return out
}

func compareByNumber(a, b Session) int {
	return cmp.Or(cmp.Compare(a.Number, b.Number), cmp.Compare(a.ID, b.ID))
}

func compareDeletes(a, b Delete) int {
	return cmp.Or(cmp.Compare(a.Session.ENI, b.Session.ENI), cmp.Compare(a.Session.ID, b.Session.ID))
}

func compareProblems(a, b Problem) int {
	return cmp.Or(cmp.Compare(a.ENI, b.ENI), cmp.Compare(a.LB, b.LB))
}
