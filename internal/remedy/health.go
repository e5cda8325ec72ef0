package remedy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/opsview"
)

// Health conditions, checked on the reconcile's schedule. Each is reported
// once while it lasts and "resolved" when it clears.
const (
	ClassSniffersUnhealthy = "SniffersUnhealthy"
	ClassSilent            = "SessionsButNoTraffic"
)

// TargetHealth is the part of ELBv2 the health check reads.
type TargetHealth interface {
	DescribeTargetHealth(context.Context, *elbv2.DescribeTargetHealthInput, ...func(*elbv2.Options)) (*elbv2.DescribeTargetHealthOutput, error)
}

// StatusFunc is the status command's view of the stack now.
type StatusFunc func(ctx context.Context, now time.Time) (*opsview.Status, error)

// Health checks the sniffers' health in their target group and each
// selected load balancer's traffic (status's verdict), reports what is
// wrong once, resolves what cleared, and replaces a sniffer that stays
// unhealthy when "sniffers" is enabled.
func (e *Engine) Health(ctx context.Context) error {
	var errs []error
	if e.Targets != nil && e.Cfg.SnifferTG != "" {
		if err := e.sniffers(ctx, e.Targets); err != nil {
			errs = append(errs, err)
		}
	}
	if e.Status != nil {
		if err := e.traffic(ctx, e.Status); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sniffers: a target unhealthy for UnhealthyMinutes is reported, and one
// at a time (per cooldown) replaced, never when no sniffer is healthy
// (replacing would not help: the cause is elsewhere).
func (e *Engine) sniffers(ctx context.Context, targets TargetHealth) error {
	out, err := targets.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(e.Cfg.SnifferTG)})
	if err != nil {
		return fmt.Errorf("describing the sniffers' health in %s: %w", e.Cfg.SnifferTG, err)
	}
	now := e.Report.Now()
	threshold := time.Duration(e.Cfg.Stack.UnhealthyMinutes) * time.Minute
	healthy := 0
	current := map[string]bool{}
	var overdue []string
	for _, d := range out.TargetHealthDescriptions {
		id := aws.ToString(d.Target.Id)
		if d.TargetHealth == nil || d.TargetHealth.State != elbv2types.TargetHealthStateEnumUnhealthy {
			if d.TargetHealth != nil && d.TargetHealth.State == elbv2types.TargetHealthStateEnumHealthy {
				healthy++
			}
			continue
		}
		since, err := e.Report.Watch(ctx, "watch|"+ClassSniffersUnhealthy+"|"+id)
		if err != nil {
			return err
		}
		if now.Sub(since) < threshold {
			continue
		}
		key := "cond|" + ClassSniffersUnhealthy + "|" + id
		current[key] = true
		reason := string(d.TargetHealth.Reason)
		if _, err := e.Report.Report(ctx, KindCondition, Report{Class: ClassSniffersUnhealthy, Resource: id, Key: key,
			Evidence: fmt.Sprintf("unhealthy in %s since %s (%s)", e.Cfg.SnifferTG, since.UTC().Format(time.RFC3339), reason),
			Fix:      "read the sniffer's log (/apitap/" + e.Cfg.Stack.StackName + "/sniffers, stream " + id + "/sniffer); enable apitap:remediate sniffers to have it replaced"}); err != nil {
			return err
		}
		overdue = append(overdue, id)
	}
	if _, err := e.Report.Resolve(ctx, ClassSniffersUnhealthy, current); err != nil {
		return err
	}
	if err := e.Report.Unwatch(ctx, "watch|"+ClassSniffersUnhealthy+"|", out.TargetHealthDescriptions); err != nil {
		return err
	}
	if len(overdue) == 0 || healthy == 0 {
		return nil
	}
	if ok, err := e.turn(ctx, "sniffers"); !ok || err != nil {
		return err
	}
	id := overdue[0]
	if _, err := e.Fleet.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
		InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(false)}); err != nil {
		return fmt.Errorf("replacing sniffer %s: %w", id, err)
	}
	return e.Report.Remediated(ctx, Report{Class: ClassSniffersUnhealthy, Resource: id, Key: "cond|" + ClassSniffersUnhealthy + "|" + id,
		Cause:   fmt.Sprintf("unhealthy longer than %d minutes while %d sniffers are healthy", e.Cfg.Stack.UnhealthyMinutes, healthy),
		Changed: "terminated " + id + " in " + e.Cfg.FleetGroup + " (desired capacity kept: Auto Scaling launches a replacement)",
		Undo:    "nothing to undo: the group keeps its size"})
}

// traffic: a load balancer whose sessions carry no traffic (status's
// verdict) is reported with the likely causes.
func (e *Engine) traffic(ctx context.Context, status StatusFunc) error {
	st, err := status(ctx, e.Report.Now())
	if err != nil {
		return fmt.Errorf("reading the status: %w", err)
	}
	current := map[string]bool{}
	for _, lb := range st.LoadBalancers {
		if lb.Verdict != opsview.VerdictSilent {
			continue
		}
		key := "cond|" + ClassSilent + "|" + lb.ARN
		current[key] = true
		fix := ""
		for i, w := range lb.Why {
			if i > 0 {
				fix += "; "
			}
			fix += w
		}
		if _, err := e.Report.Report(ctx, KindCondition, Report{Class: ClassSilent, Resource: lb.ARN, Key: key,
			Evidence: fmt.Sprintf("%d sessions of ours, no records from VNI %d in %s", lb.Sessions, lb.VNI, opsview.TrafficWindow), Fix: fix}); err != nil {
			return err
		}
	}
	_, err = e.Report.Resolve(ctx, ClassSilent, current)
	return err
}

// Watch returns when key was first watched, starting the watch now if it
// is new.
func (p *Reporter) Watch(ctx context.Context, key string) (time.Time, error) {
	now := p.Now()
	_, err := p.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.TableName),
		Item: map[string]ddbtypes.AttributeValue{
			contract.DiagnosisKey:     &ddbtypes.AttributeValueMemberS{Value: key},
			"Kind":                    &ddbtypes.AttributeValueMemberS{Value: "watch"},
			"Since":                   &ddbtypes.AttributeValueMemberS{Value: now.UTC().Format(time.RFC3339)},
			contract.DiagnosisExpires: &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(Retention).Unix(), 10)},
		},
		ConditionExpression: aws.String("attribute_not_exists(" + contract.DiagnosisKey + ")")})
	var exists *ddbtypes.ConditionalCheckFailedException
	if err == nil {
		return now, nil
	}
	if !errors.As(err, &exists) {
		return time.Time{}, fmt.Errorf("watching %s: %w", key, err)
	}
	got, err := p.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.TableName), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: key}}})
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the watch %s: %w", key, err)
	}
	since, err := time.Parse(time.RFC3339, str(got.Item["Since"]))
	if err != nil {
		return now, nil
	}
	return since, nil
}

// Unwatch ends the watches under prefix of targets that are no longer
// unhealthy.
func (p *Reporter) Unwatch(ctx context.Context, prefix string, targets []elbv2types.TargetHealthDescription) error {
	for _, d := range targets {
		if d.TargetHealth != nil && d.TargetHealth.State == elbv2types.TargetHealthStateEnumUnhealthy {
			continue
		}
		if _, err := p.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(p.TableName),
			Key: map[string]ddbtypes.AttributeValue{contract.DiagnosisKey: &ddbtypes.AttributeValueMemberS{Value: prefix + aws.ToString(d.Target.Id)}}}); err != nil {
			return fmt.Errorf("ending the watch of %s: %w", aws.ToString(d.Target.Id), err)
		}
	}
	return nil
}
