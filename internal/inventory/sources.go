package inventory

import (
	"context"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/apitap/apitap/internal/awserr"
	"github.com/apitap/apitap/internal/mirror"
)

// tokenDay is the UTC date in Source.Epoch: the ClientToken of a session
// changes once a day, which bounds how many generations of a token a
// create may have to walk (sessionwriter; docs/contracts.md §3, "ClientToken").
const tokenDay = "2006-01-02"

// Instance is what the planner needs to know of an instance.
type Instance struct {
	ID, Type, State, VPC string
	ENI                  string   // the primary network interface (device index 0)
	ENIs                 []string // every attached network interface
	Group                string   // Auto Scaling group, from the aws:autoscaling:groupName tag
	Launch               time.Time
}

// Running reports whether the instance is running or about to.
func (in Instance) Running() bool { return in.State == "running" || in.State == "pending" }

// ENI is what the planner needs to know of a network interface found by IP.
type ENI struct {
	ID, Type, Instance string
	Attached           time.Time
}

// Instances looks instances up, MaxInstanceIDs a call. Ids that no longer
// exist are left out (an instance terminated long ago).
func (r *Reader) Instances(ctx context.Context, ids []string) (map[string]Instance, error) {
	out := map[string]Instance{}
	for _, chunk := range chunks(dedupe(ids), MaxInstanceIDs) {
		r.calls++
		page, err := r.c.EC2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: chunk})
		if awserr.IsNotFound(err) {
			// One unknown id fails the whole call: ask again with a
			// filter, which leaves unknown ids out.
			if err := r.instancesByFilter(ctx, chunk, out); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("describing %d instances: %w", len(chunk), err)
		}
		addInstances(out, page.Reservations)
	}
	// Only the instances asked for, whatever a filter did.
	want := set(ids)
	for id := range out {
		if !want[id] {
			delete(out, id)
		}
	}
	return out, nil
}

func (r *Reader) instancesByFilter(ctx context.Context, ids []string, out map[string]Instance) error {
	for _, fs := range filterBatches(nil, "instance-id", ids) {
		p := ec2.NewDescribeInstancesPaginator(r.c.EC2, &ec2.DescribeInstancesInput{Filters: fs, MaxResults: aws.Int32(MaxResults)})
		for p.HasMorePages() {
			r.calls++
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("describing %d instances: %w", len(fs[0].Values), err)
			}
			addInstances(out, page.Reservations)
		}
	}
	return nil
}

func addInstances(out map[string]Instance, rs []ec2types.Reservation) {
	for _, res := range rs {
		for _, in := range res.Instances {
			i := Instance{ID: aws.ToString(in.InstanceId), Type: string(in.InstanceType), VPC: aws.ToString(in.VpcId), Launch: aws.ToTime(in.LaunchTime)}
			if in.State != nil {
				i.State = string(in.State.Name)
			}
			for _, t := range in.Tags {
				if aws.ToString(t.Key) == "aws:autoscaling:groupName" {
					i.Group = aws.ToString(t.Value)
				}
			}
			for _, ni := range in.NetworkInterfaces {
				id := aws.ToString(ni.NetworkInterfaceId)
				i.ENIs = append(i.ENIs, id)
				if ni.Attachment != nil && aws.ToInt32(ni.Attachment.DeviceIndex) == 0 {
					i.ENI = id
				}
			}
			out[i.ID] = i
		}
	}
}

// ENIsByIP finds the ENIs in the stack's VPC holding the given IPs.
func (r *Reader) ENIsByIP(ctx context.Context, ips []string) (map[string]ENI, error) {
	out := map[string]ENI{}
	wanted := map[string]bool{}
	for _, ip := range ips {
		wanted[ip] = true
	}
	vpc := []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{r.cfg.VPCID}}}
	for _, fs := range filterBatches(vpc, "addresses.private-ip-address", dedupe(ips)) {
		p := ec2.NewDescribeNetworkInterfacesPaginator(r.c.EC2, &ec2.DescribeNetworkInterfacesInput{Filters: fs, MaxResults: aws.Int32(MaxResults)})
		for p.HasMorePages() {
			r.calls++
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describing network interfaces of %d IPs: %w", len(fs[len(fs)-1].Values), err)
			}
			for _, ni := range page.NetworkInterfaces {
				if aws.ToString(ni.VpcId) != "" && aws.ToString(ni.VpcId) != r.cfg.VPCID {
					continue // a filter the server did not apply
				}
				e := ENI{ID: aws.ToString(ni.NetworkInterfaceId), Type: string(ni.InterfaceType)}
				if ni.Attachment != nil {
					e.Instance = aws.ToString(ni.Attachment.InstanceId)
					e.Attached = aws.ToTime(ni.Attachment.AttachTime)
				}
				for _, a := range ni.PrivateIpAddresses {
					// Only the addresses asked for, whatever the filter did.
					if ip := aws.ToString(a.PrivateIpAddress); wanted[ip] {
						out[ip] = e
					}
				}
			}
		}
	}
	return out, nil
}

// SplitTargets separates instance ids from ip targets, whose ENIs it looks
// up: a deregistered ip target is no longer listed anywhere.
func (r *Reader) SplitTargets(ctx context.Context, targetIDs []string) (instanceIDs, enis []string, err error) {
	var ips []string
	for _, id := range targetIDs {
		if net.ParseIP(id) != nil {
			ips = append(ips, id)
		} else {
			instanceIDs = append(instanceIDs, id)
		}
	}
	if len(ips) > 0 {
		byIP, err := r.ENIsByIP(ctx, ips)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range byIP {
			enis = append(enis, e.ID)
		}
	}
	return instanceIDs, dedupe(enis), nil
}

// Sources resolves targets to the ENIs to mirror: an instance's primary
// ENI, or the ENI holding an ip target's address. One ENI targeted by
// several selected load balancers is mirrored once, for the first in
// sorted-ARN order. now fixes the ClientToken's day.
func (r *Reader) Sources(ctx context.Context, lbs []LoadBalancer, ts []Target, now time.Time) ([]mirror.Source, error) {
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
	insts, err := r.Instances(ctx, ids)
	if err != nil {
		return nil, err
	}
	enis, err := r.ENIsByIP(ctx, ips)
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
			case in.VPC != r.cfg.VPCID:
				r.problem(mirror.Problem{LB: t.LB, Reason: fmt.Sprintf("instance %s is in %s, not in the stack's VPC", in.ID, in.VPC)})
				continue
			case !in.Running():
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
	// handlers racing for the same ENI. EC2 answers a known token with the
	// original session even after it was deleted (an ENI deselected and
	// selected again): the writer then moves to the token's next
	// generation; the day bounds how many there can be.
	bucket := now.UTC().Format(tokenDay)
	out := make([]mirror.Source, 0, len(order))
	for _, id := range order {
		s := *byENI[id]
		s.Epoch += "@" + bucket
		if len(s.AlsoLBs) > 0 {
			r.log.Info("eni targeted by several selected load balancers: mirrored once, for the first in ARN order", "eni", s.ENI, "lb", s.LB, "also", s.AlsoLBs)
		}
		out = append(out, s)
	}
	return out, nil
}
