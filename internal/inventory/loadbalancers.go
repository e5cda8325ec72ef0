package inventory

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/mirror"
)

// LoadBalancer is a selected load balancer.
type LoadBalancer struct {
	ARN     string
	Name    string
	Classic bool
	VNI     uint32
	// Instances of a Classic load balancer (the Classic API lists them
	// with the load balancer).
	Instances []string
}

// Target is one registered target, resolved later to an ENI.
type Target struct {
	LB         string // selected load balancer ARN (for an ALB behind an NLB: the NLB)
	InstanceID string
	IP         string
}

// Targets in these states receive traffic or are about to; draining and
// unused ones do not.
var mirroredStates = map[elbv2types.TargetHealthStateEnum]bool{
	elbv2types.TargetHealthStateEnumInitial:     true,
	elbv2types.TargetHealthStateEnumHealthy:     true,
	elbv2types.TargetHealthStateEnumUnhealthy:   true,
	elbv2types.TargetHealthStateEnumUnavailable: true,
}

// ClassicARN is the ARN of a Classic load balancer.
func ClassicARN(region, account, name string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/%s", region, account, name)
}

func (r *Reader) classicARN(name string) string {
	return ClassicARN(r.cfg.Region, r.cfg.AccountID, name)
}

// classicName is the name in a Classic ARN, "" for an ELBv2 ARN (whose
// resource part is loadbalancer/app/... or loadbalancer/net/...).
func classicName(arn string) string {
	_, rest, ok := strings.Cut(arn, ":loadbalancer/")
	if !ok || strings.Contains(rest, "/") {
		return ""
	}
	return rest
}

// Selection finds the selected load balancers in the stack's VPC and gives
// each its VNI. Load balancers that were asked for but cannot be selected
// are reported with why: in another VPC, not found, or the stack's own
// NLB (mirroring the mirror target's load balancer would mirror the
// mirror).
func (r *Reader) Selection(ctx context.Context) ([]LoadBalancer, error) {
	wantV2, wantClassic := map[string]bool{}, map[string]bool{}
	for _, arn := range r.cfg.LBARNs {
		if classicName(arn) != "" {
			wantClassic[arn] = true
		} else {
			wantV2[arn] = true
		}
	}
	var selected []LoadBalancer
	seen := map[string]bool{}
	if len(wantV2) > 0 || len(r.cfg.LBTags) > 0 {
		own, err := r.mirrorNLB(ctx)
		if err != nil {
			return nil, err
		}
		all, tagged, err := r.listV2(ctx)
		if err != nil {
			return nil, err
		}
		for _, lb := range all {
			arn := aws.ToString(lb.LoadBalancerArn)
			if !wantV2[arn] && !tagged[arn] {
				continue
			}
			seen[arn] = true
			switch vpc := aws.ToString(lb.VpcId); {
			case arn == own:
				r.problem(mirror.Problem{LB: arn, Reason: "the stack's own load balancer (its traffic mirror target): never mirrored"})
			case vpc != r.cfg.VPCID:
				r.problem(mirror.Problem{LB: arn, Reason: fmt.Sprintf("load balancer is in %s, not in the stack's VPC %s: not selectable", vpc, r.cfg.VPCID)})
			case lb.Type == elbv2types.LoadBalancerTypeEnumGateway:
				r.problem(mirror.Problem{LB: arn, Reason: "a gateway load balancer: its targets are appliances, not the application: not selectable"})
			default:
				selected = append(selected, LoadBalancer{ARN: arn, Name: aws.ToString(lb.LoadBalancerName)})
			}
		}
	}
	if len(wantClassic) > 0 || len(r.cfg.LBTags) > 0 {
		classic, tagged, err := r.listClassic(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range classic {
			if !wantClassic[c.ARN] && !tagged[c.ARN] {
				continue
			}
			seen[c.ARN] = true
			if c.VPC != r.cfg.VPCID {
				r.problem(mirror.Problem{LB: c.ARN, Reason: fmt.Sprintf("load balancer is in %q, not in the stack's VPC %s: not selectable", c.VPC, r.cfg.VPCID)})
				continue
			}
			selected = append(selected, c.LoadBalancer)
		}
	}
	for _, arn := range r.cfg.LBARNs {
		if !seen[arn] {
			r.problem(mirror.Problem{LB: arn, Reason: "load balancer not found in this account and region"})
		}
	}
	arns := make([]string, len(selected))
	for i, lb := range selected {
		arns[i] = lb.ARN
	}
	vnis := mirror.VNIs(arns)
	for i := range selected {
		selected[i].VNI = vnis[selected[i].ARN]
	}
	sort.Slice(selected, func(i, j int) bool { return selected[i].ARN < selected[j].ARN })
	return selected, nil
}

// listV2 lists every ELBv2 load balancer of the region, and which of them
// carry the selection tags.
func (r *Reader) listV2(ctx context.Context) ([]elbv2types.LoadBalancer, map[string]bool, error) {
	all, err := r.describeV2(ctx)
	if err != nil {
		return nil, nil, err
	}
	tagged, err := r.taggedV2(ctx, all)
	return all, tagged, err
}

// listClassic lists every Classic load balancer of the region, and which
// of them carry the selection tags.
func (r *Reader) listClassic(ctx context.Context) ([]classicLB, map[string]bool, error) {
	classic, err := r.describeClassic(ctx)
	if err != nil {
		return nil, nil, err
	}
	lbs := make([]LoadBalancer, len(classic))
	for i, c := range classic {
		lbs[i] = c.LoadBalancer
	}
	tagged, err := r.taggedClassic(ctx, lbs)
	return classic, tagged, err
}

// describeV2 lists every ELBv2 load balancer of the region.
func (r *Reader) describeV2(ctx context.Context) ([]elbv2types.LoadBalancer, error) {
	var all []elbv2types.LoadBalancer
	p := elbv2.NewDescribeLoadBalancersPaginator(r.c.ELBv2, &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(MaxELBPageSize)})
	for p.HasMorePages() {
		r.calls++
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing load balancers: %w", err)
		}
		all = append(all, out.LoadBalancers...)
	}
	return all, nil
}

// classicLB is a Classic load balancer with where it is.
type classicLB struct {
	LoadBalancer
	VPC, Scheme string
}

// describeClassic lists every Classic load balancer of the region.
func (r *Reader) describeClassic(ctx context.Context) ([]classicLB, error) {
	var all []classicLB
	p := elb.NewDescribeLoadBalancersPaginator(r.c.Classic, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(MaxELBPageSize)})
	for p.HasMorePages() {
		r.calls++
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing classic load balancers: %w", err)
		}
		for _, d := range out.LoadBalancerDescriptions {
			lb := classicLB{LoadBalancer: LoadBalancer{Name: aws.ToString(d.LoadBalancerName), Classic: true},
				VPC: aws.ToString(d.VPCId), Scheme: aws.ToString(d.Scheme)}
			lb.ARN = r.classicARN(lb.Name)
			for _, in := range d.Instances {
				lb.Instances = append(lb.Instances, aws.ToString(in.InstanceId))
			}
			all = append(all, lb)
		}
	}
	return all, nil
}

// mirrorNLB is the stack's own NLB: from the configuration, or else from
// the mirror target, looked up once per Memo.
func (r *Reader) mirrorNLB(ctx context.Context) (string, error) {
	if r.cfg.MirrorNLBARN != "" {
		return r.cfg.MirrorNLBARN, nil
	}
	known := r.memo.knownMirrorNLB()
	if known != "" {
		return known, nil
	}
	target := r.cfg.Mirror.TargetID
	r.calls++
	out, err := r.c.EC2.DescribeTrafficMirrorTargets(ctx, &ec2.DescribeTrafficMirrorTargetsInput{TrafficMirrorTargetIds: []string{target}})
	if err != nil {
		// Without it the stack's own NLB could be selected by its tags:
		// stop rather than risk mirroring the mirror.
		return "", fmt.Errorf("describing mirror target %s to find the stack's own load balancer: %w", target, err)
	}
	for _, t := range out.TrafficMirrorTargets {
		if aws.ToString(t.TrafficMirrorTargetId) == target {
			known = aws.ToString(t.NetworkLoadBalancerArn)
		}
	}
	if known == "" {
		known = "none" // a target that is not an NLB (an ENI or a GWLB endpoint)
	}
	r.memo.setMirrorNLB(known)
	return known, nil
}

func (r *Reader) matchesTags(tags map[string]string) bool {
	for k, v := range r.cfg.LBTags {
		if tags[k] == v {
			return true
		}
	}
	return false
}

func (r *Reader) taggedV2(ctx context.Context, all []elbv2types.LoadBalancer) (map[string]bool, error) {
	tagged := map[string]bool{}
	if len(r.cfg.LBTags) == 0 {
		return tagged, nil
	}
	var arns []string
	for _, lb := range all {
		arns = append(arns, aws.ToString(lb.LoadBalancerArn))
	}
	for _, chunk := range chunks(arns, MaxTagResources) {
		r.calls++
		out, err := r.c.ELBv2.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: chunk})
		if err != nil {
			return nil, fmt.Errorf("describing load balancer tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, t := range d.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tagged[aws.ToString(d.ResourceArn)] = r.matchesTags(tags)
		}
	}
	return tagged, nil
}

func (r *Reader) taggedClassic(ctx context.Context, all []LoadBalancer) (map[string]bool, error) {
	tagged := map[string]bool{}
	if len(r.cfg.LBTags) == 0 {
		return tagged, nil
	}
	var names []string
	for _, lb := range all {
		names = append(names, lb.Name)
	}
	for _, chunk := range chunks(names, MaxTagResources) {
		r.calls++
		out, err := r.c.Classic.DescribeTags(ctx, &elb.DescribeTagsInput{LoadBalancerNames: chunk})
		if err != nil {
			return nil, fmt.Errorf("describing classic load balancer tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, t := range d.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tagged[r.classicARN(aws.ToString(d.LoadBalancerName))] = r.matchesTags(tags)
		}
	}
	return tagged, nil
}

// Targets lists the registered targets of selected load balancers. When
// only is not empty, only those target ids are asked for (an event's
// targets), saving a full listing.
func (r *Reader) Targets(ctx context.Context, lbs []LoadBalancer, only []string) ([]Target, error) {
	var out []Target
	for _, lb := range lbs {
		if lb.Classic {
			for _, id := range lb.Instances {
				if len(only) == 0 || slices.Contains(only, id) {
					out = append(out, Target{LB: lb.ARN, InstanceID: id})
				}
			}
			continue
		}
		ts, err := r.v2Targets(ctx, lb.ARN, lb.ARN, only, map[string]bool{})
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

// v2Targets walks the target groups of lbARN; targets of type alb (an ALB
// behind an NLB) are followed into that ALB's own targets, mirrored for
// the selected load balancer sel.
func (r *Reader) v2Targets(ctx context.Context, sel, lbARN string, only []string, visited map[string]bool) ([]Target, error) {
	if visited[lbARN] {
		return nil, nil
	}
	visited[lbARN] = true
	var groups []elbv2types.TargetGroup
	p := elbv2.NewDescribeTargetGroupsPaginator(r.c.ELBv2, &elbv2.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lbARN), PageSize: aws.Int32(MaxELBPageSize)})
	for p.HasMorePages() {
		r.calls++
		page, err := p.NextPage(ctx)
		if awserr.Code(err) == "TargetGroupNotFound" {
			// A load balancer without target groups: an empty list, or
			// this error (moto answers so; AWS documents neither).
			break
		}
		if err != nil {
			return nil, fmt.Errorf("describing target groups of %s: %w", lbARN, err)
		}
		groups = append(groups, page.TargetGroups...)
	}
	var out []Target
	for _, tg := range groups {
		ts, err := r.groupTargets(ctx, sel, tg, only, visited)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (r *Reader) groupTargets(ctx context.Context, sel string, tg elbv2types.TargetGroup, only []string, visited map[string]bool) ([]Target, error) {
	tgARN := aws.ToString(tg.TargetGroupArn)
	in := &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)}
	if tg.TargetType == elbv2types.TargetTypeEnumLambda {
		r.problem(mirror.Problem{LB: sel, Reason: fmt.Sprintf("target group %s has lambda targets: not mirrorable", tgARN)})
		return nil, nil
	}
	if len(only) > 0 && tg.TargetType != elbv2types.TargetTypeEnumAlb {
		for _, id := range only {
			if askable(tg, id) {
				in.Targets = append(in.Targets, elbv2types.TargetDescription{Id: aws.String(id)})
			}
		}
		if len(in.Targets) == 0 {
			return nil, nil
		}
	}
	r.calls++
	health, err := r.c.ELBv2.DescribeTargetHealth(ctx, in)
	if len(in.Targets) > 0 && awserr.Code(err) == "InvalidTarget" {
		// An instance outside the group's VPC cannot be its target.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing targets of %s: %w", tgARN, err)
	}
	var out []Target
	for _, d := range health.TargetHealthDescriptions {
		if d.Target == nil || d.TargetHealth == nil || !mirroredStates[d.TargetHealth.State] ||
			d.TargetHealth.Reason == elbv2types.TargetHealthReasonEnumNotRegistered {
			// Asked for by id, a target that is not registered is answered
			// too (unused, or by some simulators unavailable), with the
			// reason Target.NotRegistered.
			continue
		}
		id := aws.ToString(d.Target.Id)
		switch tg.TargetType {
		case elbv2types.TargetTypeEnumIp:
			out = append(out, Target{LB: sel, IP: id})
		case elbv2types.TargetTypeEnumAlb:
			ts, err := r.v2Targets(ctx, sel, id, only, visited)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
		default:
			out = append(out, Target{LB: sel, InstanceID: id})
		}
	}
	return out, nil
}

// askable reports whether id is of the kind tg's targets are: an instance
// id in an ip group, an address in an instance group, or an IPv6 address
// in an IPv4 group (an ECS task's event names both of a dual-stack task's
// addresses) fails the whole DescribeTargetHealth call.
func askable(tg elbv2types.TargetGroup, id string) bool {
	ip := net.ParseIP(id)
	if tg.TargetType != elbv2types.TargetTypeEnumIp {
		return ip == nil
	}
	if ip == nil {
		return false
	}
	return (ip.To4() == nil) == (tg.IpAddressType == elbv2types.TargetGroupIpAddressTypeEnumIpv6)
}

// LaunchTargets finds, for an instance an Auto Scaling group launched, its
// targets among the selected load balancers: only the group's own target
// groups and Classic load balancers are asked, so a launch costs a few
// calls whatever the selection's size. inScope are the selected load
// balancers the group attaches to. found is false when the group is not
// there (gone, or never named): ask every selected load balancer instead.
func (r *Reader) LaunchTargets(ctx context.Context, lbs []LoadBalancer, group, id string) (ts []Target, inScope map[string]bool, found bool, err error) {
	r.calls++
	out, err := r.c.AutoScaling.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil {
		return nil, nil, false, fmt.Errorf("describing auto scaling group %s: %w", group, err)
	}
	if len(out.AutoScalingGroups) == 0 {
		return nil, nil, false, nil
	}
	selected := map[string]LoadBalancer{}
	for _, lb := range lbs {
		selected[lb.ARN] = lb
	}
	inScope = map[string]bool{}
	for _, g := range out.AutoScalingGroups {
		for _, name := range g.LoadBalancerNames {
			if lb, ok := selected[r.classicARN(name)]; ok && slices.Contains(lb.Instances, id) {
				ts = append(ts, Target{LB: lb.ARN, InstanceID: id})
				inScope[lb.ARN] = true
			}
		}
		for _, chunk := range chunks(g.TargetGroupARNs, MaxTargetGroupARNs) {
			r.calls++
			tgs, err := r.c.ELBv2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: chunk})
			if err != nil {
				return nil, nil, false, fmt.Errorf("describing target groups of auto scaling group %s: %w", group, err)
			}
			for _, tg := range tgs.TargetGroups {
				for _, lbARN := range tg.LoadBalancerArns {
					if _, ok := selected[lbARN]; !ok {
						continue
					}
					found, err := r.groupTargets(ctx, lbARN, tg, []string{id}, map[string]bool{})
					if err != nil {
						return nil, nil, false, err
					}
					ts = append(ts, found...)
					inScope[lbARN] = true
				}
			}
		}
	}
	return ts, inScope, true, nil
}

// GroupOwners returns the load balancers a target group belongs to; none
// when the group is gone.
func (r *Reader) GroupOwners(ctx context.Context, tgARN string) (map[string]bool, error) {
	r.calls++
	out, err := r.c.ELBv2.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{tgARN}})
	if err != nil {
		if awserr.IsNotFound(err) {
			return map[string]bool{}, nil
		}
		return nil, fmt.Errorf("describing target group %s: %w", tgARN, err)
	}
	owners := map[string]bool{}
	for _, tg := range out.TargetGroups {
		for _, lb := range tg.LoadBalancerArns {
			owners[lb] = true
		}
	}
	return owners, nil
}

// chunks splits ids into slices of at most n.
func chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

func dedupe(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}
