package stack

import (
	"fmt"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/apitap/apitap/internal/contract"
)

// Check applies the cdk-nag AwsSolutions rules to every stack in scope:
// each finding that is not suppressed (with its reason, below) is an
// error annotation, and `cdk synth` fails on it.
func Check(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose: jsii.Bool(true),
		Reports: jsii.Bool(false),
	}), nil)
}

// suppression is a cdk-nag rule suppressed on a construct and its
// children, with the reason.
type suppression struct {
	id, reason string
	appliesTo  []string
}

func suppress(c constructs.IConstruct, sups ...suppression) {
	var list []*cdknag.NagPackSuppression
	for _, s := range sups {
		p := &cdknag.NagPackSuppression{Id: jsii.String(s.id), Reason: jsii.String(s.reason)}
		if len(s.appliesTo) > 0 {
			var at []any
			for _, a := range s.appliesTo {
				at = append(at, a)
			}
			p.AppliesTo = &at
		}
		list = append(list, p)
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &list, jsii.Bool(true))
}

// Reasons for wildcards that IAM offers no alternative to.
const (
	reasonDescribe = "EC2 DescribeInstances, DescribeNetworkInterfaces, DescribeTrafficMirrorSessions and the " +
		"Elastic Load Balancing Describe* actions support no resource-level permissions: IAM requires Resource \"*\" for them"
	reasonENI = "the mirror sources are the ENIs of whatever targets the selected load balancers have at run time; " +
		"the session's other resources (this stack's mirror target and filter) are named exactly"
	reasonSession = "session ids do not exist before creation: creation is allowed only for sessions tagged " +
		"apitap:stack=<this stack> (aws:RequestTag), tagging only within CreateTrafficMirrorSession (ec2:CreateAction), " +
		"deletion only of sessions tagged apitap:stack=<this stack> (aws:ResourceTag)"
	reasonPutMetricData = "cloudwatch:PutMetricData supports no resource-level permissions; the statement is limited " +
		"to the sniffers' namespace by the cloudwatch:namespace condition. The Session Manager actions " +
		"(ssm:UpdateInstanceInformation, ssmmessages:*Channel) support no resource-level permissions either"
	reasonSessionManager = "Session Manager is the only way into a sniffer (no SSH, no key pair); its agent's actions " +
		"(ssm:UpdateInstanceInformation, ssmmessages:*Channel) support no resource-level permissions"
)

// checkovSkip marks checkov checks as skipped on a resource, each with
// its reason: checkov reads Metadata.checkov.skip of the CloudFormation
// resource.
func checkovSkip(c constructs.IConstruct, sups ...suppression) {
	var skips []map[string]string
	for _, s := range sups {
		skips = append(skips, map[string]string{"id": s.id, "comment": s.reason})
	}
	cfnResource(c).AddMetadata(jsii.String("checkov"), map[string]any{"skip": skips})
}

// cfnResource is c itself when it is a CloudFormation resource, or else
// its default child.
func cfnResource(c constructs.IConstruct) awscdk.CfnResource {
	if r, ok := c.(awscdk.CfnResource); ok {
		return r
	}
	return c.Node().DefaultChild().(awscdk.CfnResource)
}

// Reasons shared by several resources.
const (
	reasonLambdaVPC = "the functions call only AWS APIs (EC2, ELB); inside the VPC they would need a NAT gateway or " +
		"interface endpoints in the user's VPC, and they handle no data of the VPC's"
	reasonLambdaEnv = "the environment holds resource ids and settings only, no secrets; Lambda encrypts it at rest"
	reasonLambdaDLQ = "asynchronous failures go to the SQS queue <stack>-failed-events through the on-failure " +
		"destination (AWS::Lambda::EventInvokeConfig), the successor of DeadLetterConfig"
	reasonLambdaConcurrency = "no concurrency is reserved by default: a reservation comes out of the account's unreserved pool, " +
		"which Lambda keeps at 100 at least, so it fails the deploy in accounts with a low concurrency quota; concurrent " +
		"invocations are safe by design (apitap:reconcileReservedConcurrency reserves some for the reconcile)"
	reasonLogsKMS = "the log lines hold resource ids and counts, never mirrored traffic; CloudWatch Logs encrypts " +
		"them at rest with its own key"
	reasonSQSKMS = "SSE-SQS (SqsManagedSseEnabled) encrypts the queue; a customer managed key would need wildcard " +
		"kms:GenerateDataKey* grants in the functions' roles, which must have no wildcard actions"
)

func (s *Stack) suppressions() {
	c := s.Config
	arn := func(resource string) string {
		return fmt.Sprintf("Resource::arn:%s:ec2:%s:%s:%s", c.Partition(), c.Region, c.Account, resource)
	}

	suppress(s.notify.failed,
		suppression{id: "AwsSolutions-SQS3", reason: "this queue is itself the dead-letter queue and on-failure destination of the rules and functions"})
	checkovSkip(s.notify.failed, suppression{id: "CKV_AWS_27", reason: reasonSQSKMS})

	suppress(s.mr.nlb,
		suppression{id: "AwsSolutions-ELB2", reason: "NLB access logs are written for TLS listeners only; this NLB has a single UDP listener (VXLAN)"})
	checkovSkip(s.mr.nlb,
		suppression{id: "CKV_AWS_91", reason: "NLB access logs are written for TLS listeners only; this NLB has a single UDP listener (VXLAN)"})

	suppress(s.fl.role, suppression{id: "AwsSolutions-IAM5", reason: reasonPutMetricData, appliesTo: []string{"Resource::*"}})
	checkovSkip(s.fl.role.Node().FindChild(jsii.String("DefaultPolicy")), suppression{id: "CKV_AWS_111", reason: reasonSessionManager})
	checkovSkip(s.diagnoses, suppression{id: "CKV_AWS_119", reason: "the table holds diagnosis keys, times and the " +
		"remediation record, no secrets and no traffic; DynamoDB encrypts it at rest with its own key"})
	checkovSkip(s.fl.logs, suppression{id: "CKV_AWS_158", reason: "the sniffers' log lines hold counts, addresses and errors, " +
		"never mirrored payloads (records go to Kafka only); CloudWatch Logs encrypts them at rest with its own key"})
	// cfn-lint's own patch of the rule schema says ipv4-network; the EC2
	// API takes IPv4 or IPv6 ranges in mirror filter rules (docs/aws.md).
	for _, r := range s.mr.rules {
		if strings.Contains(*r.SourceCidrBlock(), ":") {
			r.AddMetadata(jsii.String("cfn-lint"), map[string]any{"config": map[string]any{"ignore_checks": []string{"E3002"}}})
		}
	}
	// cdk-nag's EC26 cannot follow a launch template referenced from a
	// mixed instances policy; the volumes are encrypted there (tested).
	suppress(s.fl.asg, suppression{id: "CdkNagValidationFailure",
		reason: "AwsSolutions-EC26 cannot read a launch template inside a mixed instances policy; the launch template encrypts every EBS volume with the stack's key"})

	for _, spec := range FunctionSpecs {
		f := s.fns[spec.Key]
		sups := []suppression{{id: "AwsSolutions-IAM5", reason: reasonDescribe, appliesTo: []string{"Resource::*"}}}
		if spec.Creates {
			sups = append(sups,
				suppression{id: "AwsSolutions-IAM5", reason: reasonENI, appliesTo: []string{arn("network-interface/*")}})
		}
		sups = append(sups, suppression{id: "AwsSolutions-IAM5", reason: reasonSession, appliesTo: []string{arn("traffic-mirror-session/*")}})
		if !spec.Command && spec.Key != contract.FnTeardown && (c.Remediates("capacity") || c.Remediates("sniffers")) {
			sups = append(sups, suppression{id: "AwsSolutions-IAM5", appliesTo: []string{fmt.Sprintf("Resource::arn:%s:autoscaling:%s:%s:autoScalingGroup:*:autoScalingGroupName/%s",
				c.Partition(), c.Region, c.Account, s.Names.AutoScalingGroup)},
				reason: "an Auto Scaling group's ARN holds an id assigned at creation: the statement names the fleet's group by its name"})
		}
		suppress(f.role, sups...)

		skips := []suppression{
			{id: "CKV_AWS_116", reason: reasonLambdaDLQ},
			{id: "CKV_AWS_117", reason: reasonLambdaVPC},
			{id: "CKV_AWS_173", reason: reasonLambdaEnv},
		}
		if !(spec.Key == contract.FnReconcile && s.Config.ReconcileReservedConcurrency > 0) {
			skips = append(skips, suppression{id: "CKV_AWS_115", reason: reasonLambdaConcurrency})
		}
		if spec.Key == contract.CmdPreflight {
			skips = append(skips, suppression{id: "CKV_AWS_45", reason: "APITAP_CONFIG is the stack's configuration " +
				"(ids, ARNs, broker addresses); it holds no secret: a SASL password stays in Secrets Manager, named by ARN"})
		}
		checkovSkip(f.fn, skips...)
		checkovSkip(f.logs, suppression{id: "CKV_AWS_158", reason: reasonLogsKMS})
	}

	if s.trl != nil {
		const why = "the optional trail exists to deliver this region's target registration calls to EventBridge " +
			"in accounts without a trail; it is not the account's audit trail (use an organization or multi-region trail for that, " +
			"and leave createTrail false)"
		const logs = "the bucket holds only this optional trail's log files; access logs would need yet another bucket"
		suppress(s.trl.bucket, suppression{id: "AwsSolutions-S1", reason: logs})
		checkovSkip(s.trl.bucket, suppression{id: "CKV_AWS_18", reason: logs})
		checkovSkip(s.trl.trail,
			suppression{id: "CKV_AWS_67", reason: why},
			suppression{id: "CKV_AWS_35", reason: "log files are encrypted with SSE-S3 in a private, TLS-only bucket; " + why})
	}
}
