package awssim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
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
}
