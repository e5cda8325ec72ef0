package awssim

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	asgtypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func TestDescribeAutoScalingGroups(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	vpc := a.AddVPC()
	lb, _ := a.AddLoadBalancer("application", vpc, "web", nil)
	tg, _ := a.AddTargetGroup(lb, "instance")
	if err := a.AddAutoScalingGroup("web-asg", []string{tg}, []string{"legacy"}); err != nil {
		t.Fatal(err)
	}
	id, _, _ := a.AddInstance(vpc, "m5.large")
	if err := a.SetInstanceGroup(id, "web-asg"); err != nil {
		t.Fatal(err)
	}
	c := autoscaling.NewFromConfig(a.Config())
	out, err := c.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"web-asg", "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.AutoScalingGroups) != 1 {
		t.Fatalf("%d groups", len(out.AutoScalingGroups))
	}
	g := out.AutoScalingGroups[0]
	if *g.AutoScalingGroupName != "web-asg" || len(g.TargetGroupARNs) != 1 || g.TargetGroupARNs[0] != tg ||
		len(g.LoadBalancerNames) != 1 || len(g.Instances) != 1 || *g.Instances[0].InstanceId != id {
		t.Errorf("group %+v", g)
	}

	// An EC2 instance of the group: its health can be set, and terminating
	// it through Auto Scaling terminates it in EC2.
	if _, err := c.SetInstanceHealth(context.Background(), &autoscaling.SetInstanceHealthInput{InstanceId: &id, HealthStatus: aws.String("Unhealthy")}); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Group("web-asg"); len(st.Instances) != 1 || st.Instances[0].HealthStatus != ASGUnhealthy {
		t.Fatalf("health %+v", st)
	}
	if _, err := c.TerminateInstanceInAutoScalingGroup(context.Background(), &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: &id, ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if st, _ := a.Group("web-asg"); len(st.Instances) != 0 || st.DesiredCapacity != 1 || a.InstanceState(id) != StateTerminated {
		t.Fatalf("after terminate %+v, EC2 %s", st, a.InstanceState(id))
	}
}

func TestFleetGroup(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(1)
	cl := autoscaling.NewFromConfig(cfg)
	if err := a.AddFleetGroup("sniffers", []string{"c6in.large", "c7gn.large"}, []string{"subnet-a", "subnet-b"}, 2, 6, 3); err != nil {
		t.Fatal(err)
	}
	if err := a.AddFleetGroup("bad", nil, nil, 3, 2, 2); err == nil {
		t.Fatal("min above max accepted")
	}
	for i, h := range []string{ASGHealthy, ASGHealthy, ASGUnhealthy} {
		if err := a.AddGroupInstance("sniffers", fmt.Sprintf("i-%d", i), "us-east-1a", h); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.AddGroupInstance("sniffers", "i-0", "us-east-1a", ASGHealthy); err == nil {
		t.Fatal("an instance added twice")
	}

	out, err := cl.DescribeAutoScalingGroups(c, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{"sniffers"}})
	if err != nil {
		t.Fatal(err)
	}
	g := out.AutoScalingGroups[0]
	ov := g.MixedInstancesPolicy.LaunchTemplate.Overrides
	if aws.ToString(g.VPCZoneIdentifier) != "subnet-a,subnet-b" || len(ov) != 2 || aws.ToString(ov[1].InstanceType) != "c7gn.large" ||
		aws.ToInt32(g.MinSize) != 2 || aws.ToInt32(g.MaxSize) != 6 || aws.ToInt32(g.DesiredCapacity) != 3 || len(g.Instances) != 3 ||
		aws.ToString(g.Instances[2].HealthStatus) != "Unhealthy" || g.Instances[0].LifecycleState != asgtypes.LifecycleStateInService ||
		aws.ToString(g.Instances[0].AvailabilityZone) != "us-east-1a" || len(g.AvailabilityZones) != 1 || g.CreatedTime == nil {
		t.Fatalf("group %+v", g)
	}

	// Update: overrides replaced, subnets, sizes.
	_, err = cl.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String("sniffers"),
		MixedInstancesPolicy: &asgtypes.MixedInstancesPolicy{LaunchTemplate: &asgtypes.LaunchTemplate{
			Overrides: []asgtypes.LaunchTemplateOverrides{{InstanceType: aws.String("m6in.large")}},
		}},
		VPCZoneIdentifier: aws.String("subnet-c"),
		MinSize:           aws.Int32(1), MaxSize: aws.Int32(4), DesiredCapacity: aws.Int32(4),
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := a.Group("sniffers")
	if fmt.Sprint(st.InstanceTypes) != "[m6in.large]" || fmt.Sprint(st.Subnets) != "[subnet-c]" ||
		st.MinSize != 1 || st.MaxSize != 4 || st.DesiredCapacity != 4 {
		t.Fatalf("after update %+v", st)
	}
	// A MaxSize below the desired capacity lowers it, as the reference says.
	if _, err := cl.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("sniffers"), MaxSize: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	if st, _ = a.Group("sniffers"); st.DesiredCapacity != 3 || fmt.Sprint(st.InstanceTypes) != "[m6in.large]" {
		t.Fatalf("after MaxSize %+v", st)
	}
	_, err = cl.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("sniffers"), DesiredCapacity: aws.Int32(9)})
	wantCode(t, err, "ValidationError")
	_, err = cl.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("nope"), MinSize: aws.Int32(1)})
	wantCode(t, err, "ValidationError")

	// Health.
	if _, err := cl.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String("i-0"), HealthStatus: aws.String("Unhealthy")}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String("i-0"), HealthStatus: aws.String("Sick")})
	wantCode(t, err, "ValidationError")
	_, err = cl.SetInstanceHealth(c, &autoscaling.SetInstanceHealthInput{InstanceId: aws.String("i-9"), HealthStatus: aws.String("Healthy")})
	wantCode(t, err, "ValidationError")
	if st, _ = a.Group("sniffers"); st.Instances[0].HealthStatus != ASGUnhealthy {
		t.Fatalf("health %+v", st.Instances)
	}

	// Terminate without decrementing: the instance leaves, the desired
	// capacity stays.
	term, err := cl.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String("i-2"), ShouldDecrementDesiredCapacity: aws.Bool(false)})
	if err != nil {
		t.Fatal(err)
	}
	if term.Activity == nil || !strings.Contains(aws.ToString(term.Activity.Description), "i-2") || term.Activity.StatusCode != asgtypes.ScalingActivityStatusCodeInProgress {
		t.Fatalf("activity %+v", term.Activity)
	}
	st, _ = a.Group("sniffers")
	if len(st.Instances) != 2 || fmt.Sprint(st.Terminated) != "[i-2]" || st.DesiredCapacity != 3 {
		t.Fatalf("after terminate %+v", st)
	}
	_, err = cl.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String("i-2"), ShouldDecrementDesiredCapacity: aws.Bool(false)})
	wantCode(t, err, "ValidationError")
	// Decrementing below MinSize is refused; above, it decrements.
	if _, err := cl.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String("i-1"), ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.UpdateAutoScalingGroup(c, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("sniffers"), MinSize: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.TerminateInstanceInAutoScalingGroup(c, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String("i-0"), ShouldDecrementDesiredCapacity: aws.Bool(true)})
	wantCode(t, err, "ValidationError")
	if st, _ = a.Group("sniffers"); st.DesiredCapacity != 2 || len(st.Instances) != 1 {
		t.Fatalf("after decrement %+v", st)
	}

	calls := a.Calls()
	if calls.Get("autoscaling", "UpdateAutoScalingGroup") != 5 || calls.Get("autoscaling", "TerminateInstanceInAutoScalingGroup") != 4 ||
		calls.Get("autoscaling", "SetInstanceHealth") != 3 {
		t.Errorf("calls %v", calls.ByAction)
	}
	var sawOverride bool
	for _, m := range a.Stats().Mutations {
		if m.Action == "UpdateAutoScalingGroup" && len(m.Params["MixedInstancesPolicy.LaunchTemplate.Overrides.member.1.InstanceType"]) == 1 {
			sawOverride = true
		}
	}
	if !sawOverride {
		t.Errorf("mutations %+v", a.Stats().Mutations)
	}
}

// Without names, every group, MaxRecords at a time.
func TestDescribeAutoScalingGroupsPages(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	for i := range 5 {
		if err := a.AddFleetGroup(fmt.Sprintf("g%d", i), nil, nil, 0, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	cl := autoscaling.NewFromConfig(a.Config())
	var names []string
	p := autoscaling.NewDescribeAutoScalingGroupsPaginator(cl, &autoscaling.DescribeAutoScalingGroupsInput{MaxRecords: aws.Int32(2)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.AutoScalingGroups {
			names = append(names, aws.ToString(g.AutoScalingGroupName))
			if g.MixedInstancesPolicy != nil || g.VPCZoneIdentifier != nil {
				t.Errorf("group without policy or subnets: %+v", g)
			}
		}
	}
	if fmt.Sprint(names) != "[g0 g1 g2 g3 g4]" || a.Calls().Get("autoscaling", "DescribeAutoScalingGroups") != 3 {
		t.Fatalf("%v in %d pages", names, a.Calls().Get("autoscaling", "DescribeAutoScalingGroups"))
	}
	_, err := cl.DescribeAutoScalingGroups(ctx(t), &autoscaling.DescribeAutoScalingGroupsInput{NextToken: aws.String("junk")})
	wantCode(t, err, "InvalidNextToken")
}
