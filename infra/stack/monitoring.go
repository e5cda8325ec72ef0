package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/internal/contract"
)

// Alarm names are <stack>-<suffix>.
const (
	AlarmUnhealthySniffers = "sniffers-unhealthy"
	AlarmNoHealthySniffers = "sniffers-none-healthy"
	AlarmSnifferDrops      = "sniffer-drops"
	AlarmFailedEvents      = "failed-events"
	AlarmFunctionErrors    = "-errors" // after the function key
)

// AlarmNames are the names of the stack's alarms.
func (s *Stack) AlarmNames() []string {
	out := []string{AlarmUnhealthySniffers, AlarmNoHealthySniffers, AlarmSnifferDrops, AlarmFailedEvents}
	for _, spec := range FunctionSpecs {
		out = append(out, spec.Key+AlarmFunctionErrors)
	}
	for i := range out {
		out[i] = s.Names.AlarmPrefix + out[i]
	}
	return out
}

func (s *Stack) monitoring(f fleet, m mirror, fns functions, n notifications) {
	cfg, st := s.Config, s.Stack
	action := awscloudwatchactions.NewSnsAction(n.topic)
	minute := awscdk.Duration_Minutes(jsii.Number(1))
	five := awscdk.Duration_Minutes(jsii.Number(5))
	alarm := func(id, suffix, desc string, metric awscloudwatch.IMetric, op awscloudwatch.ComparisonOperator, threshold, periods float64, missing awscloudwatch.TreatMissingData) {
		a := awscloudwatch.NewAlarm(st, jsii.String(id), &awscloudwatch.AlarmProps{
			AlarmName:          jsii.String(s.Names.AlarmPrefix + suffix),
			AlarmDescription:   jsii.String("apitap " + cfg.StackName + ": " + desc),
			Metric:             metric,
			ComparisonOperator: op,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(periods),
			DatapointsToAlarm:  jsii.Number(periods),
			TreatMissingData:   missing,
		})
		a.AddAlarmAction(action)
		a.AddOkAction(action)
	}

	unhealthy := m.tg.Metrics().UnHealthyHostCount(&awscloudwatch.MetricOptions{Period: minute, Statistic: jsii.String("Maximum")})
	healthy := m.tg.Metrics().HealthyHostCount(&awscloudwatch.MetricOptions{Period: minute, Statistic: jsii.String("Minimum")})
	drops := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:     jsii.String(s.Names.MetricsNamespace),
		MetricName:    jsii.String(contract.SnifferMetricDrops),
		DimensionsMap: &map[string]*string{contract.DimStack: jsii.String(cfg.StackName)},
		Statistic:     jsii.String("Sum"),
		Period:        five,
	})
	failed := n.failed.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")})

	alarm("UnhealthySniffersAlarm", AlarmUnhealthySniffers, "a sniffer fails the NLB health check (TCP 8081) for 5 minutes",
		unhealthy, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1, 5, awscloudwatch.TreatMissingData_NOT_BREACHING)
	alarm("NoHealthySniffersAlarm", AlarmNoHealthySniffers, "no healthy sniffer behind the mirror target: mirrored traffic is lost",
		healthy, awscloudwatch.ComparisonOperator_LESS_THAN_THRESHOLD, 1, 3, awscloudwatch.TreatMissingData_BREACHING)
	alarm("SnifferDropsAlarm", AlarmSnifferDrops, "the sniffers dropped records or packets (Kafka queue, worker queues, connection table) for 10 minutes",
		drops, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1, 2, awscloudwatch.TreatMissingData_NOT_BREACHING)
	alarm("FailedEventsAlarm", AlarmFailedEvents, "events or invocations no function could handle are waiting in "+s.Names.FailureQueue,
		failed, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1, 1, awscloudwatch.TreatMissingData_NOT_BREACHING)

	var errs, invocations, durations, emf []awscloudwatch.IMetric
	for _, spec := range FunctionSpecs {
		fn := fns[spec.Key].fn
		e := fn.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum"), Label: jsii.String(spec.Key)})
		alarm(spec.ID+"ErrorsAlarm", spec.Key+AlarmFunctionErrors, "function "+s.Names.Functions[spec.Key]+" failed",
			e, awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1, 1, awscloudwatch.TreatMissingData_NOT_BREACHING)
		errs = append(errs, e)
		invocations = append(invocations, fn.MetricInvocations(&awscloudwatch.MetricOptions{Period: five, Label: jsii.String(spec.Key)}))
		durations = append(durations, fn.MetricDuration(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum"), Label: jsii.String(spec.Key)}))
	}
	for _, name := range []string{contract.MetricDesired, contract.MetricActual, contract.MetricCreated, contract.MetricDeleted,
		contract.MetricConflicts, contract.MetricUnsupported, contract.MetricErrors, contract.MetricRefused, contract.MetricUndocumentedErrors} {
		emf = append(emf, awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:  jsii.String(s.Names.FunctionNamespace),
			MetricName: jsii.String(name),
			// The functions emit their key (reconcile), not their
			// physical name, as the Function dimension.
			DimensionsMap: &map[string]*string{contract.DimFunction: jsii.String(contract.FnReconcile), contract.DimStack: jsii.String(cfg.StackName)},
			Statistic:     jsii.String("Maximum"),
			Period:        five,
			Label:         jsii.String(name),
		}))
	}

	graph := func(title string, left ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)})
	}
	cpu := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/EC2"), MetricName: jsii.String("CPUUtilization"),
		DimensionsMap: &map[string]*string{"AutoScalingGroupName": f.asg.AutoScalingGroupName()},
		Statistic:     jsii.String("Average"), Period: five,
	})
	inService := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace: jsii.String("AWS/AutoScaling"), MetricName: jsii.String("GroupInServiceInstances"),
		DimensionsMap: &map[string]*string{"AutoScalingGroupName": f.asg.AutoScalingGroupName()},
		Statistic:     jsii.String("Average"), Period: five,
	})
	processed := m.nlb.Metrics().ProcessedBytes(&awscloudwatch.MetricOptions{Period: five})
	flows := m.nlb.Metrics().ActiveFlowCount(&awscloudwatch.MetricOptions{Period: five})
	awscloudwatch.NewDashboard(st, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String(s.Names.Dashboard),
		Widgets: &[]*[]awscloudwatch.IWidget{
			{graph("Sniffers: healthy and unhealthy", healthy, unhealthy), graph("Sniffers: CPU and instances in service", cpu, inService), graph("Sniffer drops", drops)},
			{graph("Mirror NLB: processed bytes", processed), graph("Mirror NLB: active flows", flows), graph("Failed events waiting", failed)},
			{graph("Functions: invocations", invocations...), graph("Functions: errors", errs...), graph("Functions: max duration", durations...)},
			{graph("Reconcile: sessions (EMF)", emf...)},
		},
	})
}
