package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/stackconfig"
)

// Ports of the sniffer (README "Health and metrics").
const (
	VXLANPort  = stackconfig.VXLANPort
	HealthPort = stackconfig.HealthPort
	AdminPort  = stackconfig.AdminPort
)

// TagStack is the tag on every resource of the stack and on every mirror
// session the functions create (docs/contracts.md §3).
const TagStack = contract.TagStack

// Assets are the files the stack deploys, built by `make build-functions
// build-sniffer-arm64` before synth.
type Assets struct {
	// SnifferBinary is the linux/arm64 sniffer (bin/linux-arm64/sniffer).
	SnifferBinary string
	// SnifferUnit is its systemd unit (sniffer/apitap-sniffer.service).
	SnifferUnit string
	// FunctionsDir holds NAME/bootstrap for every FunctionKeys entry
	// (bin/functions).
	FunctionsDir string
}

// AssetsIn are the assets at their places in a checkout rooted at root.
func AssetsIn(root string) Assets {
	return Assets{
		SnifferBinary: filepath.Join(root, "bin", "linux-arm64", "sniffer"),
		SnifferUnit:   filepath.Join(root, "sniffer", "apitap-sniffer.service"),
		FunctionsDir:  filepath.Join(root, "bin", "functions"),
	}
}

// Check says which assets are missing, and how to build them.
func (a Assets) Check() error {
	var errs []error
	need := []string{a.SnifferBinary, a.SnifferUnit}
	for _, k := range FunctionKeys {
		need = append(need, filepath.Join(a.FunctionsDir, k, "bootstrap"))
	}
	for _, p := range need {
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			errs = append(errs, fmt.Errorf("%s is missing", p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w\nbuild them first: make build-functions build-sniffer-arm64", err)
	}
	return nil
}

// Build adds the stack configured by app's context (keys apitap:*) to
// app, with the assets under root, and applies the cdk-nag checks.
func Build(app awscdk.App, root string) (*Stack, error) {
	cfg, err := FromContext(func(key string) any { return app.Node().TryGetContext(jsii.String(key)) })
	if err != nil {
		return nil, err
	}
	s, err := New(app, Props{Config: cfg, Assets: AssetsIn(root)})
	if err != nil {
		return nil, err
	}
	Check(app)
	return s, nil
}

// Props configure New.
type Props struct {
	Config Config
	Assets Assets
}

// Stack is the synthesized stack and the constructs tests look at.
type Stack struct {
	awscdk.Stack
	Config Config
	Names  Names

	notify notifications
	fl     fleet
	mr     mirror
	fns    functions
	trl    *trail
	// diagnoses is the table of published diagnoses and remediations.
	diagnoses awsdynamodb.Table
}

// New adds apitap's stack to scope. The configuration must be valid (see
// FromContext); the assets must exist.
func New(scope constructs.Construct, p Props) (*Stack, error) {
	cfg := p.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := p.Assets.Check(); err != nil {
		return nil, err
	}
	unit, err := os.ReadFile(p.Assets.SnifferUnit)
	if err != nil {
		return nil, err
	}
	names := NamesFor(cfg)
	st := awscdk.NewStack(scope, jsii.String(cfg.StackName), &awscdk.StackProps{
		StackName:   jsii.String(cfg.StackName),
		Env:         &awscdk.Environment{Account: jsii.String(cfg.Account), Region: jsii.String(cfg.Region)},
		Description: jsii.String("apitap: VPC Traffic Mirroring of selected load balancers' targets to a sniffer fleet that publishes API traffic to Kafka"),
	})
	awscdk.Tags_Of(st).Add(jsii.String(TagStack), jsii.String(cfg.StackName), nil)
	s := &Stack{Stack: st, Config: cfg, Names: names}

	// The VPC comes from context, never from a lookup: synth needs no
	// credentials.
	ids, zones := cfg.SubnetIDs()
	vpc := awsec2.Vpc_FromVpcAttributes(st, jsii.String("Vpc"), &awsec2.VpcAttributes{
		VpcId:             jsii.String(cfg.VPCID),
		VpcCidrBlock:      jsii.String(cfg.VPCCIDRs[0]),
		AvailabilityZones: jsii.Strings(cfg.AvailabilityZones()...),
	})
	var subnets []awsec2.ISubnet
	for i, id := range ids {
		sub := awsec2.Subnet_FromSubnetAttributes(st, jsii.String("Subnet"+fmt.Sprint(i)), &awsec2.SubnetAttributes{
			SubnetId:         jsii.String(id),
			AvailabilityZone: jsii.String(zones[i]),
		})
		// Nothing here reads route tables: the stack adds no routes.
		awscdk.Annotations_Of(sub).AcknowledgeWarning(jsii.String("@aws-cdk/aws-ec2:noSubnetRouteTableId"),
			jsii.String("the stack adds no routes"))
		subnets = append(subnets, sub)
	}
	net := network{vpc: vpc, subnets: &awsec2.SubnetSelection{Subnets: &subnets}}

	n := s.notifications()
	fleet := s.fleet(net, n, string(unit), p.Assets)
	mirror := s.mirror(net, fleet)
	fns := s.functions(mirror, fleet, n, p.Assets)
	s.events(fns, mirror, n)
	if cfg.CreateTrail {
		s.trl = s.trail()
	}
	s.monitoring(fleet, mirror, fns, n)
	s.notify, s.fl, s.mr, s.fns = n, fleet, mirror, fns

	out := func(id, value, desc string) {
		awscdk.NewCfnOutput(st, jsii.String(id), &awscdk.CfnOutputProps{Value: jsii.String(value), Description: jsii.String(desc)})
	}
	out("MirrorTargetId", *mirror.target.Ref(), "traffic mirror target (the internal NLB)")
	out("MirrorFilterId", *mirror.filter.Ref(), "traffic mirror filter")
	out("NlbDnsName", *mirror.nlb.LoadBalancerDnsName(), "internal NLB in front of the sniffers")
	out("NotificationTopicArn", *n.topic.TopicArn(), "SNS topic of alarms and fleet notifications")

	s.suppressions()
	return s, nil
}

type network struct {
	vpc     awsec2.IVpc
	subnets *awsec2.SubnetSelection
}

// notifications is the SNS topic, its key, and the queue of events no
// function could handle.
type notifications struct {
	key    awskms.Key
	topic  awssns.Topic
	failed awssqs.Queue
}

// alarmARNs are the ARNs of every alarm of the stack.
func (s *Stack) alarmARNs() []string {
	var out []string
	for _, name := range s.AlarmNames() {
		out = append(out, fmt.Sprintf("arn:%s:cloudwatch:%s:%s:alarm:%s", s.Config.Partition(), s.Config.Region, s.Config.Account, name))
	}
	return out
}

// slrAutoScaling is the ARN of the Auto Scaling service-linked role.
func (s *Stack) slrAutoScaling() string {
	return fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", s.Config.Partition(), s.Config.Account)
}

func (s *Stack) notifications() notifications {
	cfg, st := s.Config, s.Stack
	// SNS topics encrypted with the AWS managed key cannot receive
	// CloudWatch alarms: the stack's own key lets CloudWatch and the Auto
	// Scaling service-linked role (fleet notifications) publish.
	key := awskms.NewKey(st, jsii.String("NotificationKey"), &awskms.KeyProps{
		Description:       jsii.String("apitap " + cfg.StackName + ": encrypts the notification topic"),
		EnableKeyRotation: jsii.Bool(true),
		PendingWindow:     awscdk.Duration_Days(jsii.Number(7)),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		Conditions: &map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": cfg.Account}},
	}), nil)
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("AutoScalingNotificationsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewArnPrincipal(jsii.String(s.slrAutoScaling()))},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)
	topic := awssns.NewTopic(st, jsii.String("Notifications"), &awssns.TopicProps{
		TopicName:   jsii.String(s.Names.Topic),
		DisplayName: jsii.String("apitap " + cfg.StackName),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	// EnforceSSL gives the topic a policy of its own, which replaces SNS's
	// default policy: nothing in it lets CloudWatch publish any more, so
	// the stack's alarms are allowed by name, from this account only
	// (docs/aws.md, "Notifications"). The Auto Scaling service-linked
	// role publishes fleet notifications with its own IAM permissions
	// (same account), which the TLS-only Deny does not touch.
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*topic.TopicArn()),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": cfg.Account},
			"ArnLike":      map[string]any{"aws:SourceArn": s.alarmARNs()},
		},
	}))
	if cfg.NotificationEmail != "" {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(cfg.NotificationEmail), nil))
	}
	failed := awssqs.NewQueue(st, jsii.String("FailedEvents"), &awssqs.QueueProps{
		QueueName:       jsii.String(s.Names.FailureQueue),
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	return notifications{key: key, topic: topic, failed: failed}
}
