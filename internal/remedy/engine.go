package remedy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/apitap/apitap/internal/diagnose"
	"github.com/apitap/apitap/internal/opsview"
	"github.com/apitap/apitap/internal/stackconfig"
)

// The AWS APIs the engine reads and (for enabled classes) changes.
type (
	StackEvents interface {
		DescribeStackEvents(context.Context, *cloudformation.DescribeStackEventsInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	}
	Fleet interface {
		DescribeAutoScalingGroups(context.Context, *autoscaling.DescribeAutoScalingGroupsInput, ...func(*autoscaling.Options)) (*autoscaling.DescribeAutoScalingGroupsOutput, error)
		UpdateAutoScalingGroup(context.Context, *autoscaling.UpdateAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.UpdateAutoScalingGroupOutput, error)
		TerminateInstanceInAutoScalingGroup(context.Context, *autoscaling.TerminateInstanceInAutoScalingGroupInput, ...func(*autoscaling.Options)) (*autoscaling.TerminateInstanceInAutoScalingGroupOutput, error)
	}
	Keys interface {
		GetKeyPolicy(context.Context, *kms.GetKeyPolicyInput, ...func(*kms.Options)) (*kms.GetKeyPolicyOutput, error)
		PutKeyPolicy(context.Context, *kms.PutKeyPolicyInput, ...func(*kms.Options)) (*kms.PutKeyPolicyOutput, error)
	}
	Invoker interface {
		Invoke(context.Context, *lambda.InvokeInput, ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
	}
)

// Config is what the engine knows of the stack.
type Config struct {
	// Stack is the configuration the functions were deployed with: the
	// instance types and subnets a remedy may choose from, the classes
	// that act, the cooldown.
	Stack       stackconfig.Config
	FleetGroup  string // the sniffers' Auto Scaling group
	VolumeKey   string // the stack's own EBS key (ARN)
	SnifferTG   string // the sniffers' target group
	ReconcileFn string // the reconcile function's name
}

// Engine diagnoses, reports once, and remediates the enabled classes.
type Engine struct {
	Cfg     Config
	Report  *Reporter
	Events  StackEvents
	Fleet   Fleet
	Keys    Keys
	Invoker Invoker
	// Targets and Status feed Health: the sniffers' target group, and the
	// status command's view of the stack.
	Targets TargetHealth
	Status  StatusFunc
	// Sources lists the instances mirrored (our sessions'), and Metrics
	// reads their skip metrics.
	Sources func(ctx context.Context) ([]string, error)
	Metrics opsview.MetricsReader
	Log     *slog.Logger
}

// MaxEventPages bounds how far back DescribeStackEvents is read for one
// failed operation (100 events a page).
const MaxEventPages = 10

// StackFailed diagnoses a failed operation of the stack (its root cause,
// docs/stack.md), reports it once, and remediates it if enabled.
func (e *Engine) StackFailed(ctx context.Context, stackID, token string) error {
	var events []diagnose.StackEvent
	p := cloudformation.NewDescribeStackEventsPaginator(e.Events, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID)})
	for page := 0; p.HasMorePages() && page < MaxEventPages; page++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describing the events of %s: %w", stackID, err)
		}
		for _, ev := range out.StackEvents {
			events = append(events, diagnose.StackEvent{
				Timestamp: aws.ToTime(ev.Timestamp), LogicalID: aws.ToString(ev.LogicalResourceId), PhysicalID: aws.ToString(ev.PhysicalResourceId),
				ResourceType: aws.ToString(ev.ResourceType), Status: string(ev.ResourceStatus), Reason: aws.ToString(ev.ResourceStatusReason),
				ClientRequestToken: aws.ToString(ev.ClientRequestToken),
			})
		}
		if token != "" && len(events) > 0 && olderThanOperation(out.StackEvents, token) {
			break // the operation's first event is read
		}
	}
	cause, ok := diagnose.RootCause(events, token)
	if !ok {
		e.Log.Info("failed stack operation without a failed resource event", "stack", stackID, "token", token)
		return nil
	}
	return e.handle(ctx, diagnose.Diagnose(diagnose.FromStackEvent(cause.Event), e.Cfg.Stack))
}

// olderThanOperation reports whether the page reached events of an
// earlier operation (events come newest first).
func olderThanOperation(page []cftypes.StackEvent, token string) bool {
	return len(page) > 0 && aws.ToString(page[len(page)-1].ClientRequestToken) != token
}

// LaunchFailed diagnoses an "EC2 Instance Launch Unsuccessful" of the
// fleet's group (other groups are the applications'; not ours to act on).
func (e *Engine) LaunchFailed(ctx context.Context, group, code, message, zone string, at time.Time) error {
	if group != e.Cfg.FleetGroup {
		return nil
	}
	return e.handle(ctx, diagnose.Diagnose(diagnose.FromActivity(group, code, message, zone, at), e.Cfg.Stack))
}

// handle reports d once and, the first time, remediates it if its class
// is enabled and its turn has come.
func (e *Engine) handle(ctx context.Context, d diagnose.Diagnosis) error {
	first, err := e.Report.Report(ctx, KindDiagnosis, Report{Class: string(d.Class), Resource: d.Resource, Cause: string(d.Class),
		Evidence: d.Evidence, Fix: d.Fix, Key: d.Key()})
	if err != nil || !first {
		return err
	}
	switch d.Class {
	case diagnose.InsufficientCapacity, diagnose.TypeNotOffered:
		return e.remedyPlacement(ctx, d)
	case diagnose.KMSLaunch:
		return e.remedyKey(ctx, d)
	}
	return nil
}

func (e *Engine) cooldown() time.Duration {
	return time.Duration(e.Cfg.Stack.RemediationCooldownMinutes) * time.Minute
}

// turn reports whether class may act now: enabled, and its cooldown over.
func (e *Engine) turn(ctx context.Context, class string) (bool, error) {
	if !e.Cfg.Stack.Remediates(class) {
		e.Log.Info("remediation not enabled: reported only", "class", class)
		return false, nil
	}
	ok, err := e.Report.Acquire(ctx, class, e.cooldown())
	if err == nil && !ok {
		e.Log.Info("remediation waits for its cooldown", "class", class, "cooldown", e.cooldown())
	}
	return ok, err
}

// remedyPlacement moves the fleet off the failing type or zone, within the
// configured lists only.
func (e *Engine) remedyPlacement(ctx context.Context, d diagnose.Diagnosis) error {
	if ok, err := e.turn(ctx, "capacity"); !ok || err != nil {
		return err
	}
	out, err := e.Fleet.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{e.Cfg.FleetGroup}})
	if err != nil || len(out.AutoScalingGroups) == 0 {
		return fmt.Errorf("describing the fleet %s: %v", e.Cfg.FleetGroup, err)
	}
	g := out.AutoScalingGroups[0]
	if g.MixedInstancesPolicy == nil || g.MixedInstancesPolicy.LaunchTemplate == nil {
		return fmt.Errorf("the fleet %s has no mixed instances policy to change", e.Cfg.FleetGroup)
	}
	var current diagnose.Placement
	for _, o := range g.MixedInstancesPolicy.LaunchTemplate.Overrides {
		current.InstanceTypes = append(current.InstanceTypes, aws.ToString(o.InstanceType))
	}
	for _, s := range strings.Split(aws.ToString(g.VPCZoneIdentifier), ",") {
		if s = strings.TrimSpace(s); s != "" {
			current.Subnets = append(current.Subnets, s)
		}
	}
	plan := diagnose.PlanPlacement(current, e.Cfg.Stack.InstanceTypes, e.Cfg.Stack.Subnets, d.Detail.InstanceType, d.Detail.Zone)
	if !plan.Change {
		e.Log.Info("no placement change", "why", plan.Why)
		return nil
	}
	var overrides []astypes.LaunchTemplateOverrides
	for _, t := range plan.Placement.InstanceTypes {
		overrides = append(overrides, astypes.LaunchTemplateOverrides{InstanceType: aws.String(t)})
	}
	_, err = e.Fleet.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(e.Cfg.FleetGroup),
		MixedInstancesPolicy: &astypes.MixedInstancesPolicy{LaunchTemplate: &astypes.LaunchTemplate{
			LaunchTemplateSpecification: g.MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification,
			Overrides:                   overrides,
		}},
		VPCZoneIdentifier: aws.String(strings.Join(plan.Placement.Subnets, ",")),
	})
	if err != nil {
		return fmt.Errorf("updating the fleet %s's types and subnets: %w", e.Cfg.FleetGroup, err)
	}
	return e.Report.Remediated(ctx, Report{Class: string(d.Class), Resource: e.Cfg.FleetGroup, Key: d.Key(), Cause: plan.Why,
		Changed: fmt.Sprintf("instance types %v -> %v, subnets %v -> %v", plan.Previous.InstanceTypes, plan.Placement.InstanceTypes,
			plan.Previous.Subnets, plan.Placement.Subnets),
		Undo: plan.Undo})
}

// remedyKey adds the Auto Scaling role's grant to the stack's own key; a
// launch failing on another key is reported only.
func (e *Engine) remedyKey(ctx context.Context, d diagnose.Diagnosis) error {
	if ok, err := e.turn(ctx, "kms"); !ok || err != nil {
		return err
	}
	out, err := e.Keys.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(e.Cfg.VolumeKey), PolicyName: aws.String("default")})
	if err != nil {
		return fmt.Errorf("reading the policy of %s: %w", e.Cfg.VolumeKey, err)
	}
	plan, err := diagnose.PlanKeyPolicy([]byte(aws.ToString(out.Policy)), e.Cfg.Stack.Partition(), e.Cfg.Stack.Account)
	if err != nil {
		return err
	}
	if !plan.Change {
		// The stack's key is right: the failing key is another one.
		e.Log.Info("the stack's key already lets Auto Scaling use it: reported only", "key", e.Cfg.VolumeKey, "why", plan.Why)
		return nil
	}
	if _, err := e.Keys.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: aws.String(e.Cfg.VolumeKey), PolicyName: aws.String("default"),
		Policy: aws.String(string(plan.Policy))}); err != nil {
		return fmt.Errorf("updating the policy of %s: %w", e.Cfg.VolumeKey, err)
	}
	return e.Report.Remediated(ctx, Report{Class: string(d.Class), Resource: e.Cfg.VolumeKey, Key: d.Key(), Cause: plan.Why,
		Changed: "added key policy statements " + strings.Join(plan.Added, ", "),
		Undo:    "remove the statements " + strings.Join(plan.Added, ", ") + " from the key policy (the next stack update also restores the stack's policy)"})
}

// ReconcileNow asks for a reconcile at once (an asynchronous invocation)
// when a pass left work for lack of time, if "sessions" is enabled.
func (e *Engine) ReconcileNow(ctx context.Context, why string) error {
	if ok, err := e.turn(ctx, "sessions"); !ok || err != nil {
		return err
	}
	if _, err := e.Invoker.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(e.Cfg.ReconcileFn),
		InvocationType: lambdatypes.InvocationTypeEvent, Payload: []byte(`{"source":"apitap","detail-type":"Reconcile Now","detail":{}}`)}); err != nil {
		return fmt.Errorf("invoking %s: %w", e.Cfg.ReconcileFn, err)
	}
	return e.Report.Remediated(ctx, Report{Class: "sessions", Resource: e.Cfg.ReconcileFn, Key: "sessions#" + why, Cause: why,
		Changed: "a reconcile started at once", Undo: "nothing to undo: the reconcile only brings the sessions to the plan"})
}
