// Package sessionwriter creates and deletes apitap's traffic mirror
// sessions: it applies what the planner (package mirror) decided. It owns
// the decisions that touch AWS's state:
//
//   - ownership: nothing is deleted that mirror.Config.Owns does not
//     accept, on the tags read back from AWS (tags.go holds the scheme);
//   - idempotency: each create carries a ClientToken derived from the
//     session's key; when EC2 says the token was used before, the ENI's
//     sessions are read (after a pause for Describe to catch up) before the
//     token's next generation is tried, so that a second session of ours
//     never appears on one ENI, even where EC2 accepts duplicate numbers;
//   - what an AWS error means (package awserr): a source AWS cannot mirror
//     or a quota reached is reported and backed off, a session already gone
//     is deleted, throttling and server errors are left to the next run;
//   - pace: creates and deletes go through a client-side rate limiter.
//
// A Writer lives as long as the Lambda container and is safe for
// concurrent use; each Apply returns the Outcome of that call.
package sessionwriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
)

// EC2 is the part of the EC2 API the writer calls.
type EC2 interface {
	CreateTrafficMirrorSession(context.Context, *ec2.CreateTrafficMirrorSessionInput, ...func(*ec2.Options)) (*ec2.CreateTrafficMirrorSessionOutput, error)
	DeleteTrafficMirrorSession(context.Context, *ec2.DeleteTrafficMirrorSessionInput, ...func(*ec2.Options)) (*ec2.DeleteTrafficMirrorSessionOutput, error)
}

// Lister reads the sessions on some ENIs (inventory.Reader.SessionsOn):
// what the writer looks at before creating with a fresh token.
type Lister interface {
	SessionsOn(ctx context.Context, enis []string) ([]mirror.Session, error)
}

// Clock is the time source: real in Lambda, simulated in tests.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// Config configures a Writer. Zero fields take their defaults.
type Config struct {
	// Mirror is the stack's mirroring configuration: whose sessions are
	// ours, and the target and filter of new ones.
	Mirror mirror.Config
	// MutationsPerSecond limits create and delete calls. Default 5.
	MutationsPerSecond float64
	// BackoffBase and BackoffMax bound how long an ENI whose create failed
	// for a lasting reason (unsupported source, quota) waits before it is
	// tried again, doubling each time. Default 10m, 6h.
	BackoffBase, BackoffMax time.Duration
	// Settle is how long DescribeTrafficMirrorSessions may take to show a
	// session another handler just created: how long after a recent
	// create with the same token the ENI's sessions are read. Default 5s.
	Settle time.Duration
}

// Defaults of Config.
const (
	DefaultMutationsPerSecond = 5
	DefaultBackoffBase        = 10 * time.Minute
	DefaultBackoffMax         = 6 * time.Hour
	DefaultSettle             = 5 * time.Second
)

func (c *Config) setDefaults() {
	c.Mirror = c.Mirror.WithDefaults()
	if c.MutationsPerSecond <= 0 {
		c.MutationsPerSecond = DefaultMutationsPerSecond
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = DefaultBackoffBase
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.Settle <= 0 {
		c.Settle = DefaultSettle
	}
}

// Writer creates and deletes sessions. Safe for concurrent use.
type Writer struct {
	cfg     Config
	ec2     EC2
	clock   Clock
	log     *slog.Logger
	limiter *limiter

	mu      sync.Mutex
	blocked map[string]blockState // by ENI
	// deleted remembers sessions this process deleted: EC2 answers a
	// create whose ClientToken it has seen with the original session, even
	// when that session was deleted since.
	deleted map[string]time.Time
	// generations remembers, by source, the token generation that last
	// made or found its session, so a warm container starts there.
	generations map[string]generationState
}

type generationState struct {
	n  int
	at time.Time
}

type blockState struct {
	mirror.Blocked
	failures int
}

// New returns a Writer; log nil means slog.Default().
func New(cfg Config, c EC2, clock Clock, log *slog.Logger) (*Writer, error) {
	cfg.setDefaults()
	if err := cfg.Mirror.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Writer{
		cfg: cfg, ec2: c, clock: clock, log: log,
		limiter:     newLimiter(clock, cfg.MutationsPerSecond, max(1, int(cfg.MutationsPerSecond))),
		blocked:     map[string]blockState{},
		deleted:     map[string]time.Time{},
		generations: map[string]generationState{},
	}, nil
}

// Outcome is what one Apply did.
type Outcome struct {
	Created int
	// Adopted counts creates that found the session already made by an
	// earlier or concurrent create of the same session (its token was used
	// before): nothing new was created.
	Adopted int
	Deleted int
	// Left counts actions not attempted because the time was up.
	Left int
	// Unsupported are sources AWS refused to mirror (network interface not
	// supported, a quota reached): backed off.
	Unsupported []mirror.Problem
	// Refused counts deletes of sessions that are not ours: never done,
	// and a bug in the caller if ever non-zero.
	Refused int
	// Fallbacks counts AWS errors understood only by their message (an
	// undocumented code): see awserr.
	Fallbacks int
	// FailedDeletes counts deletes that failed for a reason retrying soon
	// will not fix (access denied, an unknown error).
	FailedDeletes int
	APICalls      int
	Errors        []error
}

func (o *Outcome) fail(err error) { o.Errors = append(o.Errors, err) }

// classify classifies err and counts a fallback classification.
func (w *Writer) classify(o *Outcome, err error, what string) awserr.Class {
	c := awserr.Classify(err)
	if c.Fallback {
		o.Fallbacks++
		w.log.Warn("AWS error understood from its message only: an undocumented code", "op", what, "code", c.Code, "kind", c.Kind.String(), "err", err)
	}
	return c
}

// Apply carries out a plan: deletes of sessions no longer wanted first
// (they cost money and may free a slot or a number), then creates, each
// replacement deleting its predecessor once created. No action starts
// after stopBy (zero: no limit); those are counted in Outcome.Left. look
// reads an ENI's sessions when a create's token turns out to be used.
func (w *Writer) Apply(ctx context.Context, p mirror.Plan, stopBy time.Time, look Lister) *Outcome {
	o := &Outcome{}
	timeLeft := func() bool { return stopBy.IsZero() || w.clock.Now().Before(stopBy) }
	for _, d := range p.Deletes {
		if !timeLeft() {
			o.Left++
			continue
		}
		w.delete(ctx, o, d)
	}
	for _, c := range p.Creates {
		if !timeLeft() {
			o.Left++
			continue
		}
		if w.create(ctx, o, c, look) && c.Replaces != nil {
			w.delete(ctx, o, mirror.Delete{Session: *c.Replaces, Reason: "replaced by a session for " + c.Source.LB})
		}
	}
	return o
}

// maxGenerations bounds the token generations one create walks in one
// invocation; the next run goes on from where this one stopped.
const maxGenerations = 12

// create makes the session c asks for; it reports whether the session now
// exists (created, or adopted from an earlier create).
//
// The token's generation 0 is the planner's; the Writer remembers the last
// generation that made or found a session for the same source, so that a
// warm container starts there. When EC2 answers that a token was used
// before (a replay of another create's session, or
// IdempotentParameterMismatch), that create may be a concurrent handler's
// (its session exists, or will be listed in a moment) or an earlier one
// whose session was deleted since. The ENI's sessions are read, Settle
// after the answer, and a session of ours found there is adopted; only
// when none is found does the create move on to the token's next
// generation. Concurrent creators walk the same generations, so they
// always share a token: EC2 then makes one session, whatever it does with
// duplicate session numbers.
func (w *Writer) create(ctx context.Context, o *Outcome, c mirror.Create, look Lister) bool {
	src := c.Source
	key := generationKey(c)
	gen := w.generation(key)
	for step := 0; step < maxGenerations; step, gen = step+1, gen+1 {
		c.Token = mirror.ClientToken(w.cfg.Mirror.StackName, src.ENI, w.cfg.Mirror.TargetID, w.cfg.Mirror.FilterID, src.VNI,
			mirror.TokenGeneration(src.Epoch, gen))
		a := w.createOnce(ctx, o, c)
		if !a.used {
			if a.created {
				w.setGeneration(key, gen)
			}
			return a.created
		}
		if wait := a.settle(w.cfg.Settle); wait > 0 {
			if err := w.clock.Sleep(ctx, wait); err != nil {
				o.fail(fmt.Errorf("creating mirror session for %s: %w", src.ENI, err))
				return false
			}
		}
		s, err := w.existing(ctx, src, look)
		if err != nil {
			o.fail(fmt.Errorf("creating mirror session for %s: reading its sessions before the token's next generation: %w", src.ENI, err))
			return false
		}
		if s != nil {
			o.Adopted++
			w.unblock(src.ENI)
			w.setGeneration(key, gen)
			w.log.Info("mirror session already made by an earlier create with the same token", "eni", src.ENI, "session", s.ID, "lb", src.LB, "generation", gen)
			return true
		}
		w.log.Info("client token used by a session that no longer exists: next generation", "eni", src.ENI, "generation", gen+1)
	}
	w.setGeneration(key, gen)
	o.fail(fmt.Errorf("creating mirror session for %s: %d token generations used by sessions that no longer exist; the next run goes on", src.ENI, maxGenerations))
	return false
}

// existing finds a session of ours on src's ENI that mirrors it, leaving
// out sessions this process deleted (Describe may still show them).
func (w *Writer) existing(ctx context.Context, src mirror.Source, look Lister) (*mirror.Session, error) {
	ss, err := look.SessionsOn(ctx, []string{src.ENI})
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		if mirrorsFor(w.cfg.Mirror, s, src) && !w.wasDeleted(s.ID) {
			return &s, nil
		}
	}
	return nil, nil
}

// answer is what one create call told.
type answer struct {
	created bool
	// used: EC2 answered as for a token already used, with another
	// create's session (replayed) or IdempotentParameterMismatch.
	used bool
	// dead: the replayed session is one this process deleted.
	dead bool
}

// settle is how long to wait before the ENI's sessions show what the
// earlier create with the same token made: nothing for a session this
// process deleted, else all of Settle. EC2 has made that session by the
// time it answers, but Describe may not show it yet; its apitap:created
// tag does not tell when it appeared (the tag is written when the request
// is built, and the SDK may retry a throttled create for minutes).
func (a answer) settle(settle time.Duration) time.Duration {
	if a.dead {
		return 0
	}
	return settle
}

// createOnce sends one create.
func (w *Writer) createOnce(ctx context.Context, o *Outcome, c mirror.Create) answer {
	s := c.Source
	if err := w.limiter.wait(ctx); err != nil {
		o.fail(fmt.Errorf("creating mirror session for %s: %w", s.ENI, err))
		return answer{}
	}
	now := w.clock.Now().UTC().Format(time.RFC3339)
	stack := w.cfg.Mirror.StackName
	w.log.Info("creating mirror session", "eni", s.ENI, "instance", s.InstanceID, "lb", s.LB, "vni", s.VNI, "number", c.Number, "shadowed", c.Shadowed)
	o.APICalls++
	out, err := w.ec2.CreateTrafficMirrorSession(ctx, &ec2.CreateTrafficMirrorSessionInput{
		NetworkInterfaceId:    aws.String(s.ENI),
		TrafficMirrorTargetId: aws.String(w.cfg.Mirror.TargetID),
		TrafficMirrorFilterId: aws.String(w.cfg.Mirror.FilterID),
		SessionNumber:         aws.Int32(c.Number),
		VirtualNetworkId:      aws.Int32(int32(s.VNI)),
		ClientToken:           aws.String(c.Token),
		Description:           aws.String(description(stack, s.LB)),
		TagSpecifications:     []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTrafficMirrorSession, Tags: sessionTags(stack, s, now)}},
	})
	if err == nil {
		// EC2 compares the parameters of a reused token, tags perhaps
		// included (AWS does not say): an answer carrying another creation
		// time, or a session we deleted, is an earlier create replayed.
		if dead := w.wasDeleted(createdID(out)); dead || createdTag(out) != now {
			return answer{used: true, dead: dead}
		}
	}
	cl := w.classify(o, err, "create")
	switch {
	case err == nil:
		o.Created++
		w.unblock(s.ENI)
		w.log.Info("created mirror session", "eni", s.ENI, "session", createdID(out), "lb", s.LB)
		return answer{created: true}
	case cl.Kind == awserr.IdempotentMismatch:
		return answer{used: true}
	case cl.Kind == awserr.UnsupportedSource:
		reason := fmt.Sprintf("network interface not supported for Traffic Mirroring (instance type %q): %s", s.InstanceType, cl.Code)
		w.report(o, s, reason, err)
	case cl.Kind == awserr.Quota:
		w.report(o, s, fmt.Sprintf("Traffic Mirroring quota reached: %s (%s)", cl.Quota, cl.Code), err)
	default:
		o.fail(fmt.Errorf("creating mirror session for %s: %w", s.ENI, err))
		w.log.Error("creating mirror session failed", "eni", s.ENI, "kind", cl.Kind.String(), "err", err, "retry_next_run", awserr.Retryable(err))
	}
	return answer{}
}

// report blocks an ENI AWS refused to mirror and reports it.
func (w *Writer) report(o *Outcome, s mirror.Source, reason string, err error) {
	w.block(s.ENI, reason)
	o.Unsupported = append(o.Unsupported, mirror.Problem{ENI: s.ENI, LB: s.LB, Reason: reason})
	w.log.Warn("not mirrored", "eni", s.ENI, "instance", s.InstanceID, "type", s.InstanceType, "reason", reason, "err", err)
}

// delete removes one session of ours; a session already gone is done. A
// session that is not ours (by the tags read back) is never deleted.
func (w *Writer) delete(ctx context.Context, o *Outcome, d mirror.Delete) {
	s := d.Session
	if !w.cfg.Mirror.Owns(s) {
		o.Refused++
		err := fmt.Errorf("refusing to delete mirror session %s on %s: not ours (apitap:stack %q, target %s; ours are %q on %s)",
			s.ID, s.ENI, s.Owner(), s.TargetID, w.cfg.Mirror.StackName, w.cfg.Mirror.TargetID)
		o.fail(err)
		w.log.Error("refused to delete a foreign mirror session", "session", s.ID, "eni", s.ENI, "err", err)
		return
	}
	if err := w.limiter.wait(ctx); err != nil {
		o.fail(fmt.Errorf("deleting mirror session %s on %s: %w", s.ID, s.ENI, err))
		return
	}
	w.log.Info("deleting mirror session", "session", s.ID, "eni", s.ENI, "instance", s.Tags[contract.TagInstance], "reason", d.Reason)
	o.APICalls++
	_, err := w.ec2.DeleteTrafficMirrorSession(ctx, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(s.ID)})
	cl := w.classify(o, err, "delete")
	switch {
	case err == nil:
		o.Deleted++
		w.remember(s.ID)
		w.log.Info("deleted mirror session", "session", s.ID, "eni", s.ENI)
	case cl.Kind == awserr.NotFound:
		o.Deleted++
		w.remember(s.ID)
		w.log.Info("mirror session already gone", "session", s.ID, "eni", s.ENI)
	default:
		if !awserr.Retryable(err) {
			o.FailedDeletes++
		}
		o.fail(fmt.Errorf("deleting mirror session %s on %s: %w", s.ID, s.ENI, err))
	}
}

// remember notes a session this process deleted, for a day (longer than
// EC2 is known to keep client tokens).
func (w *Writer) remember(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	for k, t := range w.deleted {
		if now.Sub(t) > 24*time.Hour {
			delete(w.deleted, k)
		}
	}
	w.deleted[id] = now
}

func (w *Writer) wasDeleted(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.deleted[id]
	return ok
}

// generationKey names a source's token apart from its generation.
func generationKey(c mirror.Create) string {
	return fmt.Sprintf("%s|%d|%s", c.Source.ENI, c.Source.VNI, c.Source.Epoch)
}

func (w *Writer) generation(key string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.generations[key].n
}

// setGeneration remembers a source's generation, for a day (the epoch
// changes with the day anyway).
func (w *Writer) setGeneration(key string, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	for k, g := range w.generations {
		if now.Sub(g.at) > 24*time.Hour {
			delete(w.generations, k)
		}
	}
	w.generations[key] = generationState{n: n, at: now}
}

// block keeps an ENI from being retried for a while, doubling each time.
func (w *Writer) block(eni, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.blocked[eni]
	b.failures++
	wait := w.cfg.BackoffBase << min(b.failures-1, 16)
	if wait > w.cfg.BackoffMax || wait <= 0 {
		wait = w.cfg.BackoffMax
	}
	b.Until = w.clock.Now().Add(wait)
	b.Reason = reason
	w.blocked[eni] = b
}

func (w *Writer) unblock(eni string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.blocked, eni)
}

// Blocked are the ENIs not to be tried before their time, for the planner.
func (w *Writer) Blocked(now time.Time) map[string]mirror.Blocked {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]mirror.Blocked{}
	for eni, b := range w.blocked {
		if now.Before(b.Until) {
			out[eni] = b.Blocked
		}
	}
	return out
}

// createdID is the id in a create's answer, "" when there is none.
func createdID(out *ec2.CreateTrafficMirrorSessionOutput) string {
	if out == nil || out.TrafficMirrorSession == nil {
		return ""
	}
	return aws.ToString(out.TrafficMirrorSession.TrafficMirrorSessionId)
}

// createdTag is the apitap:created tag of a create's answer, "" when it
// has none.
func createdTag(out *ec2.CreateTrafficMirrorSessionOutput) string {
	if out == nil || out.TrafficMirrorSession == nil {
		return ""
	}
	for _, t := range out.TrafficMirrorSession.Tags {
		if aws.ToString(t.Key) == contract.TagCreated {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// Err joins an outcome's errors.
func (o *Outcome) Err() error { return errors.Join(o.Errors...) }
