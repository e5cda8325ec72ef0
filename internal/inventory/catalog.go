package inventory

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/apitap/apitap/internal/awserr"
)

// The catalog is what the operator commands show: every load balancer of
// the region, selected or not, with its targets as the load balancer sees
// them (all states, not only those that receive traffic).

// Load balancer types, as ELBv2 names them, and Classic.
const (
	TypeApplication = "application"
	TypeNetwork     = "network"
	TypeGateway     = "gateway"
	TypeClassic     = "classic"
)

// LBInfo is one load balancer of the region.
type LBInfo struct {
	ARN, Name, Type, Scheme, VPC string
	// Tags are read only when the stack selects by tag.
	Tags map[string]string
	// ByARN and ByTag say how the configuration selects it.
	ByARN, ByTag bool
	// Instances of a Classic load balancer.
	Instances []string
}

// Catalog lists every load balancer of the region, ELBv2 and Classic,
// sorted by name, then ARN.
func (r *Reader) Catalog(ctx context.Context) ([]LBInfo, error) {
	byARN := map[string]bool{}
	for _, arn := range r.cfg.LBARNs {
		byARN[arn] = true
	}
	var out []LBInfo
	all, tagged, err := r.listV2(ctx)
	if err != nil {
		return nil, err
	}
	for _, lb := range all {
		arn := aws.ToString(lb.LoadBalancerArn)
		out = append(out, LBInfo{ARN: arn, Name: aws.ToString(lb.LoadBalancerName), Type: string(lb.Type),
			Scheme: string(lb.Scheme), VPC: aws.ToString(lb.VpcId), ByARN: byARN[arn], ByTag: tagged[arn]})
	}
	classic, taggedC, err := r.listClassic(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range classic {
		out = append(out, LBInfo{ARN: c.ARN, Name: c.Name, Type: TypeClassic, Scheme: c.Scheme, VPC: c.VPC,
			ByARN: byARN[c.ARN], ByTag: taggedC[c.ARN], Instances: c.Instances})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ARN < out[j].ARN
	})
	return out, nil
}

// OwnLoadBalancer is the ARN of the stack's own NLB (its mirror target),
// "none" when the target is not a load balancer.
func (r *Reader) OwnLoadBalancer(ctx context.Context) (string, error) { return r.mirrorNLB(ctx) }

// TargetInfo is one registered target as its load balancer reports it.
type TargetInfo struct {
	Group  string // target group name ("" for a Classic load balancer)
	Type   string // instance, ip, lambda or alb
	ID     string // instance id, IP address, function or load balancer ARN
	Port   int32
	State  string // healthy, unhealthy, initial, draining, unused, unavailable; "registered" for Classic
	Reason string // the health reason code, when there is one
}

// Receives reports whether the target receives traffic (or is about to):
// what the orchestrator mirrors.
func (t TargetInfo) Receives() bool {
	return t.State == "registered" || mirroredStates[elbv2types.TargetHealthStateEnum(t.State)]
}

// LBTargets lists the targets of one load balancer in every state, its
// target groups in order.
func (r *Reader) LBTargets(ctx context.Context, lb LBInfo) ([]TargetInfo, error) {
	if lb.Type == TypeClassic {
		var out []TargetInfo
		for _, id := range lb.Instances {
			out = append(out, TargetInfo{Type: "instance", ID: id, State: "registered"})
		}
		return out, nil
	}
	var groups []elbv2types.TargetGroup
	p := elbv2.NewDescribeTargetGroupsPaginator(r.c.ELBv2, &elbv2.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lb.ARN), PageSize: aws.Int32(MaxELBPageSize)})
	for p.HasMorePages() {
		r.calls++
		page, err := p.NextPage(ctx)
		if awserr.Code(err) == "TargetGroupNotFound" {
			// A load balancer without target groups: an empty list, or
			// this error (moto answers so; AWS documents neither).
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describing target groups of %s: %w", lb.ARN, err)
		}
		groups = append(groups, page.TargetGroups...)
	}
	var out []TargetInfo
	for _, tg := range groups {
		r.calls++
		h, err := r.c.ELBv2.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: tg.TargetGroupArn})
		if err != nil {
			return nil, fmt.Errorf("describing target health of %s: %w", aws.ToString(tg.TargetGroupArn), err)
		}
		for _, d := range h.TargetHealthDescriptions {
			t := TargetInfo{Group: aws.ToString(tg.TargetGroupName), Type: string(tg.TargetType)}
			if d.Target != nil {
				t.ID = aws.ToString(d.Target.Id)
				t.Port = aws.ToInt32(d.Target.Port)
			}
			if d.TargetHealth != nil {
				t.State = string(d.TargetHealth.State)
				t.Reason = string(d.TargetHealth.Reason)
			}
			out = append(out, t)
		}
	}
	return out, nil
}
