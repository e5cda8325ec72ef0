package awssim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

func healthOf(t *testing.T, f *fixture, tg string, targets ...elbv2types.TargetDescription) map[string]elbv2types.TargetHealth {
	t.Helper()
	out, err := f.elbv2.DescribeTargetHealth(ctx(t), &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg), Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]elbv2types.TargetHealth{}
	for _, d := range out.TargetHealthDescriptions {
		m[aws.ToString(d.Target.Id)] = *d.TargetHealth
	}
	return m
}

func TestTargetHealth(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, Options{Clock: clock, HealthyAfter: 30 * time.Second, DrainDelay: 5 * time.Minute})
	c := ctx(t)
	alb, err := f.acct.AddLoadBalancer("application", f.vpc, "web", map[string]string{"team": "api"})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := f.acct.AddTargetGroup(alb, "instance")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.instance(t, "m5.large")
	b, _ := f.instance(t, "m5.large")
	if err := f.acct.Register(tg, a); err != nil {
		t.Fatal(err)
	}
	// Over HTTP as well.
	if _, err := f.elbv2.RegisterTargets(c, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(tg), Targets: []elbv2types.TargetDescription{{Id: aws.String(b)}},
	}); err != nil {
		t.Fatal(err)
	}
	h := healthOf(t, f, tg)
	if h[a].State != elbv2types.TargetHealthStateEnumInitial || string(h[a].Reason) != "Elb.RegistrationInProgress" || len(h) != 2 {
		t.Fatalf("at registration: %+v", h)
	}
	clock.Advance(30 * time.Second)
	if h = healthOf(t, f, tg); h[a].State != "healthy" || h[b].State != "healthy" {
		t.Fatalf("after the health delay: %+v", h)
	}

	// A stopped instance is unused; started again it goes through initial.
	if err := f.acct.StopInstance(a); err != nil {
		t.Fatal(err)
	}
	if h = healthOf(t, f, tg); h[a].State != "unused" || string(h[a].Reason) != "Target.InvalidState" {
		t.Fatalf("stopped: %+v", h[a])
	}
	clock.Advance(time.Minute)
	if err := f.acct.StartInstance(a); err != nil {
		t.Fatal(err)
	}
	if h = healthOf(t, f, tg); h[a].State != "initial" {
		t.Fatalf("restarted: %+v", h[a])
	}
	clock.Advance(30 * time.Second)

	// Forced health, then deregistration drains before the target goes.
	if err := f.acct.SetTargetHealth(tg, b, HealthUnhealthy); err != nil {
		t.Fatal(err)
	}
	if h = healthOf(t, f, tg); h[a].State != "healthy" || h[b].State != "unhealthy" {
		t.Fatalf("forced: %+v", h)
	}
	if _, err := f.elbv2.DeregisterTargets(c, &elbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(tg), Targets: []elbv2types.TargetDescription{{Id: aws.String(b)}},
	}); err != nil {
		t.Fatal(err)
	}
	if h = healthOf(t, f, tg); h[b].State != "draining" {
		t.Fatalf("deregistered: %+v", h[b])
	}
	clock.Advance(5 * time.Minute)
	if h = healthOf(t, f, tg); len(h) != 1 {
		t.Fatalf("after draining: %+v", h)
	}

	// Asking for a target that is not registered answers unused.
	h = healthOf(t, f, tg, elbv2types.TargetDescription{Id: aws.String(b), Port: aws.Int32(80)})
	if h[b].State != "unused" || string(h[b].Reason) != "Target.NotRegistered" {
		t.Fatalf("unregistered target: %+v", h)
	}

	// A terminated instance is deregistered (it drains, then it is gone).
	if err := f.acct.TerminateInstance(a); err != nil {
		t.Fatal(err)
	}
	if h = healthOf(t, f, tg); h[a].State != "draining" {
		t.Fatalf("terminated: %+v", h)
	}
	clock.Advance(5 * time.Minute)
	if h = healthOf(t, f, tg); len(h) != 0 {
		t.Fatalf("after termination: %+v", h)
	}

	// Errors are the modelled ELBv2 exceptions, and smithy API errors.
	_, err = f.elbv2.RegisterTargets(c, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(tg), Targets: []elbv2types.TargetDescription{{Id: aws.String("i-00000000000000bad")}},
	})
	var invalid *elbv2types.InvalidTargetException
	if !errors.As(err, &invalid) {
		t.Fatalf("register unknown instance: %v", err)
	}
	wantCode(t, err, "InvalidTarget")
	_, err = f.elbv2.DescribeTargetHealth(c, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(tg + "x")})
	var notFound *elbv2types.TargetGroupNotFoundException
	if !errors.As(err, &notFound) {
		t.Fatalf("unknown target group: %v", err)
	}
	wantCode(t, err, CodeTargetGroupNotFound)
}

func TestTargetTypes(t *testing.T) {
	f := newFixture(t, Options{})
	nlb2, err := f.acct.AddLoadBalancer("network", f.vpc, "front", nil)
	if err != nil {
		t.Fatal(err)
	}
	alb, err := f.acct.AddLoadBalancer("application", f.vpc, "inner", nil)
	if err != nil {
		t.Fatal(err)
	}
	ipTG, _ := f.acct.AddTargetGroup(nlb2, "ip")
	albTG, _ := f.acct.AddTargetGroup(nlb2, "alb")
	lambdaTG, _ := f.acct.AddTargetGroup(alb, "lambda")
	_, ip, err := f.acct.AddENI(f.vpc)
	if err != nil {
		t.Fatal(err)
	}
	fn := "arn:aws:lambda:us-east-1:123456789012:function:api"
	for tg, id := range map[string]string{ipTG: ip, albTG: alb, lambdaTG: fn} {
		if err := f.acct.Register(tg, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.acct.Register(albTG, nlb2); err == nil {
		t.Fatal("an NLB registered as an alb target")
	}
	if h := healthOf(t, f, ipTG); h[ip].State != "healthy" {
		t.Fatalf("ip target: %+v", h)
	}
	if h := healthOf(t, f, albTG); h[alb].State != "healthy" {
		t.Fatalf("alb target: %+v", h)
	}
	if h := healthOf(t, f, lambdaTG); h[fn].State != "unavailable" {
		t.Fatalf("lambda target: %+v", h)
	}
	// A target group that no load balancer uses reports unused.
	if err := f.acct.DetachTargetGroup(ipTG, nlb2); err != nil {
		t.Fatal(err)
	}
	if h := healthOf(t, f, ipTG); h[ip].State != "unused" || string(h[ip].Reason) != "Target.NotInUse" {
		t.Fatalf("detached group: %+v", h)
	}

	out, err := f.elbv2.DescribeTargetGroups(ctx(t), &elbv2.DescribeTargetGroupsInput{LoadBalancerArn: aws.String(nlb2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TargetGroups) != 1 || aws.ToString(out.TargetGroups[0].TargetGroupArn) != albTG ||
		out.TargetGroups[0].TargetType != elbv2types.TargetTypeEnumAlb || aws.ToString(out.TargetGroups[0].VpcId) != f.vpc {
		t.Fatalf("target groups of %s: %+v", nlb2, out.TargetGroups)
	}
}

func TestELBv2PaginationAndTags(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	lbs := []string{f.nlb}
	for i := range 449 {
		arn, err := f.acct.AddLoadBalancer("application", f.vpc, fmt.Sprintf("lb-%03d", i), map[string]string{"n": fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		lbs = append(lbs, arn)
	}
	var tgs []string
	for i := range 900 {
		arn, err := f.acct.AddTargetGroup(lbs[1+i%10], "instance")
		if err != nil {
			t.Fatal(err)
		}
		tgs = append(tgs, arn)
	}
	f.acct.ResetCalls()

	var got []string
	lp := elbv2.NewDescribeLoadBalancersPaginator(f.elbv2, &elbv2.DescribeLoadBalancersInput{})
	for lp.HasMorePages() {
		out, err := lp.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, lb := range out.LoadBalancers {
			got = append(got, aws.ToString(lb.LoadBalancerArn))
		}
	}
	exactlyOnce(t, "load balancers", got, lbs)

	got = nil
	tp := elbv2.NewDescribeTargetGroupsPaginator(f.elbv2, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(250)})
	for tp.HasMorePages() {
		out, err := tp.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, tg := range out.TargetGroups {
			got = append(got, aws.ToString(tg.TargetGroupArn))
		}
	}
	exactlyOnce(t, "target groups", got, tgs)
	if n := f.acct.Calls().Get("elbv2", "DescribeLoadBalancers"); n != 2 {
		t.Fatalf("%d load balancer pages, want 2 (400 a page)", n)
	}
	if n := f.acct.Calls().Get("elbv2", "DescribeTargetGroups"); n != 4 {
		t.Fatalf("%d target group pages, want 4", n)
	}
	_, err := f.elbv2.DescribeTargetGroups(c, &elbv2.DescribeTargetGroupsInput{PageSize: aws.Int32(401)})
	wantCode(t, err, CodeValidationError)

	// By name and ARN.
	out, err := f.elbv2.DescribeLoadBalancers(c, &elbv2.DescribeLoadBalancersInput{Names: []string{"lb-007"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.LoadBalancers) != 1 || aws.ToString(out.LoadBalancers[0].LoadBalancerArn) != lbs[8] ||
		out.LoadBalancers[0].Type != elbv2types.LoadBalancerTypeEnumApplication || aws.ToString(out.LoadBalancers[0].VpcId) != f.vpc {
		t.Fatalf("by name: %+v", out.LoadBalancers)
	}
	_, err = f.elbv2.DescribeLoadBalancers(c, &elbv2.DescribeLoadBalancersInput{LoadBalancerArns: []string{lbs[1] + "x"}})
	var lbNotFound *elbv2types.LoadBalancerNotFoundException
	if !errors.As(err, &lbNotFound) {
		t.Fatalf("unknown ARN: %v", err)
	}
	wantCode(t, err, "LoadBalancerNotFound")

	// Tags: up to 20 ARNs.
	tags, err := f.elbv2.DescribeTags(c, &elbv2.DescribeTagsInput{ResourceArns: lbs[1:21]})
	if err != nil {
		t.Fatal(err)
	}
	if len(tags.TagDescriptions) != 20 || aws.ToString(tags.TagDescriptions[3].Tags[0].Value) != "3" {
		t.Fatalf("tags: %+v", tags.TagDescriptions[3])
	}
	_, err = f.elbv2.DescribeTags(c, &elbv2.DescribeTagsInput{ResourceArns: lbs[1:22]})
	wantCode(t, err, CodeValidationError)
}

func TestClassicELB(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	a, _ := f.instance(t, "m5.large")
	b, _ := f.instance(t, "m5.large")
	if err := f.acct.AddClassicLB("legacy", f.vpc, []string{a, b}, map[string]string{"env": "prod"}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := f.acct.AddClassicLB(fmt.Sprint("other-", i), f.vpc, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := f.elb.DescribeLoadBalancers(c, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"legacy"}})
	if err != nil {
		t.Fatal(err)
	}
	d := out.LoadBalancerDescriptions
	if len(d) != 1 || aws.ToString(d[0].VPCId) != f.vpc || len(d[0].Instances) != 2 || aws.ToString(d[0].Instances[1].InstanceId) != b {
		t.Fatalf("classic: %+v", d)
	}
	var names []string
	p := elb.NewDescribeLoadBalancersPaginator(f.elb, &elb.DescribeLoadBalancersInput{PageSize: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range out.LoadBalancerDescriptions {
			names = append(names, aws.ToString(d.LoadBalancerName))
		}
	}
	if want := []string{"legacy", "other-0", "other-1", "other-2", "other-3", "other-4"}; !slices.Equal(names, want) {
		t.Fatalf("paginated names %v", names)
	}
	tags, err := f.elb.DescribeTags(c, &elb.DescribeTagsInput{LoadBalancerNames: []string{"legacy"}})
	if err != nil {
		t.Fatal(err)
	}
	if td := tags.TagDescriptions; len(td) != 1 || aws.ToString(td[0].Tags[0].Key) != "env" || aws.ToString(td[0].Tags[0].Value) != "prod" {
		t.Fatalf("classic tags: %+v", td)
	}
	_, err = f.elb.DescribeLoadBalancers(c, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"nope"}})
	var nf *elbtypes.AccessPointNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("unknown classic: %v", err)
	}
	wantCode(t, err, "LoadBalancerNotFound")

	// Terminating an instance takes it out of the load balancer.
	if err := f.acct.TerminateInstance(a); err != nil {
		t.Fatal(err)
	}
	out, err = f.elb.DescribeLoadBalancers(c, &elb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"legacy"}})
	if err != nil {
		t.Fatal(err)
	}
	if in := out.LoadBalancerDescriptions[0].Instances; len(in) != 1 || aws.ToString(in[0].InstanceId) != b {
		t.Fatalf("after termination: %+v", in)
	}
	reg, err := f.elb.RegisterInstancesWithLoadBalancer(c, &elb.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String("other-0"), Instances: []elbtypes.Instance{{InstanceId: aws.String(b)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Instances) != 1 {
		t.Fatalf("registered: %+v", reg.Instances)
	}
}

func TestCloudFormation(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	id, err := f.acct.AddStack("apitap", map[string]string{"owner": "me"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 250 {
		if err := f.acct.AddStackEvent("apitap", StackEvent{
			LogicalResourceID: fmt.Sprint("Res", i), ResourceType: "AWS::EC2::Instance", ResourceStatus: "CREATE_IN_PROGRESS",
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.acct.AddStackEvent("apitap", StackEvent{
		LogicalResourceID: "Fleet", ResourceType: "AWS::AutoScaling::AutoScalingGroup", ResourceStatus: "CREATE_FAILED",
		ResourceStatusReason: "Client.InternalError: Client error on launch",
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.acct.SetStackStatus("apitap", "ROLLBACK_COMPLETE", "The following resource(s) failed to create: [Fleet]."); err != nil {
		t.Fatal(err)
	}
	if err := f.acct.SetStackOutput("apitap", "MirrorTarget", f.target); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"apitap", id} {
		out, err := f.cfn.DescribeStacks(c, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		s := out.Stacks[0]
		if len(out.Stacks) != 1 || aws.ToString(s.StackId) != id || s.StackStatus != cfntypes.StackStatusRollbackComplete ||
			!strings.Contains(aws.ToString(s.StackStatusReason), "Fleet") || s.CreationTime == nil || s.LastUpdatedTime == nil ||
			aws.ToString(s.Outputs[0].OutputValue) != f.target || aws.ToString(s.Tags[0].Value) != "me" {
			t.Fatalf("stack by %s: %+v", name, s)
		}
	}
	_, err = f.cfn.DescribeStacks(c, &cloudformation.DescribeStacksInput{StackName: aws.String("nope")})
	wantCode(t, err, "ValidationError")

	var events []cfntypes.StackEvent
	p := cloudformation.NewDescribeStackEventsPaginator(f.cfn, &cloudformation.DescribeStackEventsInput{StackName: aws.String("apitap")})
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, out.StackEvents...)
	}
	if len(events) != 253 { // create, 250 resources, the failure, rollback
		t.Fatalf("%d events", len(events))
	}
	if events[0].ResourceStatus != "ROLLBACK_COMPLETE" || aws.ToString(events[1].LogicalResourceId) != "Fleet" ||
		events[1].ResourceStatus != cfntypes.ResourceStatusCreateFailed || events[252].ResourceStatus != "CREATE_IN_PROGRESS" ||
		aws.ToString(events[252].LogicalResourceId) != "apitap" {
		t.Fatalf("events not newest first: %+v ... %+v", events[0], events[252])
	}
	if n := f.acct.Calls().Get("cloudformation", "DescribeStackEvents"); n != 3 {
		t.Fatalf("%d event pages", n)
	}
}

// Per-service base URLs (path routing) work as well as Version routing.
func TestPathEndpoints(t *testing.T) {
	f := newFixture(t, Options{})
	c := ctx(t)
	cfg := f.acct.Config()
	cfg.BaseEndpoint = nil
	e := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(f.acct.Endpoint("ec2")) })
	l := elbv2.NewFromConfig(cfg, func(o *elbv2.Options) { o.BaseEndpoint = aws.String(f.acct.Endpoint("elbv2")) })
	k := elb.NewFromConfig(cfg, func(o *elb.Options) { o.BaseEndpoint = aws.String(f.acct.Endpoint("elb")) })
	cf := cloudformation.NewFromConfig(cfg, func(o *cloudformation.Options) { o.BaseEndpoint = aws.String(f.acct.Endpoint("cloudformation")) })
	if _, err := e.DescribeTrafficMirrorTargets(c, &ec2.DescribeTrafficMirrorTargetsInput{}); err != nil {
		t.Fatal(err)
	}
	if out, err := l.DescribeLoadBalancers(c, &elbv2.DescribeLoadBalancersInput{}); err != nil || len(out.LoadBalancers) != 1 {
		t.Fatal(out, err)
	}
	if _, err := k.DescribeLoadBalancers(c, &elb.DescribeLoadBalancersInput{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cf.DescribeStacks(c, &cloudformation.DescribeStacksInput{}); err != nil {
		t.Fatal(err)
	}
	calls := f.acct.Calls()
	for _, key := range []string{"ec2:DescribeTrafficMirrorTargets", "elbv2:DescribeLoadBalancers", "elb:DescribeLoadBalancers", "cloudformation:DescribeStacks"} {
		if calls.ByAction[key] != 1 {
			t.Fatalf("calls %v", calls.ByAction)
		}
	}
}

// Every field of an event reaches the SDK, and events are newest first by
// Timestamp even when added out of order.
func TestStackEventFields(t *testing.T) {
	clock := NewManualClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, Options{Clock: clock})
	c := ctx(t)
	if _, err := f.acct.AddStack("apitap", nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	ev := StackEvent{
		LogicalResourceID: "Fleet", PhysicalResourceID: "apitap-Fleet-1ABC", ResourceType: "AWS::AutoScaling::AutoScalingGroup",
		ResourceStatus: "UPDATE_FAILED", ResourceStatusReason: "Resource handler returned message: \"capacity\"",
		ClientRequestToken: "Console-UpdateStack-1234", Timestamp: clock.Now(),
	}
	if err := f.acct.AddStackEvent("apitap", ev); err != nil {
		t.Fatal(err)
	}
	// An event from before: it goes in its place in time.
	if err := f.acct.AddStackEvent("apitap", StackEvent{LogicalResourceID: "Fleet", ResourceStatus: "UPDATE_IN_PROGRESS",
		ClientRequestToken: "Console-UpdateStack-1234", Timestamp: clock.Now().Add(-30 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	out, err := f.cfn.DescribeStackEvents(c, &cloudformation.DescribeStackEventsInput{StackName: aws.String("apitap")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.StackEvents) != 3 || out.NextToken != nil {
		t.Fatalf("%d events, token %v", len(out.StackEvents), out.NextToken)
	}
	got := out.StackEvents[0]
	if aws.ToString(got.LogicalResourceId) != "Fleet" || aws.ToString(got.PhysicalResourceId) != "apitap-Fleet-1ABC" ||
		aws.ToString(got.ResourceType) != "AWS::AutoScaling::AutoScalingGroup" || got.ResourceStatus != cfntypes.ResourceStatusUpdateFailed ||
		aws.ToString(got.ResourceStatusReason) != ev.ResourceStatusReason || aws.ToString(got.ClientRequestToken) != "Console-UpdateStack-1234" ||
		!aws.ToTime(got.Timestamp).Equal(ev.Timestamp) || aws.ToString(got.EventId) == "" || aws.ToString(got.StackName) != "apitap" {
		t.Fatalf("event %+v", got)
	}
	if out.StackEvents[1].ResourceStatus != cfntypes.ResourceStatusUpdateInProgress || out.StackEvents[2].ResourceStatus != cfntypes.ResourceStatusCreateInProgress {
		t.Fatalf("not newest first: %v %v", out.StackEvents[1].ResourceStatus, out.StackEvents[2].ResourceStatus)
	}
}
