package inventory

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/mirror"
)

// AllSessions lists every session in the account: ours wherever they
// point, and every foreign session on the ENIs we want. The account holds
// at most 10,000 sessions, so this is at most ten calls, fewer than asking
// per ENI.
func (r *Reader) AllSessions(ctx context.Context) ([]mirror.Session, error) {
	return r.sessionsWhere(ctx, "in the account", nil)
}

// SessionsOn lists every session (ours and foreign) whose source is one of
// enis, with the documented network-interface-id filter; what comes back
// is kept only if its source is one of enis.
func (r *Reader) SessionsOn(ctx context.Context, enis []string) ([]mirror.Session, error) {
	want := set(enis)
	var out []mirror.Session
	seen := map[string]bool{}
	for _, fs := range filterBatches(nil, "network-interface-id", dedupe(enis)) {
		ss, err := r.sessionsWhere(ctx, "on source ENIs", fs)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if want[s.ENI] && !seen[s.ID] {
				seen[s.ID] = true
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// SessionsOnTarget lists every session on the stack's mirror target, ours
// and foreign, with the documented traffic-mirror-target-id filter; what
// comes back is kept only if it is on that target.
func (r *Reader) SessionsOnTarget(ctx context.Context) ([]mirror.Session, error) {
	ss, err := r.sessionsWhere(ctx, "on the stack's mirror target",
		[]ec2types.Filter{{Name: aws.String("traffic-mirror-target-id"), Values: []string{r.cfg.Mirror.TargetID}}})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ss, func(s mirror.Session) bool { return s.TargetID != r.cfg.Mirror.TargetID }), nil
}

// OurSessions lists the sessions of ours (mirror.Config.Owns) whose
// apitap:instance tag names one of instanceIDs (none asked, none listed).
// It asks for the sessions on the stack's mirror target (a documented
// filter); tag filters are added as an optimisation only, and dropped for
// good once the account refuses or ignores them. Ownership and the
// instance are decided here, on the tags read back.
func (r *Reader) OurSessions(ctx context.Context, instanceIDs []string) ([]mirror.Session, error) {
	if len(instanceIDs) == 0 {
		return nil, nil
	}
	onTarget := []ec2types.Filter{{Name: aws.String("traffic-mirror-target-id"), Values: []string{r.cfg.Mirror.TargetID}}}
	listed, ok, err := r.byTags(ctx, onTarget, instanceIDs)
	if err != nil {
		return nil, err
	}
	if !ok {
		if listed, err = r.sessionsWhere(ctx, "on the stack's mirror target", onTarget); err != nil {
			return nil, err
		}
	}
	want := set(instanceIDs)
	seen := map[string]bool{}
	var out []mirror.Session
	for _, s := range listed {
		if seen[s.ID] || !r.cfg.Mirror.Owns(s) || !want[s.Tags[contract.TagInstance]] {
			continue
		}
		seen[s.ID] = true
		out = append(out, s)
	}
	return out, nil
}

// byTags lists the sessions on the target with the stack's and the
// instances' tags as filters. ok is false when the account refuses tag
// filters (or refused them before): list without them. An account that
// ignores them answers with every session on the target, which is a
// complete listing too.
func (r *Reader) byTags(ctx context.Context, onTarget []ec2types.Filter, instanceIDs []string) (listed []mirror.Session, ok bool, err error) {
	if r.memo.tagFiltersRefused() {
		return nil, false, nil
	}
	tagged := append(slices.Clone(onTarget), ec2types.Filter{Name: aws.String("tag:" + contract.TagStack), Values: []string{r.cfg.Mirror.StackName}})
	for _, fs := range filterBatches(tagged, "tag:"+contract.TagInstance, dedupe(instanceIDs)) {
		ss, err := r.sessionsWhere(ctx, "of the stack", fs)
		if awserr.IsBadFilter(err) {
			r.log.Info("the account refuses tag filters on DescribeTrafficMirrorSessions: listing by mirror target only", "err", err)
			r.memo.refuseTagFilters()
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		if ignoredTagFilters(ss, fs) {
			// Every session on the target came back: the other batches
			// would only repeat it.
			r.log.Info("the account ignores tag filters on DescribeTrafficMirrorSessions: listing by mirror target only")
			r.memo.refuseTagFilters()
			return ss, true, nil
		}
		listed = append(listed, ss...)
	}
	return listed, true, nil
}

// ignoredTagFilters reports a listing holding a session that does not
// match the tag filters it was asked with.
func ignoredTagFilters(ss []mirror.Session, fs []ec2types.Filter) bool {
	for _, s := range ss {
		for _, f := range fs {
			key, ok := strings.CutPrefix(aws.ToString(f.Name), "tag:")
			if ok && !set(f.Values)[s.Tags[key]] {
				return true
			}
		}
	}
	return false
}

// sessionsWhere lists the sessions matching filters, paginated.
func (r *Reader) sessionsWhere(ctx context.Context, what string, filters []ec2types.Filter) ([]mirror.Session, error) {
	var out []mirror.Session
	p := ec2.NewDescribeTrafficMirrorSessionsPaginator(r.c.EC2, &ec2.DescribeTrafficMirrorSessionsInput{Filters: filters, MaxResults: aws.Int32(MaxResults)})
	for p.HasMorePages() {
		r.calls++
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing mirror sessions %s: %w", what, err)
		}
		for _, s := range page.TrafficMirrorSessions {
			out = append(out, toSession(s))
		}
	}
	return out, nil
}

func toSession(s ec2types.TrafficMirrorSession) mirror.Session {
	m := mirror.Session{
		ID:       aws.ToString(s.TrafficMirrorSessionId),
		ENI:      aws.ToString(s.NetworkInterfaceId),
		TargetID: aws.ToString(s.TrafficMirrorTargetId),
		FilterID: aws.ToString(s.TrafficMirrorFilterId),
		Number:   aws.ToInt32(s.SessionNumber),
		VNI:      uint32(aws.ToInt32(s.VirtualNetworkId)),
		Tags:     map[string]string{},
	}
	for _, t := range s.Tags {
		m.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// CreatedTimes reads the creation times our sessions carry (the
// apitap:created tag), for the planner's grace period.
func CreatedTimes(ss []mirror.Session) map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range ss {
		if t, err := time.Parse(time.RFC3339, s.Tags[contract.TagCreated]); err == nil {
			out[s.ID] = t
		}
	}
	return out
}

// filterBatches returns the filter lists that ask for every one of values
// under name beside the fixed filters, each within MaxFilterValues values
// in all (fixed filters' values count too). No values, no batch.
func filterBatches(fixed []ec2types.Filter, name string, values []string) [][]ec2types.Filter {
	room := MaxFilterValues
	for _, f := range fixed {
		room -= len(f.Values)
	}
	if room < 1 {
		panic("inventory: fixed filters leave no room for values") // a bug in the caller, not an input
	}
	var out [][]ec2types.Filter
	for _, chunk := range chunks(values, room) {
		fs := append(append([]ec2types.Filter{}, fixed...), ec2types.Filter{Name: aws.String(name), Values: chunk})
		out = append(out, fs)
	}
	return out
}

func set(ss []string) map[string]bool {
	m := make(map[string]bool, len(ss))
	for _, s := range ss {
		m[s] = true
	}
	return m
}
