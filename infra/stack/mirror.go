package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	elbv2 "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/jsii-runtime-go"
)

// TCP is the IANA protocol number the filter rules accept.
const TCP = 6

type mirror struct {
	nlb      elbv2.NetworkLoadBalancer
	tg       elbv2.NetworkTargetGroup
	listener elbv2.NetworkListener
	target   awsec2.CfnTrafficMirrorTarget
	filter   awsec2.CfnTrafficMirrorFilter
	rules    []awsec2.CfnTrafficMirrorFilterRule
}

func (s *Stack) mirror(net network, f fleet) mirror {
	cfg, st := s.Config, s.Stack

	// Internal NLB in every given subnet, cross-zone on: a mirror target
	// needs both (docs/aws.md).
	nlb := elbv2.NewNetworkLoadBalancer(st, jsii.String("MirrorNlb"), &elbv2.NetworkLoadBalancerProps{
		Vpc:                net.vpc,
		VpcSubnets:         net.subnets,
		InternetFacing:     jsii.Bool(false),
		CrossZoneEnabled:   jsii.Bool(true),
		LoadBalancerName:   jsii.String(s.Names.LoadBalancer),
		DeletionProtection: jsii.Bool(false),
	})
	tg := elbv2.NewNetworkTargetGroup(st, jsii.String("SnifferTargets"), &elbv2.NetworkTargetGroupProps{
		Vpc:                 net.vpc,
		TargetGroupName:     jsii.String(s.Names.TargetGroup),
		Port:                jsii.Number(VXLANPort),
		Protocol:            elbv2.Protocol_UDP,
		TargetType:          elbv2.TargetType_INSTANCE,
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(DeregistrationDelayS)),
		// UDP target groups need a TCP or HTTP health check: the sniffer's
		// health port accepts and closes.
		HealthCheck: &elbv2.HealthCheck{
			Protocol:                elbv2.Protocol_TCP,
			Port:                    jsii.String(fmt.Sprint(HealthPort)),
			Interval:                awscdk.Duration_Seconds(jsii.Number(10)),
			HealthyThresholdCount:   jsii.Number(2),
			UnhealthyThresholdCount: jsii.Number(2),
		},
		Targets: &[]elbv2.INetworkLoadBalancerTarget{f.asg},
	})
	// Every packet from one source ENI reaches one sniffer, so both
	// directions of a connection meet (docs/aws.md: the outer source
	// port may differ between directions).
	tg.SetAttribute(jsii.String("stickiness.enabled"), jsii.String("true"))
	tg.SetAttribute(jsii.String("stickiness.type"), jsii.String("source_ip"))
	listener := nlb.AddListener(jsii.String("Vxlan"), &elbv2.BaseNetworkListenerProps{
		Port:                jsii.Number(VXLANPort),
		Protocol:            elbv2.Protocol_UDP,
		DefaultTargetGroups: &[]elbv2.INetworkTargetGroup{tg},
	})

	target := awsec2.NewCfnTrafficMirrorTarget(st, jsii.String("MirrorTarget"), &awsec2.CfnTrafficMirrorTargetProps{
		NetworkLoadBalancerArn: nlb.LoadBalancerArn(),
		Description:            jsii.String("apitap " + cfg.StackName + ": sniffer fleet behind an internal NLB"),
	})
	// Without the UDP 4789 listener, mirroring fails silently.
	target.Node().AddDependency(listener)

	filter := awsec2.NewCfnTrafficMirrorFilter(st, jsii.String("MirrorFilter"), &awsec2.CfnTrafficMirrorFilterProps{
		Description: jsii.String("apitap " + cfg.StackName + ": " + filterDescription(cfg)),
	})
	m := mirror{nlb: nlb, tg: tg, listener: listener, target: target, filter: filter}
	for i, r := range FilterRules(cfg) {
		m.rules = append(m.rules, awsec2.NewCfnTrafficMirrorFilterRule(st, jsii.String(fmt.Sprintf("MirrorFilterRule%d", i+1)), &awsec2.CfnTrafficMirrorFilterRuleProps{
			TrafficMirrorFilterId: filter.Ref(),
			TrafficDirection:      jsii.String(r.Direction),
			RuleNumber:            jsii.Number(float64(r.Number)),
			RuleAction:            jsii.String("accept"),
			Protocol:              jsii.Number(TCP),
			SourceCidrBlock:       jsii.String("0.0.0.0/0"),
			DestinationCidrBlock:  jsii.String("0.0.0.0/0"),
			SourcePortRange:       portRange(r.SourcePorts),
			DestinationPortRange:  portRange(r.DestinationPorts),
			Description:           jsii.String(r.Description),
		}))
	}
	return m
}

// FilterRule is one rule of the mirror filter.
type FilterRule struct {
	Direction        string // ingress or egress (seen from the source ENI)
	Number           int
	SourcePorts      *PortRange
	DestinationPorts *PortRange
	Description      string
}

// FilterRules are the filter's rules: with no ports, all TCP in both
// directions; otherwise requests to each port range (ingress, destination
// port) and responses from it (egress, source port). Without egress rules
// no responses would be mirrored.
func FilterRules(c Config) []FilterRule {
	if len(c.MirrorPorts) == 0 {
		return []FilterRule{
			{Direction: "ingress", Number: 100, Description: "all TCP into the source"},
			{Direction: "egress", Number: 100, Description: "all TCP out of the source"},
		}
	}
	var out []FilterRule
	for i, p := range c.MirrorPorts {
		p := p
		n := 100 + 10*i
		out = append(out,
			FilterRule{Direction: "ingress", Number: n, DestinationPorts: &p, Description: "requests to TCP " + p.String()},
			FilterRule{Direction: "egress", Number: n, SourcePorts: &p, Description: "responses from TCP " + p.String()})
	}
	return out
}

func filterDescription(c Config) string {
	if len(c.MirrorPorts) == 0 {
		return "all TCP, both directions"
	}
	return fmt.Sprintf("TCP ports %v, both directions", c.MirrorPorts)
}

func portRange(p *PortRange) any {
	if p == nil {
		return nil
	}
	return &awsec2.CfnTrafficMirrorFilterRule_TrafficMirrorPortRangeProperty{
		FromPort: jsii.Number(float64(p.From)),
		ToPort:   jsii.Number(float64(p.To)),
	}
}
