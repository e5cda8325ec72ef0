package sampleworld

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/orchestrator"
)

// CloudWatch is a CloudWatch client on the account.
func (w *World) CloudWatch() *cloudwatch.Client { return cloudwatch.NewFromConfig(w.Acct.Config()) }

// PublishReconcile puts a reconcile's summary into CloudWatch at the
// world's time, as CloudWatch Logs does with the function's EMF line.
func (w *World) PublishReconcile(ctx context.Context, res *orchestrator.Result) error {
	at := w.Clock.Now()
	var data []cwtypes.MetricDatum
	for name, v := range map[string]int{
		contract.MetricDesired: res.Desired, contract.MetricActual: res.Actual, contract.MetricCreated: res.Created,
		contract.MetricDeleted: res.Deleted, contract.MetricConflicts: len(res.Conflicts), contract.MetricUnsupported: len(res.Unsupported),
		contract.MetricErrors: len(res.Errors),
	} {
		data = append(data, cwtypes.MetricDatum{MetricName: aws.String(name), Value: aws.Float64(float64(v)), Timestamp: aws.Time(at),
			Unit: cwtypes.StandardUnitCount, Dimensions: []cwtypes.Dimension{
				{Name: aws.String(contract.DimFunction), Value: aws.String(contract.FnReconcile)},
				{Name: aws.String(contract.DimStack), Value: aws.String(StackName)},
			}})
	}
	_, err := w.CloudWatch().PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(contract.FunctionNamespace), MetricData: data})
	return err
}

// PublishTraffic puts records of a VNI into CloudWatch as the fleet's
// metrics timer does: perMinute[i] records in the minute that ended
// len(perMinute)-i minutes before the world's time.
func (w *World) PublishTraffic(ctx context.Context, vni uint32, perMinute []float64) error {
	now := w.Clock.Now().Truncate(time.Minute)
	var data []cwtypes.MetricDatum
	for i, v := range perMinute {
		at := now.Add(-time.Duration(len(perMinute)-i) * time.Minute)
		data = append(data, cwtypes.MetricDatum{MetricName: aws.String(contract.SnifferMetricRecords), Value: aws.Float64(v), Timestamp: aws.Time(at),
			Unit: cwtypes.StandardUnitCount, Dimensions: []cwtypes.Dimension{
				{Name: aws.String(contract.DimStack), Value: aws.String(StackName)},
				{Name: aws.String(contract.DimVNI), Value: aws.String(fmt.Sprint(vni))},
			}})
	}
	_, err := w.CloudWatch().PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(contract.SnifferNamespace), MetricData: data})
	return err
}
