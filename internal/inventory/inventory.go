// Package inventory reads what apitap needs to know from an AWS account:
// the selected load balancers, their targets, the network interfaces
// behind the targets, and the traffic mirror sessions. It only reads; what
// to do about it is decided by the planner (package mirror) and done by the
// writer (package sessionwriter).
//
// Every list is checked in code: a session list asked for one ENI or one
// mirror target keeps only what is on that ENI or target, whatever the
// server's filters did (AWS documents no tag filters for
// DescribeTrafficMirrorSessions; an account may apply, ignore or refuse
// them). Undocumented filters are only an optimisation, dropped for the
// rest of the container's life once refused. Every call stays within AWS's
// limits (limits.go).
package inventory

import (
	"context"
	"log/slog"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"

	"github.com/apitap/apitap/internal/mirror"
)

// EC2 is the part of the EC2 API the reader calls.
type EC2 interface {
	DescribeInstances(context.Context, *ec2.DescribeInstancesInput, ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error)
	DescribeTrafficMirrorSessions(context.Context, *ec2.DescribeTrafficMirrorSessionsInput, ...func(*ec2.Options)) (*ec2.DescribeTrafficMirrorSessionsOutput, error)
	DescribeTrafficMirrorTargets(context.Context, *ec2.DescribeTrafficMirrorTargetsInput, ...func(*ec2.Options)) (*ec2.DescribeTrafficMirrorTargetsOutput, error)
}

// ELBv2 is the part of the Elastic Load Balancing v2 API (ALB, NLB) used.
type ELBv2 interface {
	DescribeLoadBalancers(context.Context, *elbv2.DescribeLoadBalancersInput, ...func(*elbv2.Options)) (*elbv2.DescribeLoadBalancersOutput, error)
	DescribeTargetGroups(context.Context, *elbv2.DescribeTargetGroupsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetGroupsOutput, error)
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
	DescribeTags(context.Context, *elbv2.DescribeTagsInput, ...func(*elbv2.Options)) (*elbv2.DescribeTagsOutput, error)
}

// Classic is the part of the Classic Load Balancer API used.
type Classic interface {
	DescribeLoadBalancers(context.Context, *elb.DescribeLoadBalancersInput, ...func(*elb.Options)) (*elb.DescribeLoadBalancersOutput, error)
	DescribeTags(context.Context, *elb.DescribeTagsInput, ...func(*elb.Options)) (*elb.DescribeTagsOutput, error)
}

// AutoScaling is the part of the Auto Scaling API used: which target
// groups and Classic load balancers a group attaches its instances to.
type AutoScaling interface {
	DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
}

// Clients are the AWS clients, built once per Lambda container.
type Clients struct {
	EC2     EC2
	ELBv2   ELBv2
	Classic Classic
	// AutoScaling, when set, bounds the cost of an instance launch: the
	// instance's group names its target groups, so only those are asked.
	AutoScaling AutoScaling
}

// Config is what the reader needs of the stack's configuration: which
// stack, which mirror target, which load balancers.
type Config struct {
	// Mirror names the stack and its mirror target: the sessions it lists
	// as ours are those Mirror.Owns.
	Mirror mirror.Config
	// MirrorNLBARN is the stack's own NLB, the load balancer behind its
	// mirror target: never selected, whatever its tags. When empty it is
	// looked up from the mirror target once per Memo.
	MirrorNLBARN string
	// VPCID is the stack's VPC: load balancers elsewhere are not selectable.
	VPCID string
	// Region and AccountID build Classic load balancer ARNs (the Classic
	// API returns names only).
	Region, AccountID string
	// LBARNs selects load balancers by ARN; LBTags selects every load
	// balancer carrying one of these key=value tags.
	LBARNs []string
	LBTags map[string]string
}

// Memo is what readers learn that stays true for the life of a Lambda
// container. The zero value is ready; it is safe for concurrent use.
type Memo struct {
	mu sync.Mutex
	// noTagFilters is set once an account refused a tag filter on
	// DescribeTrafficMirrorSessions.
	noTagFilters bool
	// mirrorNLB is the NLB behind the mirror target, once looked up.
	mirrorNLB string
}

func (m *Memo) tagFiltersRefused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.noTagFilters
}

func (m *Memo) refuseTagFilters() {
	m.mu.Lock()
	m.noTagFilters = true
	m.mu.Unlock()
}

func (m *Memo) knownMirrorNLB() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mirrorNLB
}

func (m *Memo) setMirrorNLB(arn string) {
	m.mu.Lock()
	m.mirrorNLB = arn
	m.mu.Unlock()
}

// Reader reads for one operation (one Lambda invocation): it counts the
// calls it makes and collects the problems it finds (load balancers that
// cannot be selected, targets that cannot be mirrored). It is not safe for
// concurrent use; make one per operation with New.
type Reader struct {
	cfg      Config
	c        Clients
	memo     *Memo
	log      *slog.Logger
	calls    int
	problems []mirror.Problem
}

// New returns a Reader for one operation. memo may be shared between
// readers (and should be, within a container); nil means none; log nil
// means slog.Default().
func New(cfg Config, c Clients, memo *Memo, log *slog.Logger) *Reader {
	if memo == nil {
		memo = &Memo{}
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reader{cfg: cfg, c: c, memo: memo, log: log}
}

// Calls is the number of API requests made so far (pages counted).
func (r *Reader) Calls() int { return r.calls }

// Problems are the load balancers and targets found that cannot be
// mirrored, with why.
func (r *Reader) Problems() []mirror.Problem { return r.problems }

func (r *Reader) problem(p mirror.Problem) {
	r.problems = append(r.problems, p)
	r.log.Warn("cannot mirror", "lb", p.LB, "eni", p.ENI, "reason", p.Reason)
}
