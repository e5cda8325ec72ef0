package stack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3assets"
	"github.com/aws/jsii-runtime-go"
)

// Scaling of the fleet. Scale-out follows CPU (target tracking); scale-in
// is a separate, slow step policy, because every change of the fleet may
// move connections to another sniffer (source-IP stickiness resets), and
// a sniffer that receives a connection mid-stream loses its first
// messages.
const (
	CPUTargetPercent     = 60
	CPUScaleInPercent    = 25
	ScaleInPeriods       = 6 // of 5 minutes: 30 minutes below CPUScaleInPercent
	InstanceWarmupMins   = 5
	DeregistrationDelayS = 120
	RootVolumeGiB        = 16
)

type fleet struct {
	logs awslogs.LogGroup
	key  awskms.Key
	sg   awsec2.SecurityGroup
	role awsiam.Role
	lt   awsec2.LaunchTemplate
	asg  awsautoscaling.AutoScalingGroup
}

func (s *Stack) fleet(net network, n notifications, unit string, assets Assets) fleet {
	cfg, st := s.Config, s.Stack

	// EBS encryption with the stack's key. The Auto Scaling service-linked
	// role launches the instances, so the key policy must let it use the
	// key, or every launch fails with "Client.InternalError: Client error
	// on launch" (docs/aws.md).
	key := awskms.NewKey(st, jsii.String("SnifferVolumeKey"), &awskms.KeyProps{
		Description:       jsii.String("apitap " + cfg.StackName + ": encrypts the sniffers' EBS volumes"),
		EnableKeyRotation: jsii.Bool(true),
		PendingWindow:     awscdk.Duration_Days(jsii.Number(7)),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	slr := awsiam.NewArnPrincipal(jsii.String(s.slrAutoScaling()))
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AutoScalingServiceLinkedRoleUse"),
		Principals: &[]awsiam.IPrincipal{slr},
		Actions:    jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"),
		Resources:  jsii.Strings("*"),
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AutoScalingServiceLinkedRoleGrants"),
		Principals: &[]awsiam.IPrincipal{slr},
		Actions:    jsii.Strings("kms:CreateGrant"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"Bool": map[string]any{"kms:GrantIsForAWSResource": "true"}},
	}), nil)

	// Mirrored packets keep the source's IP (NLB UDP preserves client
	// IPs): admit them from the VPC, not from the NLB.
	sg := awsec2.NewSecurityGroup(st, jsii.String("SnifferSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              net.vpc,
		Description:      jsii.String("apitap sniffers: VXLAN (UDP 4789) and the NLB health check (TCP 8081) from the VPC"),
		AllowAllOutbound: jsii.Bool(false),
	})
	for _, cidr := range cfg.VPCCIDRs {
		sg.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Udp(jsii.Number(VXLANPort)),
			jsii.String("VXLAN-encapsulated mirrored packets from sources in the VPC"), nil)
		sg.AddIngressRule(awsec2.Peer_Ipv4(jsii.String(cidr)), awsec2.Port_Tcp(jsii.Number(HealthPort)),
			jsii.String("NLB health check"), nil)
	}
	sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(443)),
		jsii.String("HTTPS to AWS APIs: S3 (sniffer binary), CloudWatch, Secrets Manager"), nil)
	for _, port := range brokerPorts(cfg.KafkaBrokers) {
		sg.AddEgressRule(awsec2.Peer_AnyIpv4(), awsec2.Port_Tcp(jsii.Number(float64(port))),
			jsii.String(fmt.Sprintf("Kafka brokers (port %d)", port)), nil)
	}

	role := awsiam.NewRole(st, jsii.String("SnifferRole"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("ec2.amazonaws.com"), nil),
		Path:        jsii.String(s.Names.RolePath),
		Description: jsii.String("apitap sniffer instances: read the sniffer binary, ship logs, publish drop counts, signal boots, Session Manager" + kafkaRoleNote(cfg)),
	})
	profile := awsiam.NewInstanceProfile(st, jsii.String("SnifferInstanceProfile"), &awsiam.InstanceProfileProps{
		Role: role,
		Path: jsii.String(s.Names.RolePath),
	})
	binary := awss3assets.NewAsset(st, jsii.String("SnifferBinary"), &awss3assets.AssetProps{Path: jsii.String(assets.SnifferBinary)})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadSnifferBinary"),
		Actions:   jsii.Strings("s3:GetObject"),
		Resources: jsii.Strings(*binary.Bucket().ArnForObjects(binary.S3ObjectKey())),
	}))
	// Logs: the CloudWatch agent writes the sniffer's log and the boot log
	// into the stack's log group (it exists: the agent needs no right to
	// create it).
	logs := awslogs.NewLogGroup(st, jsii.String("SnifferLogs"), &awslogs.LogGroupProps{
		LogGroupName:  jsii.String(s.Names.SnifferLogGroup),
		Retention:     awslogs.RetentionDays(retentionDays[cfg.LogRetentionDays]),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ShipSnifferLogs"),
		Actions:   jsii.Strings("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
		Resources: jsii.Strings(*logs.LogGroupArn()),
	}))
	// Session Manager is the only way in: no SSH, no key pair. These are
	// the actions its agent needs (docs/aws.md, "Sniffer boot, updates and access");
	// they have no resource-level permissions.
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("SessionManager"),
		Actions: jsii.Strings("ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
			"ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"),
		Resources: jsii.Strings("*"),
	}))
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("PublishSnifferDrops"),
		Actions:    jsii.Strings("cloudwatch:PutMetricData"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"cloudwatch:namespace": s.Names.MetricsNamespace}},
	}))
	switch cfg.KafkaAuth {
	case KafkaAuthSCRAMSHA256, KafkaAuthSCRAMSHA512:
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ReadKafkaSecret"),
			Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
			Resources: jsii.Strings(cfg.KafkaSecretARN),
		}))
		if cfg.KafkaSecretKMSKeyARN != "" {
			role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("DecryptKafkaSecret"),
				Actions:    jsii.Strings("kms:Decrypt"),
				Resources:  jsii.Strings(cfg.KafkaSecretKMSKeyARN),
				Conditions: &map[string]any{"StringEquals": map[string]any{"kms:ViaService": "secretsmanager." + cfg.Region + ".amazonaws.com"}},
			}))
		}
	case KafkaAuthIAM:
		cluster, topic := cfg.MSKResources()
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("MskConnect"),
			Actions:   jsii.Strings("kafka-cluster:Connect", "kafka-cluster:DescribeCluster"),
			Resources: jsii.Strings(cluster),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("MskWriteTopic"),
			Actions:   jsii.Strings("kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"),
			Resources: jsii.Strings(topic),
		}))
	}

	lt := awsec2.NewLaunchTemplate(st, jsii.String("SnifferLaunchTemplate"), &awsec2.LaunchTemplateProps{
		LaunchTemplateName: jsii.String(s.Names.LaunchTemplate),
		// The AMI id is a CloudFormation parameter resolved from the public
		// SSM parameter at deploy time, not a lookup at synth time.
		MachineImage: awsec2.MachineImage_LatestAmazonLinux2023(&awsec2.AmazonLinux2023ImageSsmParameterProps{
			CpuType: awsec2.AmazonLinuxCpuType_ARM_64,
		}),
		RequireImdsv2:            jsii.Bool(true),
		HttpTokens:               awsec2.LaunchTemplateHttpTokens_REQUIRED,
		HttpPutResponseHopLimit:  jsii.Number(1),
		InstanceProfile:          profile,
		SecurityGroup:            sg,
		AssociatePublicIpAddress: jsii.Bool(false),
		DetailedMonitoring:       jsii.Bool(true),
		UserData:                 s.userData(binary, unit, s.Names.SnifferLogGroup),
		BlockDevices: &[]*awsec2.BlockDevice{{
			DeviceName: jsii.String("/dev/xvda"),
			Volume: awsec2.BlockDeviceVolume_Ebs(jsii.Number(RootVolumeGiB), &awsec2.EbsDeviceOptions{
				Encrypted:           jsii.Bool(true),
				KmsKey:              key,
				VolumeType:          awsec2.EbsDeviceVolumeType_GP3,
				DeleteOnTermination: jsii.Bool(true),
			}),
		}},
	})

	var overrides []*awsautoscaling.LaunchTemplateOverrides
	for _, t := range cfg.InstanceTypes {
		overrides = append(overrides, &awsautoscaling.LaunchTemplateOverrides{InstanceType: awsec2.NewInstanceType(jsii.String(t))})
	}
	minInService := cfg.MinCapacity
	if minInService >= cfg.MaxCapacity {
		minInService = cfg.MaxCapacity - 1
	}
	props := &awsautoscaling.AutoScalingGroupProps{
		Vpc:                  net.vpc,
		VpcSubnets:           net.subnets,
		AutoScalingGroupName: jsii.String(s.Names.AutoScalingGroup),
		// Several equivalent Graviton types in every zone: a launch falls
		// back to the next type instead of failing for capacity.
		MixedInstancesPolicy: &awsautoscaling.MixedInstancesPolicy{
			LaunchTemplate:          lt,
			LaunchTemplateOverrides: &overrides,
			InstancesDistribution: &awsautoscaling.InstancesDistribution{
				OnDemandBaseCapacity:                jsii.Number(0),
				OnDemandPercentageAboveBaseCapacity: jsii.Number(100),
				OnDemandAllocationStrategy:          awsautoscaling.OnDemandAllocationStrategy_PRIORITIZED,
			},
		},
		MinCapacity: jsii.Number(float64(cfg.MinCapacity)),
		MaxCapacity: jsii.Number(float64(cfg.MaxCapacity)),
		HealthChecks: awsautoscaling.HealthChecks_WithAdditionalChecks(&awsautoscaling.AdditionalHealthChecksOptions{
			AdditionalTypes: &[]awsautoscaling.AdditionalHealthCheckType{awsautoscaling.AdditionalHealthCheckType_ELB},
			GracePeriod:     awscdk.Duration_Minutes(jsii.Number(InstanceWarmupMins)),
		}),
		DefaultInstanceWarmup: awscdk.Duration_Minutes(jsii.Number(InstanceWarmupMins)),
		Notifications:         &[]*awsautoscaling.NotificationConfiguration{{Topic: n.topic}},
		GroupMetrics:          &[]awsautoscaling.GroupMetrics{awsautoscaling.GroupMetrics_All()},
		// The stack is created only when the minimum number of sniffers
		// report ready, and a new launch template version (a new sniffer,
		// new settings) rolls through the fleet one instance at a time,
		// each new one replacing an old one only once it reports ready;
		// a failure signal or a timeout rolls the update back. (With
		// signals, the CDK lets the role signal this stack.)
		Signals: awsautoscaling.Signals_WaitForMinCapacity(&awsautoscaling.SignalsOptions{
			Timeout: awscdk.Duration_Minutes(jsii.Number(SignalTimeoutMins)),
		}),
		UpdatePolicy: awsautoscaling.UpdatePolicy_RollingUpdate(&awsautoscaling.RollingUpdateOptions{
			MaxBatchSize:          jsii.Number(1),
			MinInstancesInService: jsii.Number(float64(minInService)),
			MinSuccessPercentage:  jsii.Number(100),
			WaitOnResourceSignals: jsii.Bool(true),
			PauseTime:             awscdk.Duration_Minutes(jsii.Number(SignalTimeoutMins)),
		}),
	}
	if cfg.DesiredCapacity != cfg.MinCapacity {
		props.DesiredCapacity = jsii.Number(float64(cfg.DesiredCapacity))
	}
	asg := awsautoscaling.NewAutoScalingGroup(st, jsii.String("Sniffers"), props)
	// The boot script signals this logical id.
	asg.Node().DefaultChild().(awscdk.CfnElement).OverrideLogicalId(jsii.String(AutoScalingGroupID))

	asg.ScaleOnCpuUtilization(jsii.String("CpuTarget"), &awsautoscaling.CpuUtilizationScalingProps{
		TargetUtilizationPercent: jsii.Number(CPUTargetPercent),
		DisableScaleIn:           jsii.Bool(true),
		EstimatedInstanceWarmup:  awscdk.Duration_Minutes(jsii.Number(InstanceWarmupMins)),
	})
	cpu := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String("AWS/EC2"),
		MetricName:    jsii.String("CPUUtilization"),
		DimensionsMap: &map[string]*string{"AutoScalingGroupName": asg.AutoScalingGroupName()},
		Statistic:     jsii.String("Average"),
		Period:        awscdk.Duration_Minutes(jsii.Number(5)),
	})
	asg.ScaleOnMetric(jsii.String("CpuLowScaleIn"), &awsautoscaling.BasicStepScalingPolicyProps{
		Metric: cpu,
		ScalingSteps: &[]*awsautoscaling.ScalingInterval{
			{Upper: jsii.Number(CPUScaleInPercent), Change: jsii.Number(-1)},
			{Lower: jsii.Number(CPUScaleInPercent), Change: jsii.Number(0)},
		},
		AdjustmentType:          awsautoscaling.AdjustmentType_CHANGE_IN_CAPACITY,
		EstimatedInstanceWarmup: awscdk.Duration_Minutes(jsii.Number(InstanceWarmupMins)),
		EvaluationPeriods:       jsii.Number(ScaleInPeriods),
		DatapointsToAlarm:       jsii.Number(ScaleInPeriods),
	})
	return fleet{logs: logs, key: key, sg: sg, role: role, lt: lt, asg: asg}
}

func kafkaRoleNote(c Config) string {
	switch c.KafkaAuth {
	case KafkaAuthIAM:
		return ", write to the MSK topic"
	case KafkaAuthSCRAMSHA256, KafkaAuthSCRAMSHA512:
		return ", read the Kafka secret"
	}
	return ""
}

// brokerPorts are the distinct ports of the brokers, sorted.
func brokerPorts(brokers []string) []int {
	seen := map[int]bool{}
	var out []int
	for _, b := range brokers {
		i := strings.LastIndexByte(b, ':')
		var p int
		if _, err := fmt.Sscan(b[i+1:], &p); err == nil && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Ints(out)
	return out
}
