package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudtrail"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/jsii-runtime-go"
)

// Rule is one EventBridge rule of the stack.
type Rule struct {
	ID, Suffix, Function, Description string
}

// Rules are the stack's EventBridge rules (names are <stack>-<suffix>).
var Rules = []Rule{
	{"Ec2StateRule", "ec2-state", "instance-events", "EC2 instance state changes"},
	{"AutoScalingRule", "autoscaling", "instance-events", "Auto Scaling launches and terminations"},
	{"TargetRegistrationRule", "targets", "instance-events", "ELBv2 and Classic ELB target (de)registrations (CloudTrail)"},
	{"EcsTaskRule", "ecs-tasks", "instance-events", "ECS tasks starting and stopping (ip targets; no trail needed)"},
	{"StackStatusRule", "stack", "stack-events", "status changes of this CloudFormation stack and its resources"},
	{"ReconcileSchedule", "reconcile", "reconcile", "scheduled full reconcile"},
}

// Event patterns (docs/aws.md, "EventBridge events").
var (
	EC2States         = []string{"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
	AutoScalingEvents = []string{
		"EC2 Instance Launch Successful", "EC2 Instance Terminate Successful",
		"EC2 Instance Launch Unsuccessful", "EC2 Instance Terminate Unsuccessful",
	}
	// ECSTaskStatuses are the task states that change what is mirrored:
	// a task's ENI exists from RUNNING and goes after STOPPED.
	ECSTaskStatuses   = []string{"RUNNING", "STOPPED"}
	RegistrationCalls = []string{
		"RegisterTargets", "DeregisterTargets", // ELBv2
		"RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer", // Classic
	}
)

const EventRetries = 4

func (s *Stack) events(fns functions, m mirror, n notifications) {
	cfg, st := s.Config, s.Stack
	patterns := map[string]*awsevents.EventPattern{
		"Ec2StateRule": {
			Source:     jsii.Strings("aws.ec2"),
			DetailType: jsii.Strings("EC2 Instance State-change Notification"),
			Detail:     &map[string]any{"state": EC2States},
		},
		"AutoScalingRule": {
			Source:     jsii.Strings("aws.autoscaling"),
			DetailType: jsii.Strings(AutoScalingEvents...),
		},
		"TargetRegistrationRule": {
			Source:     jsii.Strings("aws.elasticloadbalancing"),
			DetailType: jsii.Strings("AWS API Call via CloudTrail"),
			Detail: &map[string]any{
				"eventSource": []string{"elasticloadbalancing.amazonaws.com"},
				"eventName":   RegistrationCalls,
			},
		},
		// ECS publishes task state changes without a trail, so ip targets
		// (Fargate and other awsvpc tasks) are mirrored within seconds,
		// not at the next reconcile. The pattern filters on top-level
		// fields only: whether a pattern can match fields of objects
		// inside an array (the task's attachments) is not documented, so
		// the handler keeps the tasks whose ENI is in the stack's VPC
		// (docs/aws.md, "EventBridge events").
		"EcsTaskRule": {
			Source:     jsii.Strings("aws.ecs"),
			DetailType: jsii.Strings("ECS Task State Change"),
			Detail:     &map[string]any{"lastStatus": ECSTaskStatuses},
		},
		// This stack only: its id, not its name, so a deleted and
		// recreated stack of the same name is another stack.
		"StackStatusRule": {
			Source: jsii.Strings("aws.cloudformation"),
			// Resource status changes carry the failures' reasons
			// (docs/aws.md, "Diagnosis").
			DetailType: jsii.Strings("CloudFormation Stack Status Change", "CloudFormation Resource Status Change"),
			Detail:     &map[string]any{"stack-id": []*string{awscdk.Aws_STACK_ID()}},
		},
	}

	// Teardown: on stack deletion CloudFormation deletes the rules and the
	// other functions first (they depend on it, so nothing creates new
	// sessions any more), then this resource, whose Delete removes every
	// session the stack owns, then the mirror target and filter it
	// depends on: a target with sessions cannot be deleted.
	teardown := fns["teardown"]
	cr := awscdk.NewCustomResource(st, jsii.String("Teardown"), &awscdk.CustomResourceProps{
		ServiceToken:   teardown.fn.FunctionArn(),
		ServiceTimeout: awscdk.Duration_Seconds(jsii.Number(TeardownServiceTimeoutS)),
		ResourceType:   jsii.String("Custom::ApitapTeardown"),
		Properties: &map[string]any{
			"StackName":      cfg.StackName,
			"MirrorTargetId": m.target.Ref(),
			"MirrorFilterId": m.filter.Ref(),
		},
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	// Its properties reference the target and filter (a dependency
	// already); its log group must outlive it too.
	cr.Node().AddDependency(teardown.logs)
	for key, f := range fns {
		if key != "teardown" {
			f.fn.Node().AddDependency(cr)
		}
	}

	for _, r := range Rules {
		props := &awsevents.RuleProps{
			RuleName:    jsii.String(s.Names.RulePrefix + r.Suffix),
			Description: jsii.String("apitap " + cfg.StackName + ": " + r.Description),
			Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fns[r.Function].fn, &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: n.failed,
				RetryAttempts:   jsii.Number(EventRetries),
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(MaxEventAgeHours)),
			})},
		}
		if p, ok := patterns[r.ID]; ok {
			props.EventPattern = p
		} else {
			props.Schedule = awsevents.Schedule_Expression(jsii.String(cfg.ReconcileSchedule))
		}
		rule := awsevents.NewRule(st, jsii.String(r.ID), props)
		rule.Node().AddDependency(cr)
	}
}

// TrailRetentionDays is how long the optional trail's logs are kept.
const TrailRetentionDays = 90

// trail records management write events, so that target registrations
// reach EventBridge in accounts without a trail. Its bucket is kept when
// the stack is deleted: it holds audit logs.
type trail struct {
	bucket awss3.Bucket
	trail  awscloudtrail.Trail
}

func (s *Stack) trail() *trail {
	st := s.Stack
	bucket := awss3.NewBucket(st, jsii.String("TrailBucket"), &awss3.BucketProps{
		BucketName:        jsii.String(s.Names.TrailBucket),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		Versioned:         jsii.Bool(true),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     awscdk.RemovalPolicy_RETAIN,
		LifecycleRules: &[]*awss3.LifecycleRule{{
			Expiration:                  awscdk.Duration_Days(jsii.Number(TrailRetentionDays)),
			NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(1)),
		}},
	})
	t := awscloudtrail.NewTrail(st, jsii.String("Trail"), &awscloudtrail.TrailProps{
		TrailName:                  jsii.String(s.Names.Trail),
		Bucket:                     bucket,
		ManagementEvents:           awscloudtrail.ReadWriteType_WRITE_ONLY,
		IsMultiRegionTrail:         jsii.Bool(false),
		IncludeGlobalServiceEvents: jsii.Bool(false),
		EnableFileValidation:       jsii.Bool(true),
		SendToCloudWatchLogs:       jsii.Bool(false),
	})
	return &trail{bucket: bucket, trail: t}
}
