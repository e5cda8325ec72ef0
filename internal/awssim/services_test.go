package awssim

import (
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// clients are the real SDK clients of the services the operator commands
// read, pointed at one account.
type clients struct {
	sts   *sts.Client
	iam   *iam.Client
	lam   *lambda.Client
	trail *cloudtrail.Client
	cw    *cloudwatch.Client
	sq    *servicequotas.Client
}

func newClients(a *Account, attempts int) clients {
	cfg := a.Config()
	cfg.Retryer = QuickRetryer(attempts)
	return clients{
		sts: sts.NewFromConfig(cfg), iam: iam.NewFromConfig(cfg), lam: lambda.NewFromConfig(cfg),
		trail: cloudtrail.NewFromConfig(cfg), cw: cloudwatch.NewFromConfig(cfg), sq: servicequotas.NewFromConfig(cfg),
	}
}

func status(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func TestGetCallerIdentity(t *testing.T) {
	a := New(Options{AccountID: "210987654321"})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	out, err := cl.sts.GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *out.Account != "210987654321" || *out.Arn != "arn:aws:iam::210987654321:user/awssim" || *out.UserId != "AIDAAWSSIMULATOR0000" {
		t.Errorf("identity %s %s %s", *out.Account, *out.Arn, *out.UserId)
	}
	a.SetCallerIdentity("arn:aws:sts::210987654321:assumed-role/ops/alice", "AROAEXAMPLE:alice")
	out, _ = cl.sts.GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
	if *out.Arn != "arn:aws:sts::210987654321:assumed-role/ops/alice" || *out.UserId != "AROAEXAMPLE:alice" {
		t.Errorf("identity %s %s", *out.Arn, *out.UserId)
	}
	if a.Calls().Get("sts", "GetCallerIdentity") != 2 {
		t.Errorf("calls %v", a.Calls())
	}
}

func TestGetRole(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	if err := a.AddRole(AutoScalingServiceLinkedRole); err != nil {
		t.Fatal(err)
	}
	out, err := cl.iam.GetRole(c, &iam.GetRoleInput{RoleName: aws.String("AWSServiceRoleForAutoScaling")})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Role
	if *r.RoleName != "AWSServiceRoleForAutoScaling" || *r.Path != "/aws-service-role/autoscaling.amazonaws.com/" ||
		*r.Arn != "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling" ||
		r.CreateDate == nil || *r.MaxSessionDuration != 3600 {
		t.Errorf("role %+v", r)
	}
	if doc, err := url.PathUnescape(*r.AssumeRolePolicyDocument); err != nil || doc != AutoScalingServiceLinkedRole.AssumeRolePolicyDocument {
		t.Errorf("trust policy %q (%v)", *r.AssumeRolePolicyDocument, err)
	}

	a.DeleteRole("AWSServiceRoleForAutoScaling")
	_, err = cl.iam.GetRole(c, &iam.GetRoleInput{RoleName: aws.String("AWSServiceRoleForAutoScaling")})
	wantCode(t, err, CodeNoSuchEntity)
	if status(err) != 404 {
		t.Errorf("status %d", status(err))
	}
}

func TestLambdaGetAccountSettings(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	out, err := cl.lam.GetAccountSettings(c, &lambda.GetAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if out.AccountLimit.ConcurrentExecutions != 1000 || *out.AccountLimit.UnreservedConcurrentExecutions != 1000 ||
		out.AccountLimit.CodeSizeZipped != 52428800 || out.AccountUsage.FunctionCount != 0 {
		t.Errorf("settings %+v %+v", out.AccountLimit, out.AccountUsage)
	}
	a.SetLambdaSettings(LambdaSettings{ConcurrentExecutions: 10, UnreservedConcurrentExecutions: 2, FunctionCount: 4})
	out, _ = cl.lam.GetAccountSettings(c, &lambda.GetAccountSettingsInput{})
	if out.AccountLimit.ConcurrentExecutions != 10 || *out.AccountLimit.UnreservedConcurrentExecutions != 2 || out.AccountUsage.FunctionCount != 4 {
		t.Errorf("settings %+v %+v", out.AccountLimit, out.AccountUsage)
	}
	if a.Calls().Get("lambda", "GetAccountSettings") != 2 {
		t.Errorf("calls %v", a.Calls())
	}
}

func TestCloudTrail(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	mgmt, err := a.PutTrail(Trail{Name: "management", S3BucketName: "logs", IsMultiRegionTrail: true, IsLogging: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutTrail(Trail{Name: "writes", EventSelectors: []EventSelector{{ReadWriteType: "WriteOnly", IncludeManagementEvents: true}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutTrail(Trail{Name: "advanced", IsLogging: true, AdvancedEventSelectors: []AdvancedEventSelector{{
		Name: "management", FieldSelectors: []FieldSelector{{Field: "eventCategory", Equals: []string{"Management"}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	if mgmt != "arn:aws:cloudtrail:us-east-1:123456789012:trail/management" {
		t.Errorf("arn %s", mgmt)
	}

	for _, tc := range []struct {
		name  string
		names []string
		want  []string
	}{
		{"all", nil, []string{"advanced", "management", "writes"}},
		{"by name", []string{"writes"}, []string{"writes"}},
		{"by arn", []string{mgmt}, []string{"management"}},
		{"unknown left out", []string{"nope", "writes"}, []string{"writes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := cl.trail.DescribeTrails(c, &cloudtrail.DescribeTrailsInput{TrailNameList: tc.names})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tr := range out.TrailList {
				got = append(got, *tr.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}

	st, err := cl.trail.GetTrailStatus(c, &cloudtrail.GetTrailStatusInput{Name: aws.String(mgmt)})
	if err != nil {
		t.Fatal(err)
	}
	if !*st.IsLogging || st.StartLoggingTime == nil {
		t.Errorf("status %+v", st)
	}
	st, _ = cl.trail.GetTrailStatus(c, &cloudtrail.GetTrailStatusInput{Name: aws.String("writes")})
	if *st.IsLogging {
		t.Errorf("writes is logging")
	}
	_, err = cl.trail.GetTrailStatus(c, &cloudtrail.GetTrailStatusInput{Name: aws.String("nope")})
	wantCode(t, err, CodeTrailNotFound)

	sel, err := cl.trail.GetEventSelectors(c, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("management")})
	if err != nil {
		t.Fatal(err)
	}
	if len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != cttypes.ReadWriteTypeAll || !*sel.EventSelectors[0].IncludeManagementEvents || *sel.TrailARN != mgmt {
		t.Errorf("default selectors %+v", sel)
	}
	sel, _ = cl.trail.GetEventSelectors(c, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("writes")})
	if len(sel.EventSelectors) != 1 || sel.EventSelectors[0].ReadWriteType != cttypes.ReadWriteTypeWriteOnly {
		t.Errorf("writes selectors %+v", sel.EventSelectors)
	}
	sel, _ = cl.trail.GetEventSelectors(c, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("advanced")})
	if len(sel.EventSelectors) != 0 || len(sel.AdvancedEventSelectors) != 1 ||
		*sel.AdvancedEventSelectors[0].FieldSelectors[0].Field != "eventCategory" || sel.AdvancedEventSelectors[0].FieldSelectors[0].Equals[0] != "Management" {
		t.Errorf("advanced selectors %+v", sel)
	}
	_, err = cl.trail.GetEventSelectors(c, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String("arn:aws:cloudtrail:us-east-1:123456789012:trail/nope")})
	wantCode(t, err, CodeTrailNotFound)

	a.DeleteTrail("writes")
	out, _ := cl.trail.DescribeTrails(c, &cloudtrail.DescribeTrailsInput{})
	if len(out.TrailList) != 2 {
		t.Errorf("%d trails after delete", len(out.TrailList))
	}
}

func TestServiceQuota(t *testing.T) {
	a := New(Options{MaxSessions: 50})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	in := &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String(TrafficMirrorSessionsServiceCode), QuotaCode: aws.String(TrafficMirrorSessionsQuotaCode)}
	out, err := cl.sq.GetServiceQuota(c, in)
	if err != nil {
		t.Fatal(err)
	}
	if *out.Quota.Value != 50 || *out.Quota.QuotaCode != TrafficMirrorSessionsQuotaCode || *out.Quota.QuotaName != "Traffic mirror sessions" {
		t.Errorf("quota %+v", out.Quota)
	}
	a.SetServiceQuota(Quota{ServiceCode: "vpc", QuotaCode: "L-F678F1CE", QuotaName: "VPCs per Region", Value: 5, Adjustable: true})
	out, err = cl.sq.GetServiceQuota(c, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String("vpc"), QuotaCode: aws.String("L-F678F1CE")})
	if err != nil || *out.Quota.Value != 5 || !out.Quota.Adjustable {
		t.Errorf("quota %+v %v", out, err)
	}

	a.DeleteServiceQuota(TrafficMirrorSessionsServiceCode, TrafficMirrorSessionsQuotaCode)
	_, err = cl.sq.GetServiceQuota(c, in)
	wantCode(t, err, CodeNoSuchResource)
	var nsr *sqtypes.NoSuchResourceException
	if !errors.As(err, &nsr) {
		t.Errorf("not the modelled error: %T", err)
	}
}

func TestCloudWatchMetrics(t *testing.T) {
	clock := NewManualClock(time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC))
	a := New(Options{Clock: clock})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 1)
	t0 := time.Date(2026, 3, 14, 11, 0, 0, 0, time.UTC)
	dims := []cwtypes.Dimension{{Name: aws.String("Stack"), Value: aws.String("apitap")}}
	// Ten minutes of 1, 2, … 10 packets, and one minute of another series.
	var data []cwtypes.MetricDatum
	for i := range 10 {
		data = append(data, cwtypes.MetricDatum{MetricName: aws.String("Packets"), Dimensions: dims,
			Timestamp: aws.Time(t0.Add(time.Duration(i)*time.Minute + 10*time.Second)), Value: aws.Float64(float64(i + 1))})
	}
	data = append(data, cwtypes.MetricDatum{MetricName: aws.String("Packets"), Timestamp: aws.Time(t0), Value: aws.Float64(1000)},
		cwtypes.MetricDatum{MetricName: aws.String("Packets"), Dimensions: dims, Timestamp: aws.Time(t0), Values: []float64{5, 7}, Counts: []float64{2, 1}})
	if _, err := cl.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("apitap"), MetricData: data}); err != nil {
		t.Fatal(err)
	}

	query := func(stat string, period int32, start, end time.Time, scan cwtypes.ScanBy) cwtypes.MetricDataResult {
		t.Helper()
		out, err := cl.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{
			StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: scan,
			MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("p"), MetricStat: &cwtypes.MetricStat{
				Metric: &cwtypes.Metric{Namespace: aws.String("apitap"), MetricName: aws.String("Packets"), Dimensions: dims},
				Period: aws.Int32(period), Stat: aws.String(stat),
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.MetricDataResults) != 1 {
			t.Fatalf("%d results", len(out.MetricDataResults))
		}
		return out.MetricDataResults[0]
	}
	times := func(ts []time.Time) []string {
		var out []string
		for _, x := range ts {
			out = append(out, x.UTC().Format("15:04"))
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		stat       string
		period     int32
		start, end time.Time
		scan       cwtypes.ScanBy
		wantTimes  []string
		wantValues []float64
	}{
		// Minute 0 holds 1 + 5*2 + 7 = 18 (Values with Counts).
		{"sum per 5 minutes", "Sum", 300, t0, t0.Add(time.Hour), "", []string{"11:05", "11:00"}, []float64{6 + 7 + 8 + 9 + 10, 18 + 2 + 3 + 4 + 5}},
		{"ascending", "Sum", 300, t0, t0.Add(time.Hour), cwtypes.ScanByTimestampAscending, []string{"11:00", "11:05"}, []float64{32, 40}},
		{"end is exclusive", "Sum", 60, t0, t0.Add(2 * time.Minute), cwtypes.ScanByTimestampAscending, []string{"11:00", "11:01"}, []float64{18, 2}},
		{"start rounds down to its period", "Sum", 600, t0.Add(3 * time.Minute), t0.Add(time.Hour), "", []string{"11:00"}, []float64{72}},
		{"sample count", "SampleCount", 300, t0, t0.Add(5 * time.Minute), "", []string{"11:00"}, []float64{1 + 3 + 4}},
		{"maximum", "Maximum", 3600, t0, t0.Add(time.Hour), "", []string{"11:00"}, []float64{10}},
		{"nothing in range", "Sum", 60, t0.Add(-time.Hour), t0, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := query(tc.stat, tc.period, tc.start, tc.end, tc.scan)
			if got := times(r.Timestamps); !slices.Equal(got, tc.wantTimes) || !slices.Equal(r.Values, tc.wantValues) {
				t.Errorf("got %v %v, want %v %v", got, r.Values, tc.wantTimes, tc.wantValues)
			}
			if *r.Id != "p" || *r.Label != "Packets" || r.StatusCode != cwtypes.StatusCodeComplete {
				t.Errorf("result %s %s %s", *r.Id, *r.Label, r.StatusCode)
			}
		})
	}

	// Pagination: three datapoints a page over ten minutes.
	var pages, points int
	p := cloudwatch.NewGetMetricDataPaginator(cl.cw, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)), MaxDatapoints: aws.Int32(3),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("p"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("apitap"), MetricName: aws.String("Packets"), Dimensions: dims},
			Period: aws.Int32(60), Stat: aws.String("Sum"),
		}}},
	})
	for p.HasMorePages() {
		out, err := p.NextPage(c)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		points += len(out.MetricDataResults[0].Values)
	}
	if pages != 4 || points != 10 {
		t.Errorf("%d points in %d pages, want 10 in 4", points, pages)
	}

	// A Timestamp left out is the account's now.
	if _, err := cl.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("now"), MetricData: []cwtypes.MetricDatum{
		{MetricName: aws.String("M"), Value: aws.Float64(3)}}}); err != nil {
		t.Fatal(err)
	}
	if dp := a.Datapoints("now"); len(dp) != 1 || !dp[0].Minute.Equal(clock.Now().Truncate(time.Minute)) || dp[0].Sum != 3 {
		t.Errorf("datapoints %+v", dp)
	}

	// Errors, with the Query codes of the Query-compatible service.
	_, err := cl.cw.PutMetricData(c, &cloudwatch.PutMetricDataInput{Namespace: aws.String("AWS/EC2"), MetricData: data[:1]})
	wantCode(t, err, CodeInvalidParameterValue)
	var ipv *cwtypes.InvalidParameterValueException
	if !errors.As(err, &ipv) || status(err) != 400 {
		t.Errorf("not the modelled error: %T %v", err, err)
	}
	_, err = cl.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(time.Hour)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("p"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("apitap"), MetricName: aws.String("Packets")}, Period: aws.Int32(30), Stat: aws.String("Sum")}}}})
	wantCode(t, err, CodeInvalidParameterValue)
	_, err = cl.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("e"), Expression: aws.String("SUM(METRICS())")}}})
	wantCode(t, err, CodeInvalidParameterValue)
	if a.Calls().Get("monitoring", "GetMetricData") == 0 || a.Calls().Get("monitoring", "PutMetricData") != 3 {
		t.Errorf("calls %v", a.Calls())
	}
}

func TestMetricStoreIsBounded(t *testing.T) {
	var m metricStore
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range MetricMinutesPerSeries + 10 {
		m.add("ns", "m", nil, t0.Add(time.Duration(i)*time.Minute), 1, 1, 1, 1)
	}
	sr := m.series[seriesKey("ns", "m", nil)]
	if len(sr.buckets) != MetricMinutesPerSeries || m.dropped != 10 || sr.buckets[0].minute != t0.Add(10*time.Minute).Unix()/60 {
		t.Fatalf("%d buckets, %d dropped", len(sr.buckets), m.dropped)
	}
	m.add("ns", "m", nil, t0, 1, 1, 1, 1) // older than everything kept
	for i := range MetricSeries + 5 {
		m.add("ns", "m", map[string]string{"n": string(rune(i))}, t0, 1, 1, 1, 1)
	}
	if len(m.series) != MetricSeries || m.dropped != 10+1+6 {
		t.Fatalf("%d series, %d dropped", len(m.series), m.dropped)
	}
}

// TestFaultsOnNewServices: every service answers injected throttling and
// denial with its own codes, which the SDK retries or not as it does
// against AWS, and counts the calls.
func TestFaultsOnNewServices(t *testing.T) {
	a := New(Options{})
	defer a.Close()
	c := ctx(t)
	cl := newClients(a, 3)
	if _, err := a.PutTrail(Trail{Name: "t", IsLogging: true}); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		service, action  string
		throttle, denied string
		call             func() error
	}{
		{"sts", "GetCallerIdentity", "Throttling", "AccessDenied", func() error {
			_, err := cl.sts.GetCallerIdentity(c, &sts.GetCallerIdentityInput{})
			return err
		}},
		{"iam", "GetRole", "Throttling", "AccessDenied", func() error {
			_, err := cl.iam.GetRole(c, &iam.GetRoleInput{RoleName: aws.String("x")})
			return err
		}},
		{"lambda", "GetAccountSettings", "TooManyRequestsException", "AccessDeniedException", func() error {
			_, err := cl.lam.GetAccountSettings(c, &lambda.GetAccountSettingsInput{})
			return err
		}},
		{"cloudtrail", "GetTrailStatus", "ThrottlingException", "AccessDeniedException", func() error {
			_, err := cl.trail.GetTrailStatus(c, &cloudtrail.GetTrailStatusInput{Name: aws.String("t")})
			return err
		}},
		{"servicequotas", "GetServiceQuota", "TooManyRequestsException", "AccessDeniedException", func() error {
			_, err := cl.sq.GetServiceQuota(c, &servicequotas.GetServiceQuotaInput{ServiceCode: aws.String(TrafficMirrorSessionsServiceCode), QuotaCode: aws.String(TrafficMirrorSessionsQuotaCode)})
			return err
		}},
		{"monitoring", "GetMetricData", "Throttling", "AccessDenied", func() error {
			_, err := cl.cw.GetMetricData(c, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(time.Unix(0, 0)), EndTime: aws.Time(time.Unix(600, 0)),
				MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("p"), MetricStat: &cwtypes.MetricStat{
					Metric: &cwtypes.Metric{Namespace: aws.String("n"), MetricName: aws.String("m")}, Period: aws.Int32(60), Stat: aws.String("Sum")}}}})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.service, func(t *testing.T) {
			a.SetFaults(Faults{ThrottleRate: 1, Actions: []string{tc.action}})
			a.ResetCalls()
			wantCode(t, tc.call(), tc.throttle)
			if n := a.Calls().Get(tc.service, tc.action); n != 3 {
				t.Errorf("%d calls for a throttled call with 3 attempts: not retried as throttling", n)
			}
			a.SetFaults(Faults{Denied: []string{tc.action}})
			a.ResetCalls()
			wantCode(t, tc.call(), tc.denied)
			if n := a.Calls().Get(tc.service, tc.action); n != 1 {
				t.Errorf("%d calls for a denied call", n)
			}
			a.SetFaults(Faults{ServerErrorRate: 1, Actions: []string{tc.action}})
			if err := tc.call(); status(err) < 500 {
				t.Errorf("server fault: %v", err)
			}
			a.SetFaults(Faults{})
			if err := tc.call(); err != nil && tc.service != "iam" {
				t.Errorf("after faults: %v", err)
			}
		})
	}
}
