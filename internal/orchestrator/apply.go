package orchestrator

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/mirror"
)

// planAndApply asks the planner what to do and does it: deletes of
// sessions no longer wanted first (they cost money and may free a slot),
// then creates, each replacement deleting its predecessor once created.
func (o *Orchestrator) planAndApply(ctx context.Context, r *run, desired []mirror.Source, actual []mirror.Session) {
	now := o.clock.Now()
	plan := mirror.Input{
		Config:  o.cfg.Mirror,
		Desired: desired,
		Actual:  actual,
		Blocked: o.blockedNow(now),
		Created: createdTimes(actual),
		Now:     now,
	}.Plan()
	r.Desired += len(desired)
	r.Actual += len(actual)
	r.Kept += plan.Kept
	r.Conflicts = append(r.Conflicts, plan.Conflicts...)
	r.Unsupported = append(r.Unsupported, plan.Unsupported...)
	r.Protected = append(r.Protected, plan.Protected...)
	for _, c := range plan.Conflicts {
		o.log.Warn("mirror conflict", "eni", c.ENI, "lb", c.LB, "reason", c.Reason, "sessions", c.Sessions)
	}
	for _, u := range plan.Unsupported {
		o.log.Warn("not mirrored", "eni", u.ENI, "lb", u.LB, "reason", u.Reason)
	}
	for _, d := range plan.Deletes {
		if !r.timeLeft() {
			r.Left++
			continue
		}
		o.delete(ctx, r, d)
	}
	for _, c := range plan.Creates {
		if !r.timeLeft() {
			r.Left++
			continue
		}
		if o.create(ctx, r, c) && c.Replaces != "" {
			old := mirror.Session{ID: c.Replaces, ENI: c.Source.ENI}
			o.delete(ctx, r, mirror.Delete{Session: old, Reason: "replaced by " + c.Source.LB})
		}
	}
}

// create makes one session; it reports success.
func (o *Orchestrator) create(ctx context.Context, r *run, c mirror.Create) bool {
	return o.createOnce(ctx, r, c, false)
}

func (o *Orchestrator) createOnce(ctx context.Context, r *run, c mirror.Create, retoken bool) bool {
	s := c.Source
	if err := o.limiter.wait(ctx); err != nil {
		r.fail(fmt.Errorf("creating mirror session for %s: %w", s.ENI, err))
		return false
	}
	created := o.clock.Now().UTC().Format(time.RFC3339)
	tags := []ec2types.Tag{
		{Key: aws.String(mirror.TagStack), Value: aws.String(o.cfg.Mirror.StackName)},
		{Key: aws.String(mirror.TagLB), Value: aws.String(s.LB)},
		{Key: aws.String(mirror.TagVNI), Value: aws.String(vniTag(s.VNI))},
		{Key: aws.String(tagCreated), Value: aws.String(created)},
	}
	if s.InstanceID != "" {
		tags = append(tags, ec2types.Tag{Key: aws.String(tagInstance), Value: aws.String(s.InstanceID)})
	}
	o.log.Info("creating mirror session", "eni", s.ENI, "instance", s.InstanceID, "lb", s.LB, "vni", s.VNI, "number", c.Number, "shadowed", c.Shadowed)
	r.APICalls++
	out, err := o.c.EC2.CreateTrafficMirrorSession(ctx, &ec2.CreateTrafficMirrorSessionInput{
		NetworkInterfaceId:    aws.String(s.ENI),
		TrafficMirrorTargetId: aws.String(o.cfg.Mirror.TargetID),
		TrafficMirrorFilterId: aws.String(o.cfg.Mirror.FilterID),
		SessionNumber:         aws.Int32(c.Number),
		VirtualNetworkId:      aws.Int32(int32(s.VNI)),
		ClientToken:           aws.String(c.Token),
		Description:           aws.String(fmt.Sprintf("apitap %s: %s", o.cfg.Mirror.StackName, s.LB)),
		TagSpecifications:     []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeTrafficMirrorSession, Tags: tags}},
	})
	// A replayed create answers with the session of the earlier create:
	// one this process deleted, or one created at another time (its
	// creation tag says when) that may be gone.
	replayedDeleted := err == nil && (o.wasDeleted(createdID(out)) || replayedEarlier(out, created))
	if !retoken && (replayedDeleted || awserr.IsIdempotentMismatch(err)) {
		// The token was used before for another create (tags differ), or
		// EC2 replayed an earlier create of a session deleted since:
		// nothing was created. Ask again with a token of its own; should
		// the session exist after all, its number is taken and the create
		// fails rather than making a second one.
		o.log.Info("client token already used: creating with a new token", "eni", s.ENI, "session", createdID(out), "err", err)
		c.Token = mirror.ClientToken(o.cfg.Mirror.StackName, s.ENI, o.cfg.Mirror.TargetID, o.cfg.Mirror.FilterID, c.Number, s.VNI,
			s.Epoch+"/"+o.clock.Now().UTC().Format(time.RFC3339Nano))
		return o.createOnce(ctx, r, c, true)
	}
	switch {
	case err == nil:
		r.Created++
		o.unblock(s.ENI)
		o.log.Info("created mirror session", "eni", s.ENI, "session", createdID(out), "lb", s.LB)
		return true
	case awserr.IsUnsupportedSource(err):
		reason := fmt.Sprintf("unsupported mirror source (instance type %q): %s", s.InstanceType, awserr.Code(err))
		o.block(s.ENI, reason)
		r.Unsupported = append(r.Unsupported, mirror.Problem{ENI: s.ENI, LB: s.LB, Reason: reason})
		o.log.Warn("not mirrored", "eni", s.ENI, "instance", s.InstanceID, "type", s.InstanceType, "reason", reason, "err", err)
	case awserr.IsLimitExceeded(err):
		reason := "session limit reached: " + awserr.Code(err)
		o.block(s.ENI, reason)
		r.Unsupported = append(r.Unsupported, mirror.Problem{ENI: s.ENI, LB: s.LB, Reason: reason})
		o.log.Warn("not mirrored", "eni", s.ENI, "reason", reason, "err", err)
	default:
		r.fail(fmt.Errorf("creating mirror session for %s: %w", s.ENI, err))
		o.log.Error("creating mirror session failed", "eni", s.ENI, "err", err, "retry_next_run", awserr.Retryable(err))
	}
	return false
}

// delete removes one of our sessions; a session already gone is done.
func (o *Orchestrator) delete(ctx context.Context, r *run, d mirror.Delete) {
	s := d.Session
	if s.Owner() != "" && s.Owner() != o.cfg.Mirror.StackName {
		// Never reached through Plan; a guard against future callers.
		r.fail(fmt.Errorf("refusing to delete foreign mirror session %s on %s (owner %q)", s.ID, s.ENI, s.Owner()))
		return
	}
	if err := o.limiter.wait(ctx); err != nil {
		r.fail(fmt.Errorf("deleting mirror session %s on %s: %w", s.ID, s.ENI, err))
		return
	}
	o.log.Info("deleting mirror session", "session", s.ID, "eni", s.ENI, "reason", d.Reason)
	r.APICalls++
	_, err := o.c.EC2.DeleteTrafficMirrorSession(ctx, &ec2.DeleteTrafficMirrorSessionInput{TrafficMirrorSessionId: aws.String(s.ID)})
	switch {
	case err == nil:
		r.Deleted++
		o.remember(s.ID)
		o.log.Info("deleted mirror session", "session", s.ID, "eni", s.ENI)
	case awserr.IsNotFound(err):
		r.Deleted++
		o.log.Info("mirror session already gone", "session", s.ID, "eni", s.ENI)
	default:
		r.fail(fmt.Errorf("deleting mirror session %s on %s: %w", s.ID, s.ENI, err))
	}
}

// remember notes a session this process deleted, for a day (longer than
// EC2 is known to keep client tokens).
func (o *Orchestrator) remember(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.clock.Now()
	for k, t := range o.deleted {
		if now.Sub(t) > 24*time.Hour {
			delete(o.deleted, k)
		}
	}
	o.deleted[id] = now
}

func (o *Orchestrator) wasDeleted(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.deleted[id]
	return ok
}

// block keeps an ENI from being retried for a while, doubling each time.
func (o *Orchestrator) block(eni, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.blocked[eni]
	b.failures++
	wait := o.cfg.BackoffBase << min(b.failures-1, 16)
	if wait > o.cfg.BackoffMax || wait <= 0 {
		wait = o.cfg.BackoffMax
	}
	b.Until = o.clock.Now().Add(wait)
	b.Reason = fmt.Sprintf("%s (retry after %s)", reason, b.Until.UTC().Format(time.RFC3339))
	o.blocked[eni] = b
}

func (o *Orchestrator) unblock(eni string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.blocked, eni)
}

func (o *Orchestrator) blockedNow(now time.Time) map[string]mirror.Blocked {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]mirror.Blocked{}
	for eni, b := range o.blocked {
		if now.Before(b.Until) {
			out[eni] = b.Blocked
		}
	}
	return out
}

// describeGroup returns the load balancers of a target group.
func (o *Orchestrator) describeGroup(ctx context.Context, r *run, tgARN string) (map[string]bool, error) {
	r.APICalls++
	out, err := o.c.ELBv2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{tgARN}})
	if err != nil {
		if awserr.IsNotFound(err) {
			return map[string]bool{}, nil
		}
		return nil, err
	}
	owners := map[string]bool{}
	for _, tg := range out.TargetGroups {
		for _, lb := range tg.LoadBalancerArns {
			owners[lb] = true
		}
	}
	return owners, nil
}

// logResult writes the operation's outcome.
func (o *Orchestrator) logResult(op string, r *run) {
	o.log.Info(op+" done", "desired", r.Desired, "actual", r.Actual, "kept", r.Kept, "created", r.Created,
		"deleted", r.Deleted, "conflicts", len(r.Conflicts), "unsupported", len(r.Unsupported), "left", r.Left,
		"errors", len(r.Errors), "api_calls", r.APICalls)
}

// createdID is the id in a create's answer, "" when there is none.
func createdID(out *ec2.CreateTrafficMirrorSessionOutput) string {
	if out == nil || out.TrafficMirrorSession == nil {
		return ""
	}
	return aws.ToString(out.TrafficMirrorSession.TrafficMirrorSessionId)
}

// replayedEarlier reports an answer whose session carries another creation
// time than the one just sent: EC2 replayed an earlier create.
func replayedEarlier(out *ec2.CreateTrafficMirrorSessionOutput, created string) bool {
	if out == nil || out.TrafficMirrorSession == nil {
		return false
	}
	for _, t := range out.TrafficMirrorSession.Tags {
		if aws.ToString(t.Key) == tagCreated {
			return aws.ToString(t.Value) != created
		}
	}
	return false
}
