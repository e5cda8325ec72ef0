package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/internal/contract"
)

// FunctionSpec is how one function is deployed.
type FunctionSpec struct {
	Key         string // its folder under functions/
	ID          string // construct id
	Description string
	Timeout     int // seconds
	// Creates is whether it creates sessions (the teardown only deletes).
	Creates bool
	// Command is an operator command: invoked on demand, reads only.
	Command bool
}

// FunctionSpecs are the orchestrator's four functions (README "The
// orchestrator") and the three operator commands (README "Deploying").
var FunctionSpecs = []FunctionSpec{
	{Key: "instance-events", ID: "InstanceEvents", Timeout: 120, Creates: true,
		Description: "apitap: mirror or unmirror an instance or target on EC2, Auto Scaling and target registration events"},
	{Key: "stack-events", ID: "StackEvents", Timeout: 300, Creates: true,
		Description: "apitap: full reconcile when the stack is created or updated"},
	{Key: "reconcile", ID: "Reconcile", Timeout: 300, Creates: true,
		Description: "apitap: scheduled full reconcile of the stack's mirror sessions"},
	{Key: "teardown", ID: "Teardown", Timeout: TeardownTimeoutS,
		Description: "apitap: custom resource deleting the stack's mirror sessions before the mirror target"},
	{Key: contract.CmdConnections, ID: "Connections", Timeout: 300, Command: true,
		Description: "apitap: on demand, every load balancer of the region and what can be mirrored"},
	{Key: contract.CmdPreflight, ID: "Preflight", Timeout: 300, Command: true,
		Description: "apitap: on demand, the account checks of the first deploy"},
	{Key: contract.CmdStatus, ID: "Status", Timeout: 300, Command: true,
		Description: "apitap: on demand, sessions, last reconcile and traffic per selected load balancer"},
}

const (
	// TeardownTimeoutS is the teardown function's timeout, and
	// TeardownServiceTimeoutS how long CloudFormation waits for its answer
	// (the custom resource's ServiceTimeout): the function stops working
	// before its own deadline to answer, so the answer always comes
	// before CloudFormation gives up, and a broken teardown holds a
	// stack deletion for 15 minutes, not an hour.
	TeardownTimeoutS        = 840
	TeardownServiceTimeoutS = 900
	FunctionMemoryMB        = 256
	AsyncRetries            = 2
	MaxEventAgeHours        = 1
)

type function struct {
	spec FunctionSpec
	fn   awslambda.Function
	role awsiam.Role
	logs awslogs.LogGroup
}

type functions map[string]*function

func (s *Stack) functions(m mirror, f fleet, n notifications, assets Assets) functions {
	cfg, st := s.Config, s.Stack
	// Diagnoses published once each, and remediation actions with their
	// times (the cooldown): small items, read by key.
	diagnoses := awsdynamodb.NewTable(st, jsii.String("Diagnoses"), &awsdynamodb.TableProps{
		TableName:                        jsii.String(s.Names.Diagnoses),
		PartitionKey:                     &awsdynamodb.Attribute{Name: jsii.String(contract.DiagnosisKey), Type: awsdynamodb.AttributeType_STRING},
		BillingMode:                      awsdynamodb.BillingMode_PAY_PER_REQUEST,
		TimeToLiveAttribute:              jsii.String(contract.DiagnosisExpires),
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: jsii.Bool(true)},
		RemovalPolicy:                    awscdk.RemovalPolicy_DESTROY,
	})
	s.diagnoses = diagnoses
	var subnets []string
	ids, zones := cfg.SubnetIDs()
	for i, id := range ids {
		subnets = append(subnets, id+"="+zones[i])
	}
	env := map[string]*string{
		contract.EnvStackName:     jsii.String(cfg.StackName),
		contract.EnvTargetID:      m.target.Ref(),
		contract.EnvFilterID:      m.filter.Ref(),
		contract.EnvMirrorNLBARN:  m.nlb.LoadBalancerArn(),
		contract.EnvVPCID:         jsii.String(cfg.VPCID),
		contract.EnvLBARNs:        jsii.String(strings.Join(cfg.LoadBalancerARNs, ",")),
		contract.EnvLBTags:        jsii.String(joinTags(cfg.LoadBalancerTags)),
		contract.EnvSessionNumber: jsii.String(fmt.Sprint(cfg.SessionNumber)),
		contract.EnvConflict:      jsii.String(cfg.ConflictPolicy),
		contract.EnvAccountID:     awscdk.Aws_ACCOUNT_ID(),
		contract.EnvTopicARN:      n.topic.TopicArn(),
		contract.EnvDiagnoses:     diagnoses.TableName(),
		contract.EnvFleetGroup:    jsii.String(s.Names.AutoScalingGroup),
		contract.EnvSnifferTG:     m.tg.TargetGroupArn(),
		contract.EnvVolumeKey:     f.key.KeyArn(),
		contract.EnvReconcileFn:   jsii.String(s.Names.Functions[contract.FnReconcile]),
		contract.EnvInstanceTypes: jsii.String(strings.Join(cfg.InstanceTypes, ",")),
		contract.EnvSubnets:       jsii.String(strings.Join(subnets, ",")),
		contract.EnvRemediate:     jsii.String(strings.Join(cfg.Remediate, ",")),
		contract.EnvCooldown:      jsii.String(fmt.Sprint(cfg.RemediationCooldownMinutes)),
		contract.EnvUnhealthy:     jsii.String(fmt.Sprint(cfg.UnhealthyMinutes)),
	}
	out := functions{}
	for _, spec := range FunctionSpecs {
		name := s.Names.Functions[spec.Key]
		logs := awslogs.NewLogGroup(st, jsii.String(spec.ID+"Logs"), &awslogs.LogGroupProps{
			LogGroupName:  jsii.String(s.Names.LogGroups[spec.Key]),
			Retention:     awslogs.RetentionDays(retentionDays[cfg.LogRetentionDays]),
			RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		})
		role := awsiam.NewRole(st, jsii.String(spec.ID+"Role"), &awsiam.RoleProps{
			AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
			Path:        jsii.String(s.Names.RolePath),
			Description: jsii.String("apitap function " + name),
		})
		fnEnv := env
		if spec.Command {
			s.grantCommand(role, logs, spec)
		} else {
			s.grantFunction(role, logs, m, spec)
			if spec.Key != contract.FnTeardown {
				s.grantDiagnosis(role, diagnoses, n, f, spec)
			}
		}
		if spec.Key == contract.CmdPreflight {
			fnEnv = maps.Clone(env)
			fnEnv[contract.EnvConfig] = jsii.String(configJSON(cfg))
		}
		props := &awslambda.FunctionProps{
			FunctionName:  jsii.String(name),
			Description:   jsii.String(spec.Description),
			Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
			Architecture:  awslambda.Architecture_ARM_64(),
			Handler:       jsii.String("bootstrap"),
			Code:          awslambda.Code_FromAsset(jsii.String(filepath.Join(assets.FunctionsDir, spec.Key)), nil),
			Role:          role,
			LogGroup:      logs,
			Timeout:       awscdk.Duration_Seconds(jsii.Number(float64(spec.Timeout))),
			MemorySize:    jsii.Number(FunctionMemoryMB),
			Environment:   &fnEnv,
			OnFailure:     awslambdadestinations.NewSqsDestination(n.failed),
			RetryAttempts: jsii.Number(AsyncRetries),
			MaxEventAge:   awscdk.Duration_Hours(jsii.Number(MaxEventAgeHours)),
		}
		if spec.Command {
			// Invoked synchronously by a person: no retries, no queue.
			props.OnFailure, props.RetryAttempts, props.MaxEventAge = nil, jsii.Number(0), nil
		}
		// No reserved concurrency by default: it comes out of the account's
		// unreserved pool, which Lambda keeps at 100 at least, and new
		// accounts often have a concurrency quota below that, so any
		// reservation can fail the deploy. Concurrent invocations are safe
		// (docs/stack.md, "Concurrency"); whoever wants the reconcile to
		// run one at a time sets apitap:reconcileReservedConcurrency.
		if spec.Key == contract.FnReconcile && cfg.ReconcileReservedConcurrency > 0 {
			props.ReservedConcurrentExecutions = jsii.Number(float64(cfg.ReconcileReservedConcurrency))
		}
		fn := awslambda.NewFunction(st, jsii.String(spec.ID+"Function"), props)
		out[spec.Key] = &function{spec: spec, fn: fn, role: role, logs: logs}
	}
	return out
}

// grantFunction gives a function's role what its handler calls, and
// nothing else: reads are account-wide (EC2 and ELB describes have no
// resource-level permissions); session creation is limited to this
// stack's target and filter and to sessions tagged with this stack; only
// sessions tagged with this stack can be deleted.
func (s *Stack) grantFunction(role awsiam.Role, logs awslogs.LogGroup, m mirror, spec FunctionSpec) {
	cfg := s.Config
	arn := func(resource string) string {
		return fmt.Sprintf("arn:%s:ec2:%s:%s:%s", cfg.Partition(), cfg.Region, cfg.Account, resource)
	}
	add := func(sid string, actions []string, resources []string, cond map[string]any) {
		p := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}
		if cond != nil {
			p.Conditions = &cond
		}
		role.AddToPolicy(awsiam.NewPolicyStatement(p))
	}
	add("WriteLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, []string{*logs.LogGroupArn()}, nil)
	if spec.Creates {
		add("DescribeMirrorSources", []string{"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTrafficMirrorSessions"}, []string{"*"}, nil)
		add("DescribeLoadBalancers", []string{
			"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
			"elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
		}, []string{"*"}, nil)
		// A launched instance's Auto Scaling group names the target groups
		// to ask, keeping a launch within a few calls.
		add("DescribeAutoScalingGroups", []string{"autoscaling:DescribeAutoScalingGroups"}, []string{"*"}, nil)
		add("CreateSessionsFromEnis", []string{"ec2:CreateTrafficMirrorSession"}, []string{
			arn("network-interface/*"),
			arn("traffic-mirror-target/" + *m.target.Ref()),
			arn("traffic-mirror-filter/" + *m.filter.Ref()),
		}, nil)
		add("CreateOwnSessions", []string{"ec2:CreateTrafficMirrorSession"}, []string{arn("traffic-mirror-session/*")},
			map[string]any{"StringEquals": map[string]any{"aws:RequestTag/" + TagStack: cfg.StackName}})
		add("TagSessionsAtCreation", []string{"ec2:CreateTags"}, []string{arn("traffic-mirror-session/*")},
			map[string]any{"StringEquals": map[string]any{"ec2:CreateAction": "CreateTrafficMirrorSession"}})
	} else {
		add("DescribeSessions", []string{"ec2:DescribeTrafficMirrorSessions"}, []string{"*"}, nil)
	}
	add("DeleteOwnSessions", []string{"ec2:DeleteTrafficMirrorSession"}, []string{arn("traffic-mirror-session/*")},
		map[string]any{"StringEquals": map[string]any{"aws:ResourceTag/" + TagStack: cfg.StackName}})
}

// grantDiagnosis lets the event and reconcile functions diagnose and
// report (read the stack's events, metrics and fleet; publish once to the
// topic), and act only for the remediation classes the configuration
// enables.
func (s *Stack) grantDiagnosis(role awsiam.Role, table awsdynamodb.Table, n notifications, f fleet, spec FunctionSpec) {
	cfg := s.Config
	add := func(sid string, actions []string, resources ...string) {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}))
	}
	add("RecordDiagnoses", []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Scan"}, *table.TableArn())
	add("PublishDiagnoses", []string{"sns:Publish"}, *n.topic.TopicArn())
	// The topic is encrypted with the stack's key.
	add("EncryptDiagnoses", []string{"kms:GenerateDataKey", "kms:Decrypt"}, *n.key.KeyArn())
	add("ReadStackEvents", []string{"cloudformation:DescribeStackEvents"}, *awscdk.Aws_STACK_ID())
	add("ReadHealth", []string{"cloudwatch:GetMetricData"}, "*")
	group := fmt.Sprintf("arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s", cfg.Partition(), cfg.Region, cfg.Account, s.Names.AutoScalingGroup)
	if cfg.Remediates("capacity") {
		add("RemedyCapacity", []string{"autoscaling:UpdateAutoScalingGroup"}, group)
	}
	if cfg.Remediates("kms") {
		add("RemedyKms", []string{"kms:GetKeyPolicy", "kms:PutKeyPolicy"}, *f.key.KeyArn())
	}
	if cfg.Remediates("sessions") {
		add("RemedySessions", []string{"lambda:InvokeFunction"}, fmt.Sprintf("arn:%s:lambda:%s:%s:function:%s", cfg.Partition(), cfg.Region, cfg.Account, s.Names.Functions[contract.FnReconcile]))
	}
	if cfg.Remediates("sniffers") {
		add("RemedySniffers", []string{"autoscaling:TerminateInstanceInAutoScalingGroup"}, group)
	}
}

// grantCommand gives an operator command read access: the orchestrator's
// describes, CloudWatch metrics for status, and what preflight checks.
func (s *Stack) grantCommand(role awsiam.Role, logs awslogs.LogGroup, spec FunctionSpec) {
	cfg := s.Config
	add := func(sid string, actions []string, resources []string) {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: jsii.Strings(resources...)}))
	}
	add("WriteLogs", []string{"logs:CreateLogStream", "logs:PutLogEvents"}, []string{*logs.LogGroupArn()})
	add("DescribeMirrorSources", []string{"ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeTrafficMirrorSessions",
		"ec2:DescribeTrafficMirrorTargets"}, []string{"*"})
	add("DescribeLoadBalancers", []string{"elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
		"elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags"}, []string{"*"})
	switch spec.Key {
	case contract.CmdStatus:
		add("ReadMetrics", []string{"cloudwatch:GetMetricData"}, []string{"*"})
	case contract.CmdPreflight:
		add("DescribeNetwork", []string{"ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeInstanceTypeOfferings"}, []string{"*"})
		add("ReadAutoScalingRole", []string{"iam:GetRole"}, []string{fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", cfg.Partition(), cfg.Account)})
		add("ReadAccountSettings", []string{"lambda:GetAccountSettings", "cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus",
			"cloudtrail:GetEventSelectors", "servicequotas:ListServiceQuotas"}, []string{"*"})
	}
}

// configJSON is the whole configuration for the preflight function.
func configJSON(c Config) string {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a Config of strings, numbers and maps always marshals
	}
	return string(b)
}

func joinTags(tags map[string]string) string {
	var kv []string
	for k, v := range tags {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
