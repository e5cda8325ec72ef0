package orchestrator

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/mirror"
)

// tokenWindow is how long a create's ClientToken stays the same.
const tokenWindow = 10 * time.Minute

// loadBalancer is a selected load balancer.
type loadBalancer struct {
	ARN     string
	Name    string
	Classic bool
	VNI     uint32
	// Instances of a Classic load balancer (the Classic API lists them
	// with the load balancer).
	Instances []string
}

// target is one registered target, resolved later to an ENI.
type target struct {
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

// selection finds the selected load balancers in the stack's VPC and gives
// each its VNI. Load balancers that were asked for but cannot be selected
// are reported, with why.
func (o *Orchestrator) selection(ctx context.Context, r *run) ([]loadBalancer, error) {
	wantV2, wantClassic := map[string]bool{}, map[string]bool{}
	for _, arn := range o.cfg.LBARNs {
		if classicName(arn) != "" {
			wantClassic[arn] = true
		} else {
			wantV2[arn] = true
		}
	}
	var selected []loadBalancer
	seen := map[string]bool{}
	if len(wantV2) > 0 || len(o.cfg.LBTags) > 0 {
		var all []elbv2types.LoadBalancer
		p := elbv2.NewDescribeLoadBalancersPaginator(o.c.ELBv2, &elbv2.DescribeLoadBalancersInput{PageSize: aws.Int32(400)})
		for p.HasMorePages() {
			r.APICalls++
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing load balancers: %w", err)
			}
			all = append(all, out.LoadBalancers...)
		}
		tagged, err := o.taggedV2(ctx, r, all)
		if err != nil {
			return nil, err
		}
		for _, lb := range all {
			arn := aws.ToString(lb.LoadBalancerArn)
			if !wantV2[arn] && !tagged[arn] {
				continue
			}
			seen[arn] = true
			if vpc := aws.ToString(lb.VpcId); vpc != o.cfg.VPCID {
				r.problem(mirror.Problem{LB: arn, Reason: fmt.Sprintf("load balancer is in %s, not in the stack's VPC %s: not selectable", vpc, o.cfg.VPCID)})
				continue
			}
			selected = append(selected, loadBalancer{ARN: arn, Name: aws.ToString(lb.LoadBalancerName)})
		}
	}
	if len(wantClassic) > 0 || len(o.cfg.LBTags) > 0 {
		var all []loadBalancer
		vpcOf := map[string]string{}
		p := elb.NewDescribeLoadBalancersPaginator(o.c.Classic, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(400)})
		for p.HasMorePages() {
			r.APICalls++
			out, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing classic load balancers: %w", err)
			}
			for _, d := range out.LoadBalancerDescriptions {
				lb := loadBalancer{Name: aws.ToString(d.LoadBalancerName), Classic: true}
				lb.ARN = o.cfg.classicARN(lb.Name)
				for _, in := range d.Instances {
					lb.Instances = append(lb.Instances, aws.ToString(in.InstanceId))
				}
				vpcOf[lb.ARN] = aws.ToString(d.VPCId)
				all = append(all, lb)
			}
		}
		tagged, err := o.taggedClassic(ctx, r, all)
		if err != nil {
			return nil, err
		}
		for _, lb := range all {
			if !wantClassic[lb.ARN] && !tagged[lb.ARN] {
				continue
			}
			seen[lb.ARN] = true
			if vpc := vpcOf[lb.ARN]; vpc != o.cfg.VPCID {
				r.problem(mirror.Problem{LB: lb.ARN, Reason: fmt.Sprintf("load balancer is in %q, not in the stack's VPC %s: not selectable", vpc, o.cfg.VPCID)})
				continue
			}
			selected = append(selected, lb)
		}
	}
	for _, arn := range o.cfg.LBARNs {
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

func (o *Orchestrator) matchesTags(tags map[string]string) bool {
	for k, v := range o.cfg.LBTags {
		if tags[k] == v {
			return true
		}
	}
	return false
}

func (o *Orchestrator) taggedV2(ctx context.Context, r *run, all []elbv2types.LoadBalancer) (map[string]bool, error) {
	tagged := map[string]bool{}
	if len(o.cfg.LBTags) == 0 {
		return tagged, nil
	}
	var arns []string
	for _, lb := range all {
		arns = append(arns, aws.ToString(lb.LoadBalancerArn))
	}
	for _, chunk := range chunks(arns, 20) {
		r.APICalls++
		out, err := o.c.ELBv2.DescribeTags(ctx, &elbv2.DescribeTagsInput{ResourceArns: chunk})
		if err != nil {
			return nil, fmt.Errorf("describing load balancer tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, t := range d.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tagged[aws.ToString(d.ResourceArn)] = o.matchesTags(tags)
		}
	}
	return tagged, nil
}

func (o *Orchestrator) taggedClassic(ctx context.Context, r *run, all []loadBalancer) (map[string]bool, error) {
	tagged := map[string]bool{}
	if len(o.cfg.LBTags) == 0 {
		return tagged, nil
	}
	var names []string
	for _, lb := range all {
		names = append(names, lb.Name)
	}
	for _, chunk := range chunks(names, 20) {
		r.APICalls++
		out, err := o.c.Classic.DescribeTags(ctx, &elb.DescribeTagsInput{LoadBalancerNames: chunk})
		if err != nil {
			return nil, fmt.Errorf("describing classic load balancer tags: %w", err)
		}
		for _, d := range out.TagDescriptions {
			tags := map[string]string{}
			for _, t := range d.Tags {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			tagged[o.cfg.classicARN(aws.ToString(d.LoadBalancerName))] = o.matchesTags(tags)
		}
	}
	return tagged, nil
}

// targetsOf lists the registered targets of selected load balancers. When
// only is not empty, only those target ids are asked for (an event's
// targets), saving a full listing.
func (o *Orchestrator) targetsOf(ctx context.Context, r *run, lbs []loadBalancer, only []string) ([]target, error) {
	var out []target
	for _, lb := range lbs {
		if lb.Classic {
			for _, id := range lb.Instances {
				if len(only) == 0 || slices.Contains(only, id) {
					out = append(out, target{LB: lb.ARN, InstanceID: id})
				}
			}
			continue
		}
		ts, err := o.v2Targets(ctx, r, lb.ARN, lb.ARN, only, map[string]bool{})
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
func (o *Orchestrator) v2Targets(ctx context.Context, r *run, sel, lbARN string, only []string, visited map[string]bool) ([]target, error) {
	if visited[lbARN] {
		return nil, nil
	}
	visited[lbARN] = true
	var groups []elbv2types.TargetGroup
	p := elbv2.NewDescribeTargetGroupsPaginator(o.c.ELBv2, &elbv2.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(lbARN), PageSize: aws.Int32(400)})
	for p.HasMorePages() {
		r.APICalls++
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing target groups of %s: %w", lbARN, err)
		}
		groups = append(groups, page.TargetGroups...)
	}
	var out []target
	for _, tg := range groups {
		ts, err := o.groupTargets(ctx, r, sel, tg, only, visited)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

func (o *Orchestrator) groupTargets(ctx context.Context, r *run, sel string, tg elbv2types.TargetGroup, only []string, visited map[string]bool) ([]target, error) {
	tgARN := aws.ToString(tg.TargetGroupArn)
	in := &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tgARN)}
	if tg.TargetType == elbv2types.TargetTypeEnumLambda {
		r.problem(mirror.Problem{LB: sel, Reason: fmt.Sprintf("target group %s has lambda targets: not mirrorable", tgARN)})
		return nil, nil
	}
	if len(only) > 0 && tg.TargetType != elbv2types.TargetTypeEnumAlb {
		// Ask only for ids of this group's kind: an instance id in an ip
		// group (or the reverse) fails the whole call.
		for _, id := range only {
			if isIP := net.ParseIP(id) != nil; isIP == (tg.TargetType == elbv2types.TargetTypeEnumIp) {
				in.Targets = append(in.Targets, elbv2types.TargetDescription{Id: aws.String(id)})
			}
		}
		if len(in.Targets) == 0 {
			return nil, nil
		}
	}
	r.APICalls++
	health, err := o.c.ELBv2.DescribeTargetHealth(ctx, in)
	if len(in.Targets) > 0 && awserr.Code(err) == "InvalidTarget" {
		// An instance outside the group's VPC cannot be its target.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describing targets of %s: %w", tgARN, err)
	}
	var out []target
	for _, d := range health.TargetHealthDescriptions {
		if d.Target == nil || d.TargetHealth == nil || !mirroredStates[d.TargetHealth.State] {
			continue
		}
		id := aws.ToString(d.Target.Id)
		switch tg.TargetType {
		case elbv2types.TargetTypeEnumIp:
			out = append(out, target{LB: sel, IP: id})
		case elbv2types.TargetTypeEnumAlb:
			ts, err := o.v2Targets(ctx, r, sel, id, only, visited)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
		default:
			out = append(out, target{LB: sel, InstanceID: id})
		}
	}
	return out, nil
}

// instance is what the planner needs to know of an instance.
type instance struct {
	ID, Type, State, VPC, ENI string
	Group                     string // Auto Scaling group, from the aws:autoscaling:groupName tag
	Launch                    time.Time
}

// describeInstances looks instances up, up to 1000 ids a call. Ids that
// no longer exist are left out (an instance terminated long ago).
func (o *Orchestrator) describeInstances(ctx context.Context, r *run, ids []string) (map[string]instance, error) {
	out := map[string]instance{}
	for _, chunk := range chunks(dedupe(ids), 1000) {
		r.APICalls++
		page, err := o.c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: chunk})
		if awserr.IsNotFound(err) {
			// One unknown id fails the whole call: ask again with a
			// filter, which leaves unknown ids out (200 values a call).
			if err := o.describeInstancesByFilter(ctx, r, chunk, out); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describing %d instances: %w", len(chunk), err)
		}
		addInstances(out, page.Reservations)
	}
	return out, nil
}

func (o *Orchestrator) describeInstancesByFilter(ctx context.Context, r *run, ids []string, out map[string]instance) error {
	for _, chunk := range chunks(ids, 200) {
		p := ec2.NewDescribeInstancesPaginator(o.c.EC2, &ec2.DescribeInstancesInput{
			Filters:    []ec2types.Filter{{Name: aws.String("instance-id"), Values: chunk}},
			MaxResults: aws.Int32(1000),
		})
		for p.HasMorePages() {
			r.APICalls++
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describing %d instances: %w", len(chunk), err)
			}
			addInstances(out, page.Reservations)
		}
	}
	return nil
}

func addInstances(out map[string]instance, rs []ec2types.Reservation) {
	for _, res := range rs {
		for _, in := range res.Instances {
			i := instance{ID: aws.ToString(in.InstanceId), Type: string(in.InstanceType), VPC: aws.ToString(in.VpcId), Launch: aws.ToTime(in.LaunchTime)}
			if in.State != nil {
				i.State = string(in.State.Name)
			}
			for _, t := range in.Tags {
				if aws.ToString(t.Key) == "aws:autoscaling:groupName" {
					i.Group = aws.ToString(t.Value)
				}
			}
			for _, ni := range in.NetworkInterfaces {
				if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
					i.ENI = aws.ToString(ni.NetworkInterfaceId)
				}
			}
			out[i.ID] = i
		}
	}
}

// eni is what the planner needs to know of an ENI found by IP.
type eni struct {
	ID, Type, Instance string
	Attached           time.Time
}

// enisByIP finds the ENIs in the stack's VPC holding the given IPs.
func (o *Orchestrator) enisByIP(ctx context.Context, r *run, ips []string) (map[string]eni, error) {
	out := map[string]eni{}
	for _, chunk := range chunks(dedupe(ips), 200) {
		p := ec2.NewDescribeNetworkInterfacesPaginator(o.c.EC2, &ec2.DescribeNetworkInterfacesInput{
			Filters: []ec2types.Filter{
				{Name: aws.String("vpc-id"), Values: []string{o.cfg.VPCID}},
				{Name: aws.String("addresses.private-ip-address"), Values: chunk},
			},
			MaxResults: aws.Int32(1000),
		})
		for p.HasMorePages() {
			r.APICalls++
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing network interfaces of %d IPs: %w", len(chunk), err)
			}
			for _, ni := range page.NetworkInterfaces {
				e := eni{ID: aws.ToString(ni.NetworkInterfaceId), Type: string(ni.InterfaceType)}
				if ni.Attachment != nil {
					e.Instance = aws.ToString(ni.Attachment.InstanceId)
					e.Attached = aws.ToTime(ni.Attachment.AttachTime)
				}
				for _, a := range ni.PrivateIpAddresses {
					out[aws.ToString(a.PrivateIpAddress)] = e
				}
			}
		}
	}
	return out, nil
}

// sources resolves targets to ENIs: an instance's primary ENI, or the ENI
// holding an ip target's address. One ENI targeted by several selected
// load balancers is mirrored once, for the first in sorted-ARN order.
func (o *Orchestrator) sources(ctx context.Context, r *run, lbs []loadBalancer, ts []target) ([]mirror.Source, error) {
	vni := map[string]uint32{}
	for _, lb := range lbs {
		vni[lb.ARN] = lb.VNI
	}
	var ids, ips []string
	for _, t := range ts {
		if t.InstanceID != "" {
			ids = append(ids, t.InstanceID)
		} else {
			ips = append(ips, t.IP)
		}
	}
	insts, err := o.describeInstances(ctx, r, ids)
	if err != nil {
		return nil, err
	}
	enis, err := o.enisByIP(ctx, r, ips)
	if err != nil {
		return nil, err
	}
	byENI := map[string]*mirror.Source{}
	var order []string
	add := func(s mirror.Source) {
		if prev, ok := byENI[s.ENI]; ok {
			if prev.LB == s.LB || slices.Contains(prev.AlsoLBs, s.LB) {
				return
			}
			if s.LB < prev.LB {
				s.AlsoLBs = append(append(prev.AlsoLBs, prev.LB), s.AlsoLBs...)
				*prev = s
			} else {
				prev.AlsoLBs = append(prev.AlsoLBs, s.LB)
			}
			return
		}
		byENI[s.ENI] = &s
		order = append(order, s.ENI)
	}
	for _, t := range ts {
		if t.InstanceID != "" {
			in, ok := insts[t.InstanceID]
			switch {
			case !ok:
				continue // gone: nothing to mirror
			case in.VPC != o.cfg.VPCID:
				r.problem(mirror.Problem{LB: t.LB, Reason: fmt.Sprintf("instance %s is in %s, not in the stack's VPC", in.ID, in.VPC)})
				continue
			case in.State != "running" && in.State != "pending":
				continue // stopped or terminating: not mirrored
			case in.ENI == "":
				continue
			}
			add(mirror.Source{ENI: in.ENI, LB: t.LB, VNI: vni[t.LB], InstanceID: in.ID, InstanceType: in.Type,
				Epoch: in.Launch.UTC().Format(time.RFC3339)})
			continue
		}
		e, ok := enis[t.IP]
		if !ok {
			r.problem(mirror.Problem{LB: t.LB, Reason: fmt.Sprintf("no network interface in the stack's VPC holds target IP %s", t.IP)})
			continue
		}
		if e.Type != "" && e.Type != "interface" {
			r.problem(mirror.Problem{ENI: e.ID, LB: t.LB, Reason: fmt.Sprintf("network interface type %q cannot be a mirror source", e.Type)})
			continue
		}
		add(mirror.Source{ENI: e.ID, LB: t.LB, VNI: vni[t.LB], InstanceID: e.Instance, Epoch: e.Attached.UTC().Format(time.RFC3339)})
	}
	// The ClientToken makes a create safe to repeat: SDK retries and
	// handlers racing for the same ENI within minutes. Beyond that a new
	// token is wanted: EC2 answers a known token with the original session
	// even after it was deleted (an ENI deselected and selected again).
	bucket := o.clock.Now().UTC().Truncate(tokenWindow).Format(time.RFC3339)
	out := make([]mirror.Source, 0, len(order))
	for _, id := range order {
		s := *byENI[id]
		s.Epoch += "@" + bucket
		if len(s.AlsoLBs) > 0 {
			r.note("eni targeted by several selected load balancers: mirrored once, for the first in ARN order", "eni", s.ENI, "lb", s.LB, "also", s.AlsoLBs)
		}
		out = append(out, s)
	}
	return out, nil
}

func dedupe(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}
