package awssim

import (
	"fmt"
	"net/url"
	"slices"
)

// The Auto Scaling API, as far as apitap reads it: which target groups and
// Classic load balancers a group attaches its instances to.
var autoscalingService = service{
	name:    "autoscaling",
	version: "2011-01-01",
	xmlns:   "http://autoscaling.amazonaws.com/doc/2011-01-01/",
	actions: map[string]handler{
		"DescribeAutoScalingGroups": describeAutoScalingGroups,
	},
}

type autoScalingGroup struct {
	name         string
	targetGroups []string
	classics     []string
}

type qASGInstance struct {
	InstanceID     string `xml:"InstanceId"`
	LifecycleState string `xml:"LifecycleState"`
	HealthStatus   string `xml:"HealthStatus"`
}

type qASG struct {
	Name              string         `xml:"AutoScalingGroupName"`
	ARN               string         `xml:"AutoScalingGroupARN"`
	MinSize           int            `xml:"MinSize"`
	MaxSize           int            `xml:"MaxSize"`
	DesiredCapacity   int            `xml:"DesiredCapacity"`
	TargetGroupARNs   []string       `xml:"TargetGroupARNs>member"`
	LoadBalancerNames []string       `xml:"LoadBalancerNames>member"`
	Instances         []qASGInstance `xml:"Instances>member"`
}

type describeASGsOut struct {
	Groups []qASG `xml:"AutoScalingGroups>member"`
}

func describeAutoScalingGroups(s *state, form url.Values) (any, error) {
	names := list(form, "AutoScalingGroupNames.member")
	out := &describeASGsOut{Groups: []qASG{}}
	for _, name := range names {
		g, ok := s.asgs[name]
		if !ok {
			continue // AWS leaves unknown names out
		}
		q := qASG{Name: g.name, ARN: fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:0:autoScalingGroupName/%s", s.a.opts.Region, s.a.opts.AccountID, g.name),
			TargetGroupARNs: slices.Clone(g.targetGroups), LoadBalancerNames: slices.Clone(g.classics)}
		for _, in := range s.instances.values() {
			if in.asg == g.name && in.state != StateTerminated {
				q.Instances = append(q.Instances, qASGInstance{InstanceID: in.id, LifecycleState: "InService", HealthStatus: "Healthy"})
			}
		}
		q.MinSize, q.MaxSize, q.DesiredCapacity = 0, len(q.Instances)+1, len(q.Instances)
		out.Groups = append(out.Groups, q)
	}
	return out, nil
}

// AddAutoScalingGroup makes an Auto Scaling group that attaches its
// instances to the given target groups and Classic load balancers (the
// attaching itself is Register / SetClassicInstances, as AWS does it).
func (a *Account) AddAutoScalingGroup(name string, targetGroupARNs, classicNames []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.st.asgs[name]; ok {
		return fmt.Errorf("awssim: auto scaling group %s exists", name)
	}
	a.st.asgs[name] = &autoScalingGroup{name: name, targetGroups: slices.Clone(targetGroupARNs), classics: slices.Clone(classicNames)}
	return nil
}

// SetInstanceGroup makes an instance a member of an Auto Scaling group.
func (a *Account) SetInstanceGroup(instanceID, group string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	in, ok := a.st.instances.get(instanceID)
	if !ok {
		return fmt.Errorf("awssim: no instance %s", instanceID)
	}
	if _, ok := a.st.asgs[group]; !ok {
		return fmt.Errorf("awssim: no auto scaling group %s", group)
	}
	in.asg = group
	if in.tags == nil {
		in.tags = map[string]string{}
	}
	in.tags["aws:autoscaling:groupName"] = group
	return nil
}
