package orchestrator

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/mirror"
)

// Tags apitap adds to its sessions beyond contracts.md §3: the instance
// (so a stop or terminate event finds its sessions with one filtered
// call) and the creation time (so a session is not deleted while a
// Describe has not caught up with the target it was created for).
const (
	tagInstance = "apitap:instance"
	tagCreated  = "apitap:created"
)

// sessionsWhere lists the sessions matching filters, paginated.
func (o *Orchestrator) sessionsWhere(ctx context.Context, r *run, what string, filters ...ec2types.Filter) ([]mirror.Session, error) {
	var out []mirror.Session
	p := ec2.NewDescribeTrafficMirrorSessionsPaginator(o.c.EC2, &ec2.DescribeTrafficMirrorSessionsInput{Filters: filters, MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		r.APICalls++
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

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: aws.String(name), Values: values}
}

// actual lists every session in the account: ours wherever they point,
// every session on the stack's target and every foreign session on the
// ENIs we want. The account holds at most 10,000 sessions, so this is at
// most ten calls, fewer than asking per ENI (200 filter values a call).
func (o *Orchestrator) actual(ctx context.Context, r *run) ([]mirror.Session, error) {
	return o.sessionsWhere(ctx, r, "in the account")
}

func (o *Orchestrator) addENISessions(ctx context.Context, r *run, enis []string, add func([]mirror.Session)) error {
	for _, chunk := range chunks(dedupe(enis), 200) {
		ss, err := o.sessionsWhere(ctx, r, "on source ENIs", filter("network-interface-id", chunk...))
		if err != nil {
			return err
		}
		add(ss)
	}
	return nil
}

// createdTimes reads the creation times our sessions carry.
func createdTimes(ss []mirror.Session) map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range ss {
		if t, err := time.Parse(time.RFC3339, s.Tags[tagCreated]); err == nil {
			out[s.ID] = t
		}
	}
	return out
}

func vniTag(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
