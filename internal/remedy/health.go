package remedy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
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
	ClassSkipped           = "MirrorSkipped"
)

// SkipMetrics are the per-instance CloudWatch metrics (AWS/EC2, dimension
// InstanceId) of mirrored traffic the source dropped because its own
// traffic came first (docs/aws.md, "Traffic Mirroring").
var SkipMetrics = []string{"NetworkSkipMirrorOut", "NetworkPacketsSkipMirrorOut"}

// SkipWindow is the period the skip metrics are summed over.
const SkipWindow = 10 * time.Minute

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
	if e.Sources != nil && e.Metrics != nil {
		if err := e.skipped(ctx); err != nil {
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

// skipped: a mirrored source whose skip metrics rose in the last window
// loses mirrored packets under its own load (the sniffers see gaps).
func (e *Engine) skipped(ctx context.Context) error {
	ids, err := e.Sources(ctx)
	if err != nil {
		return fmt.Errorf("listing the mirrored instances: %w", err)
	}
	now := e.Report.Now().Truncate(time.Minute)
	current := map[string]bool{}
	for start := 0; start < len(ids); start += 250 { // 2 queries an instance, 500 a call
		chunk := ids[start:min(start+250, len(ids))]
		var queries []cwtypes.MetricDataQuery
		for i, id := range chunk {
			for j, m := range SkipMetrics {
				queries = append(queries, cwtypes.MetricDataQuery{Id: aws.String(fmt.Sprintf("m%d_%d", i, j)), MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("AWS/EC2"), MetricName: aws.String(m),
						Dimensions: []cwtypes.Dimension{{Name: aws.String("InstanceId"), Value: aws.String(id)}}},
					Period: aws.Int32(int32(SkipWindow / time.Second)), Stat: aws.String("Sum")}})
			}
		}
		out, err := e.Metrics.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{MetricDataQueries: queries,
			StartTime: aws.Time(now.Add(-SkipWindow)), EndTime: aws.Time(now)})
		if err != nil {
			return fmt.Errorf("reading the skip metrics: %w", err)
		}
		sums := map[string]float64{}
		for _, r := range out.MetricDataResults {
			for _, v := range r.Values {
				sums[aws.ToString(r.Id)] += v
			}
		}
		for i, id := range chunk {
			bytes, packets := sums[fmt.Sprintf("m%d_0", i)], sums[fmt.Sprintf("m%d_1", i)]
			if bytes == 0 && packets == 0 {
				continue
			}
			key := "cond|" + ClassSkipped + "|" + id
			current[key] = true
			if _, err := e.Report.Report(ctx, KindCondition, Report{Class: ClassSkipped, Resource: id, Key: key,
				Evidence: fmt.Sprintf("%s %.0f bytes, %s %.0f packets in the last %s", SkipMetrics[0], bytes, SkipMetrics[1], packets, SkipWindow),
				Fix:      "the source's own traffic comes first under congestion: a larger instance type for it, or mirror fewer ports (apitap:mirrorPorts)"}); err != nil {
				return err
			}
		}
	}
	_, err = e.Report.Resolve(ctx, ClassSkipped, current)
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
