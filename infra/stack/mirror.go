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
		// No security group: mirrored packets come from every source ENI
		// in the VPC and keep their source address, and security groups
		// cannot be added to an NLB created without one (the flag that
		// changes this default is pinned off in cdk.json as well).
		DisableSecurityGroups: jsii.Bool(true),
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

	// The filter's properties never change with the configuration: a
	// changed Description or NetworkServices replaces an
	// AWS::EC2::TrafficMirrorFilter, and a replaced filter stops mirroring
	// (its rules go first) and cannot be deleted while sessions use it.
	// Everything configurable lives in the rules, which change in place.
	filter := awsec2.NewCfnTrafficMirrorFilter(st, jsii.String("MirrorFilter"), &awsec2.CfnTrafficMirrorFilterProps{
		Description: jsii.String(FilterDescription(cfg.StackName)),
	})
	m := mirror{nlb: nlb, tg: tg, listener: listener, target: target, filter: filter}
	for _, r := range FilterRules(cfg) {
		m.rules = append(m.rules, awsec2.NewCfnTrafficMirrorFilterRule(st, jsii.String(r.ID), &awsec2.CfnTrafficMirrorFilterRuleProps{
			TrafficMirrorFilterId: filter.Ref(),
			TrafficDirection:      jsii.String(r.Direction),
			RuleNumber:            jsii.Number(float64(r.Number)),
			RuleAction:            jsii.String("accept"),
			Protocol:              jsii.Number(TCP),
			SourceCidrBlock:       jsii.String(r.CIDR),
			DestinationCidrBlock:  jsii.String(r.CIDR),
			SourcePortRange:       portRange(r.SourcePorts),
			DestinationPortRange:  portRange(r.DestinationPorts),
			Description:           jsii.String(r.Description),
		}))
	}
	return m
}

// FilterDescription is the mirror filter's Description: the stack's name
// only, so that no setting can replace the filter.
func FilterDescription(stackName string) string {
	return "apitap " + stackName + ": mirror filter (its rules are separate resources)"
}

// Address families of the filter rules.
const (
	AnyIPv4 = "0.0.0.0/0"
	AnyIPv6 = "::/0"
)

// FilterRule is one rule of the mirror filter.
type FilterRule struct {
	// ID is the rule's logical id. It is fixed by the rule's slot,
	// family and direction, and so is its number: a configuration change
	// modifies rules in place and never gives two rules one number
	// mid-update.
	ID               string
	Direction        string // ingress or egress (seen from the source ENI)
	Number           int
	CIDR             string // AnyIPv4 or AnyIPv6, as source and destination
	SourcePorts      *PortRange
	DestinationPorts *PortRange
	Description      string
}

// FilterRules are the filter's rules. Each slot (one port range, or all
// TCP when there are none) has an ingress rule for requests to the ports
// and an egress rule for responses from them (without egress rules no
// responses would be mirrored), for IPv4 and, unless switched off, IPv6.
func FilterRules(c Config) []FilterRule {
	slots := c.MirrorPorts
	if len(slots) == 0 {
		slots = []PortRange{{}}
	}
	families := []string{AnyIPv4}
	if !c.SkipIPv6 {
		families = append(families, AnyIPv6)
	}
	var out []FilterRule
	for i, p := range slots {
		var ports *PortRange
		what := "all TCP"
		if p != (PortRange{}) {
			p := p
			ports = &p
			what = "TCP " + p.String()
		}
		for f, cidr := range families {
			fam := "IPv4"
			if cidr == AnyIPv6 {
				fam = "IPv6"
			}
			n := 100 + 10*i + f
			id := fmt.Sprintf("MirrorFilterRule%s%d", fam, i+1)
			out = append(out,
				FilterRule{ID: id + "Ingress", Direction: "ingress", Number: n, CIDR: cidr, DestinationPorts: ports,
					Description: fam + " requests: " + what + " into the source"},
				FilterRule{ID: id + "Egress", Direction: "egress", Number: n, CIDR: cidr, SourcePorts: ports,
					Description: fam + " responses: " + what + " out of the source"})
		}
	}
	return out
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
