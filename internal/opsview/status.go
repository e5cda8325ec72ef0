package opsview

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
)

// Verdicts of Status, per selected load balancer.
const (
	VerdictMirroring   = "mirroring"
	VerdictNoTraffic   = "no traffic yet"
	VerdictSilent      = "sessions but no traffic"
	VerdictNotMirrored = "not mirrored"
)

// Status windows.
const (
	// TrafficWindow is how far back traffic is looked at, a minute at a time.
	TrafficWindow = 15 * time.Minute
	// QuietAllowance is how long sessions may carry no traffic before that
	// is suspicious: mirroring starts within seconds, but the sniffers
	// publish their counts once a minute and a quiet service may take a
	// few minutes to be asked anything.
	QuietAllowance = 10 * time.Minute
	// ReconcileWindow is how far back the last reconcile is looked for.
	ReconcileWindow = time.Hour
)

// Status is a deployed stack's mirroring, per selected load balancer.
type Status struct {
	Stack         string     `json:"stack"`
	Region        string     `json:"region"`
	At            time.Time  `json:"at"`
	LastReconcile *Reconcile `json:"lastReconcile,omitempty"`
	LoadBalancers []LBStatus `json:"loadBalancers"`
	// Problems are configured load balancers that are not mirrored at all
	// (another VPC, not found, the stack's own).
	Problems []string `json:"problems,omitempty"`
	// Notes are what could not be read (metrics), and so what the
	// verdicts do not know.
	Notes []string `json:"notes,omitempty"`
}

// Reconcile is the last full reconcile's summary, from its metrics.
type Reconcile struct {
	At     time.Time          `json:"at"`
	Counts map[string]float64 `json:"counts"`
}

// LBStatus is one selected load balancer.
type LBStatus struct {
	Name        string    `json:"name"`
	ARN         string    `json:"arn"`
	VNI         uint32    `json:"vni"`
	Targets     int       `json:"targets"`     // interfaces to mirror
	Sessions    int       `json:"sessions"`    // sessions of ours for it
	Missing     int       `json:"missing"`     // sessions the next reconcile creates
	Conflicts   int       `json:"conflicts"`   // interfaces with foreign sessions
	Unsupported int       `json:"unsupported"` // interfaces AWS refused as sources
	InGrace     int       `json:"inGrace"`     // sessions younger than the grace period
	Oldest      time.Time `json:"oldestSession,omitempty"`
	// RecordsPerMinute are the records the sniffers published from its
	// VNI, a minute at a time, oldest first, over TrafficWindow.
	RecordsPerMinute []float64 `json:"recordsPerMinute"`
	Records          float64   `json:"records"`
	Verdict          string    `json:"verdict"`
	Why              []string  `json:"why,omitempty"`
}

// MetricsReader is the part of CloudWatch status reads.
type MetricsReader interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// StatusReader is what Status reads AWS with: the orchestrator's reader.
type StatusReader interface {
	Selection(ctx context.Context) ([]inventory.LoadBalancer, error)
	Targets(ctx context.Context, lbs []inventory.LoadBalancer, only []string) ([]inventory.Target, error)
	Sources(ctx context.Context, lbs []inventory.LoadBalancer, ts []inventory.Target, now time.Time) ([]mirror.Source, error)
	AllSessions(ctx context.Context) ([]mirror.Session, error)
	Problems() []mirror.Problem
}

// GatherStatus plans as the reconcile would (without doing anything) and
// reads the traffic and the last reconcile from CloudWatch.
func GatherStatus(ctx context.Context, rd StatusReader, cw MetricsReader, sc Scope, now time.Time) (*Status, error) {
	lbs, err := rd.Selection(ctx)
	if err != nil {
		return nil, err
	}
	ts, err := rd.Targets(ctx, lbs, nil)
	if err != nil {
		return nil, err
	}
	desired, err := rd.Sources(ctx, lbs, ts, now)
	if err != nil {
		return nil, err
	}
	actual, err := rd.AllSessions(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{Stack: sc.Mirror.StackName, Region: sc.Region, At: now}
	for _, p := range rd.Problems() {
		st.Problems = append(st.Problems, orDash(p.LB)+": "+p.Reason)
	}
	var vnis []uint32
	for _, lb := range lbs {
		vnis = append(vnis, lb.VNI)
	}
	traffic, err := readTraffic(ctx, cw, sc.Mirror.StackName, vnis, now)
	if err != nil {
		st.Notes = append(st.Notes, "traffic unknown: "+err.Error())
		traffic = nil
	}
	if st.LastReconcile, err = readLastReconcile(ctx, cw, sc.Mirror.StackName, now); err != nil {
		st.Notes = append(st.Notes, "last reconcile unknown: "+err.Error())
	}
	st.LoadBalancers = BuildStatus(sc.Mirror, lbs, desired, actual, traffic, now)
	return st, nil
}

// BuildStatus decides each load balancer's counts and verdict. traffic is
// records per minute by VNI, nil when unknown.
func BuildStatus(cfg mirror.Config, lbs []inventory.LoadBalancer, desired []mirror.Source, actual []mirror.Session,
	traffic map[uint32][]float64, now time.Time) []LBStatus {
	created := inventory.CreatedTimes(actual)
	plan := mirror.Input{Config: cfg, Desired: desired, Actual: actual, Created: created, Now: now}.Plan()
	grace := cfg.Grace
	if grace == 0 {
		grace = mirror.DefaultGrace
	}
	var out []LBStatus
	for _, lb := range lbs {
		s := LBStatus{Name: lb.Name, ARN: lb.ARN, VNI: lb.VNI}
		for _, d := range desired {
			if d.LB == lb.ARN {
				s.Targets++
			}
		}
		for _, a := range actual {
			if !cfg.Owns(a) || a.Tags[contract.TagLB] != lb.ARN {
				continue
			}
			s.Sessions++
			if t, ok := created[a.ID]; ok {
				if now.Sub(t) < grace {
					s.InGrace++
				}
				if s.Oldest.IsZero() || t.Before(s.Oldest) {
					s.Oldest = t
				}
			}
		}
		for _, c := range plan.Creates {
			if c.Source.LB == lb.ARN {
				s.Missing++
			}
		}
		for _, p := range plan.Conflicts {
			if p.LB == lb.ARN {
				s.Conflicts++
			}
		}
		for _, p := range plan.Unsupported {
			if p.LB == lb.ARN {
				s.Unsupported++
			}
		}
		known := traffic != nil
		if known {
			s.RecordsPerMinute = traffic[lb.VNI]
			for _, v := range s.RecordsPerMinute {
				s.Records += v
			}
		}
		s.Verdict, s.Why = Verdict(s, known, now)
		out = append(out, s)
	}
	return out
}

// Verdict is the load balancer's state in words, from its counts, and the
// likely causes when it does not mirror.
func Verdict(s LBStatus, trafficKnown bool, now time.Time) (string, []string) {
	if s.Sessions == 0 {
		var why []string
		switch {
		case s.Targets == 0:
			why = append(why, "no target with a network interface in the VPC (see connections)")
		case s.Missing > 0:
			why = append(why, fmt.Sprintf("%d sessions not created yet: the next reconcile creates them (or see the functions' errors)", s.Missing))
		}
		if s.Conflicts > 0 {
			why = append(why, fmt.Sprintf("%d interfaces carry foreign sessions (conflict policy)", s.Conflicts))
		}
		if s.Unsupported > 0 {
			why = append(why, fmt.Sprintf("%d interfaces cannot be a mirror source (instance type) or are at AWS's limit of 3 sessions", s.Unsupported))
		}
		return VerdictNotMirrored, why
	}
	if s.Records > 0 {
		return VerdictMirroring, nil
	}
	if !s.Oldest.IsZero() && now.Sub(s.Oldest) < QuietAllowance {
		return VerdictNoTraffic, []string{fmt.Sprintf("the oldest session is %s old: traffic shows within %s", now.Sub(s.Oldest).Round(time.Second), QuietAllowance)}
	}
	why := []string{
		"no requests reach the targets, or none on the mirrored ports (apitap:mirrorPorts)",
		"the sniffers' security group does not admit UDP 4789 from the sources (apitap:vpcCidr)",
		"no healthy sniffer behind the mirror NLB (alarm <stack>-sniffers-none-healthy)",
		"the sniffers skip the packets (their /metrics: decode skips, TLS or HTTP/2 connections)",
	}
	if !trafficKnown {
		why = append([]string{"the sniffers' metrics could not be read (see notes)"}, why...)
	}
	return VerdictSilent, why
}

// readTraffic reads the sniffers' Records metric per VNI, a minute at a
// time over TrafficWindow.
func readTraffic(ctx context.Context, cw MetricsReader, stack string, vnis []uint32, now time.Time) (map[uint32][]float64, error) {
	out := map[uint32][]float64{}
	if len(vnis) == 0 {
		return out, nil
	}
	end := now.Truncate(time.Minute)
	start := end.Add(-TrafficWindow)
	var queries []cwtypes.MetricDataQuery
	ids := map[string]uint32{}
	for i, vni := range vnis {
		id := fmt.Sprintf("vni%d", i)
		ids[id] = vni
		queries = append(queries, cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(contract.SnifferNamespace), MetricName: aws.String(contract.SnifferMetricRecords),
				Dimensions: []cwtypes.Dimension{
					{Name: aws.String(contract.DimStack), Value: aws.String(stack)},
					{Name: aws.String(contract.DimVNI), Value: aws.String(fmt.Sprint(vni))},
				}},
			Period: aws.Int32(60), Stat: aws.String("Sum"),
		}})
	}
	results, err := metricData(ctx, cw, queries, start, end)
	if err != nil {
		return nil, fmt.Errorf("reading %s/%s: %w", contract.SnifferNamespace, contract.SnifferMetricRecords, err)
	}
	minutes := int(TrafficWindow / time.Minute)
	for id, vni := range ids {
		series := make([]float64, minutes)
		for _, p := range results[id] {
			if i := int(p.t.Sub(start) / time.Minute); i >= 0 && i < minutes {
				series[i] += p.v
			}
		}
		out[vni] = series
	}
	return out, nil
}

// readLastReconcile finds the reconcile function's newest EMF summary.
func readLastReconcile(ctx context.Context, cw MetricsReader, stack string, now time.Time) (*Reconcile, error) {
	names := []string{contract.MetricDesired, contract.MetricActual, contract.MetricCreated, contract.MetricDeleted,
		contract.MetricConflicts, contract.MetricUnsupported, contract.MetricErrors}
	var queries []cwtypes.MetricDataQuery
	for i, n := range names {
		queries = append(queries, cwtypes.MetricDataQuery{Id: aws.String(fmt.Sprintf("m%d", i)), Label: aws.String(n), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String(contract.FunctionNamespace), MetricName: aws.String(n),
				Dimensions: []cwtypes.Dimension{
					{Name: aws.String(contract.DimFunction), Value: aws.String(contract.FnReconcile)},
					{Name: aws.String(contract.DimStack), Value: aws.String(stack)},
				}},
			Period: aws.Int32(60), Stat: aws.String("Maximum"),
		}})
	}
	results, err := metricData(ctx, cw, queries, now.Add(-ReconcileWindow), now)
	if err != nil {
		return nil, fmt.Errorf("reading the reconcile's metrics: %w", err)
	}
	var last time.Time
	for _, ps := range results {
		for _, p := range ps {
			if p.t.After(last) {
				last = p.t
			}
		}
	}
	if last.IsZero() {
		return nil, nil
	}
	r := &Reconcile{At: last, Counts: map[string]float64{}}
	for i, n := range names {
		for _, p := range results[fmt.Sprintf("m%d", i)] {
			if p.t.Equal(last) {
				r.Counts[n] = p.v
			}
		}
	}
	return r, nil
}

type point struct {
	t time.Time
	v float64
}

// metricData runs the queries, all pages, and returns points by query id.
func metricData(ctx context.Context, cw MetricsReader, queries []cwtypes.MetricDataQuery, start, end time.Time) (map[string][]point, error) {
	out := map[string][]point{}
	in := &cloudwatch.GetMetricDataInput{MetricDataQueries: queries, StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: cwtypes.ScanByTimestampAscending}
	p := cloudwatch.NewGetMetricDataPaginator(cw, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.MetricDataResults {
			id := aws.ToString(r.Id)
			for i := range r.Timestamps {
				if i < len(r.Values) {
					out[id] = append(out[id], point{r.Timestamps[i], r.Values[i]})
				}
			}
		}
	}
	return out, nil
}

// Tables are the summary and the per load balancer verdicts.
func (s *Status) Tables() []*Table {
	title := fmt.Sprintf("Stack %s in %s at %s", s.Stack, s.Region, s.At.UTC().Format(time.RFC3339))
	if r := s.LastReconcile; r != nil {
		var counts []string
		for _, n := range []string{contract.MetricDesired, contract.MetricActual, contract.MetricCreated, contract.MetricDeleted,
			contract.MetricConflicts, contract.MetricUnsupported, contract.MetricErrors} {
			counts = append(counts, fmt.Sprintf("%s %g", strings.ToLower(n), r.Counts[n]))
		}
		title += fmt.Sprintf("; last reconcile %s ago: %s", s.At.Sub(r.At).Round(time.Second), strings.Join(counts, ", "))
	} else {
		title += "; no reconcile in the last hour"
	}
	t := &Table{Title: title, Header: []string{"LOAD BALANCER", "VNI", "TARGETS", "SESSIONS", "MISSING", "CONFLICTS", "UNSUPPORTED", "IN GRACE", "RECORDS/MIN (15 MIN)", "VERDICT"}}
	why := &Table{Title: "Why", Header: []string{"LOAD BALANCER", "LIKELY CAUSE"}}
	for _, lb := range s.LoadBalancers {
		t.Add(lb.Name, fmt.Sprint(lb.VNI), fmt.Sprint(lb.Targets), fmt.Sprint(lb.Sessions), fmt.Sprint(lb.Missing), fmt.Sprint(lb.Conflicts),
			fmt.Sprint(lb.Unsupported), fmt.Sprint(lb.InGrace), sparkline(lb.RecordsPerMinute), lb.Verdict)
		for _, w := range lb.Why {
			why.Add(lb.Name, w)
		}
	}
	tables := []*Table{t}
	if len(why.Rows) > 0 {
		tables = append(tables, why)
	}
	if len(s.Problems) > 0 || len(s.Notes) > 0 {
		n := &Table{Title: "Notes", Header: []string{"NOTE"}}
		for _, p := range s.Problems {
			n.Add("not mirrored: " + p)
		}
		for _, p := range s.Notes {
			n.Add(p)
		}
		tables = append(tables, n)
	}
	return tables
}

// sparkline is a series as "total (min/avg/max per minute)".
func sparkline(series []float64) string {
	if series == nil {
		return "unknown"
	}
	total, hi := 0.0, 0.0
	for _, v := range series {
		total += v
		hi = max(hi, v)
	}
	return fmt.Sprintf("%.1f avg, %g max", total/float64(max(1, len(series))), hi)
}

// Write prints the tables.
func (s *Status) Write(w io.Writer) error { return writeTables(w, s.Tables()...) }
