package awssim

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// CloudWatch metrics, as far as the fleet writes them and the operator
// commands read them: PutMetricData and GetMetricData over metric stats.
// The SDK's cloudwatch client (v1.76.0) speaks Smithy RPCv2 CBOR: a POST
// to /service/GraniteServiceVersion20100801/operation/<Action> with a CBOR
// body. The service is Query-compatible, so errors carry the Query code in
// the X-Amzn-Query-Error header
// (https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html).
var cloudwatchService = service{
	name:     "monitoring",
	protocol: protoCBOR,
	target:   "GraniteServiceVersion20100801",
	bodyActions: map[string]bodyHandler{
		"PutMetricData": putMetricData,
		"GetMetricData": getMetricData,
	},
	// PutMetricData is not in mutating on purpose: the fleet publishes
	// every minute, and Stats.Mutations would grow without bound.
	errorShapes: map[string]string{
		CodeInvalidParameterValue:       "com.amazonaws.cloudwatch#InvalidParameterValueException",
		CodeInvalidParameterCombination: "com.amazonaws.cloudwatch#InvalidParameterCombinationException",
		"MissingParameter":              "com.amazonaws.cloudwatch#MissingRequiredParameterException",
		"InvalidNextToken":              "com.amazonaws.cloudwatch#InvalidNextToken",
	},
}

// Bounds of the stored metrics. CloudWatch keeps one-minute data for 15
// days (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_concepts.html#metrics-retention);
// the account keeps less, so that a long run cannot grow it without bound.
const (
	// MetricSeries is how many series (namespace, name, dimensions) the
	// account keeps; datapoints of further series are dropped.
	MetricSeries = 1000
	// MetricMinutesPerSeries is how many one-minute buckets each series
	// keeps, newest first: a day.
	MetricMinutesPerSeries = 1440
	// metricPutLimit is PutMetricData's limit of datums per call
	// (PutMetricData API reference: "up to 1000 different metrics").
	metricPutLimit = 1000
	// metricMaxDatapoints is GetMetricData's default and largest
	// MaxDatapoints (GetMetricData API reference).
	metricMaxDatapoints = 100800
)

// bucket is one minute of a series.
type bucket struct {
	minute               int64 // Unix seconds / 60
	sum, count, min, max float64
}

type series struct {
	namespace, name string
	dims            map[string]string
	buckets         []bucket // by minute, oldest first
}

type metricStore struct {
	series  map[string]*series
	dropped int
}

func seriesKey(namespace, name string, dims map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q", namespace, name)
	for _, k := range slices.Sorted(maps.Keys(dims)) {
		fmt.Fprintf(&b, " %q=%q", k, dims[k])
	}
	return b.String()
}

// add stores a datapoint (or a statistic set: count values summing to
// sum) in its series' minute.
func (m *metricStore) add(namespace, name string, dims map[string]string, t time.Time, sum, count, lo, hi float64) {
	if m.series == nil {
		m.series = map[string]*series{}
	}
	k := seriesKey(namespace, name, dims)
	sr, ok := m.series[k]
	if !ok {
		if len(m.series) >= MetricSeries {
			m.dropped++
			return
		}
		sr = &series{namespace: namespace, name: name, dims: dims}
		m.series[k] = sr
	}
	minute := t.Unix() / 60
	i := sort.Search(len(sr.buckets), func(i int) bool { return sr.buckets[i].minute >= minute })
	if i < len(sr.buckets) && sr.buckets[i].minute == minute {
		b := &sr.buckets[i]
		b.sum, b.count, b.min, b.max = b.sum+sum, b.count+count, math.Min(b.min, lo), math.Max(b.max, hi)
		return
	}
	if len(sr.buckets) >= MetricMinutesPerSeries && i == 0 {
		m.dropped++ // older than everything kept
		return
	}
	sr.buckets = slices.Insert(sr.buckets, i, bucket{minute: minute, sum: sum, count: count, min: lo, max: hi})
	if len(sr.buckets) > MetricMinutesPerSeries {
		sr.buckets = slices.Delete(sr.buckets, 0, 1)
		m.dropped++
	}
}

// ---- CBOR helpers ----

func cborMap(v cbor.Value) cbor.Map {
	m, _ := v.(cbor.Map)
	return m
}

func cborList(v cbor.Value) cbor.List {
	l, _ := v.(cbor.List)
	return l
}

func cborString(v cbor.Value) string {
	s, _ := v.(cbor.String)
	return string(s)
}

func cborTime(m cbor.Map, key string) (time.Time, bool, error) {
	v, ok := m[key]
	if !ok {
		return time.Time{}, false, nil
	}
	t, err := cbor.AsTime(v)
	if err != nil {
		return time.Time{}, false, badRequest(CodeInvalidParameterValue, "The value for parameter %s is not a timestamp.", key)
	}
	return t, true, nil
}

func cborFloat(v cbor.Value) (float64, error) {
	f, err := cbor.AsFloat64(v)
	if err != nil {
		if i, ierr := cbor.AsInt64(v); ierr == nil {
			return float64(i), nil
		}
	}
	return f, err
}

func cborTimestamp(t time.Time) cbor.Value {
	return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(t.UnixMilli()) / 1e3)}
}

func dimensions(v cbor.Value) map[string]string {
	dims := map[string]string{}
	for _, d := range cborList(v) {
		dm := cborMap(d)
		dims[cborString(dm["Name"])] = cborString(dm["Value"])
	}
	return dims
}

func decodeCBOR(body []byte) (cbor.Map, error) {
	if len(body) == 0 {
		return cbor.Map{}, nil
	}
	v, err := cbor.Decode(body)
	if err != nil {
		return nil, badRequest("SerializationException", "Could not decode the CBOR request body: %v", err)
	}
	m, ok := v.(cbor.Map)
	if !ok {
		return nil, badRequest("SerializationException", "The request body is not a CBOR map.")
	}
	return m, nil
}

// ---- PutMetricData ----

// putMetricData stores each datum of MetricData (and of EntityMetricData)
// in its series: a Value, Values with optional Counts, or
// StatisticValues; a datum without Timestamp is at the account's now. A
// namespace starting with "AWS/" is refused (reserved for AWS).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html
func putMetricData(s *state, body []byte) (any, error) {
	in, err := decodeCBOR(body)
	if err != nil {
		return nil, err
	}
	ns := cborString(in["Namespace"])
	if ns == "" {
		return nil, badRequest("MissingParameter", "The parameter Namespace is required.")
	}
	if strings.HasPrefix(ns, "AWS/") {
		return nil, badRequest(CodeInvalidParameterValue, "The value AWS/ for parameter Namespace is invalid.")
	}
	data := cborList(in["MetricData"])
	for _, e := range cborList(in["EntityMetricData"]) {
		data = append(data, cborList(cborMap(e)["MetricData"])...)
	}
	if len(data) > metricPutLimit {
		return nil, badRequest(CodeInvalidParameterValue, "The collection MetricData must not have a size greater than %d.", metricPutLimit)
	}
	type point struct {
		name                 string
		dims                 map[string]string
		t                    time.Time
		sum, count, min, max float64
	}
	var points []point
	now := s.now()
	// Validate every datum before storing any: a refused call stores
	// nothing.
	for i, d := range data {
		dm := cborMap(d)
		p := point{name: cborString(dm["MetricName"]), dims: dimensions(dm["Dimensions"]), t: now}
		if p.name == "" {
			return nil, badRequest("MissingParameter", "The parameter MetricData.member.%d.MetricName is required.", i+1)
		}
		if t, ok, err := cborTime(dm, "Timestamp"); err != nil {
			return nil, err
		} else if ok {
			p.t = t
		}
		switch {
		case dm["Value"] != nil:
			v, err := cborFloat(dm["Value"])
			if err != nil {
				return nil, badRequest(CodeInvalidParameterValue, "The value for parameter MetricData.member.%d.Value is not a number.", i+1)
			}
			p.sum, p.count, p.min, p.max = v, 1, v, v
			points = append(points, p)
		case dm["StatisticValues"] != nil:
			sv := cborMap(dm["StatisticValues"])
			var vals [4]float64
			for j, k := range []string{"SampleCount", "Sum", "Minimum", "Maximum"} {
				if vals[j], err = cborFloat(sv[k]); err != nil {
					return nil, badRequest("MissingParameter", "The parameter MetricData.member.%d.StatisticValues.%s is required.", i+1, k)
				}
			}
			p.count, p.sum, p.min, p.max = vals[0], vals[1], vals[2], vals[3]
			points = append(points, p)
		case dm["Values"] != nil:
			vals, counts := cborList(dm["Values"]), cborList(dm["Counts"])
			if len(counts) > 0 && len(counts) != len(vals) {
				return nil, badRequest(CodeInvalidParameterValue, "The Values and Counts of MetricData.member.%d must have the same length.", i+1)
			}
			for j, vv := range vals {
				v, err := cborFloat(vv)
				if err != nil {
					return nil, badRequest(CodeInvalidParameterValue, "The value for parameter MetricData.member.%d.Values is not a number.", i+1)
				}
				c := 1.0
				if len(counts) > 0 {
					c, _ = cborFloat(counts[j])
				}
				q := p
				q.sum, q.count, q.min, q.max = v*c, c, v, v
				points = append(points, q)
			}
		default:
			return nil, badRequest("MissingParameter", "MetricData.member.%d needs Value, Values or StatisticValues.", i+1)
		}
	}
	for _, p := range points {
		s.metrics.add(ns, p.name, p.dims, p.t, p.sum, p.count, p.min, p.max)
	}
	return nil, nil
}

// ---- GetMetricData ----

// metricQuery is one MetricDataQuery with a MetricStat.
type metricQuery struct {
	id, label, stat string
	namespace, name string
	dims            map[string]string
	period          int64
	returnData      bool
}

// getMetricData answers each MetricStat query with the statistic of each
// period that has data between StartTime (inclusive) and EndTime
// (exclusive), periods aligned on multiples of Period since the epoch,
// newest first unless ScanBy is TimestampAscending. The account stores
// one-minute buckets, so Period must be a multiple of 60 (AWS also takes
// 1, 5, 10 and 30 for high-resolution metrics, which the account does
// not model). Stats: Sum, SampleCount, Average, Minimum, Maximum.
// Expression queries are refused. MaxDatapoints (default and largest
// 100,800) bounds a page across all results; NextToken continues.
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html
func getMetricData(s *state, body []byte) (any, error) {
	in, err := decodeCBOR(body)
	if err != nil {
		return nil, err
	}
	start, okS, err := cborTime(in, "StartTime")
	if err != nil {
		return nil, err
	}
	end, okE, err := cborTime(in, "EndTime")
	if err != nil {
		return nil, err
	}
	if !okS || !okE {
		return nil, badRequest("MissingParameter", "The parameters StartTime and EndTime are required.")
	}
	if !start.Before(end) {
		return nil, badRequest(CodeInvalidParameterValue, "The parameter StartTime must be less than the parameter EndTime.")
	}
	maxPoints := int64(metricMaxDatapoints)
	if v, ok := in["MaxDatapoints"]; ok {
		if maxPoints, err = cbor.AsInt64(v); err != nil || maxPoints < 1 || maxPoints > metricMaxDatapoints {
			return nil, badRequest(CodeInvalidParameterValue, "The value for parameter MaxDatapoints must be between 1 and %d.", metricMaxDatapoints)
		}
	}
	ascending := false
	switch sb := cborString(in["ScanBy"]); sb {
	case "", "TimestampDescending":
	case "TimestampAscending":
		ascending = true
	default:
		return nil, badRequest(CodeInvalidParameterValue, "The value %s for parameter ScanBy is invalid.", sb)
	}
	offset := int64(0)
	if tok := cborString(in["NextToken"]); tok != "" {
		cursor, err := decodeToken(tok, "InvalidNextToken")
		if err != nil {
			return nil, err
		}
		if offset, err = strconv.ParseInt(cursor, 10, 64); err != nil {
			return nil, badRequest("InvalidNextToken", "The token '%s' is invalid.", tok)
		}
	}
	queries, err := parseMetricQueries(in["MetricDataQueries"])
	if err != nil {
		return nil, err
	}

	// Every datapoint of every returned query, in order; the page is the
	// slice [offset, offset+maxPoints) of it.
	results := cbor.List{}
	pos := int64(0)
	for _, q := range queries {
		if !q.returnData {
			continue
		}
		ts, vals := s.metricStat(q, start, end, ascending)
		from := min(max(offset-pos, 0), int64(len(ts)))
		to := min(max(offset+maxPoints-pos, 0), int64(len(ts)))
		pos += int64(len(ts))
		status := "Complete"
		if to < int64(len(ts)) {
			status = "PartialData"
		}
		tl, vl := cbor.List{}, cbor.List{}
		for i := from; i < to; i++ {
			tl = append(tl, cborTimestamp(ts[i]))
			vl = append(vl, cbor.Float64(vals[i]))
		}
		results = append(results, cbor.Map{
			"Id": cbor.String(q.id), "Label": cbor.String(q.label),
			"Timestamps": tl, "Values": vl, "StatusCode": cbor.String(status), "Messages": cbor.List{},
		})
	}
	out := cbor.Map{"MetricDataResults": results, "Messages": cbor.List{}}
	if offset+maxPoints < pos {
		out["NextToken"] = cbor.String(encodeToken(strconv.FormatInt(offset+maxPoints, 10)))
	}
	return out, nil
}

func parseMetricQueries(v cbor.Value) ([]metricQuery, error) {
	list := cborList(v)
	if len(list) == 0 {
		return nil, badRequest("MissingParameter", "The parameter MetricDataQueries is required.")
	}
	if len(list) > 500 {
		return nil, badRequest(CodeInvalidParameterValue, "The collection MetricDataQueries must not have a size greater than 500.")
	}
	var out []metricQuery
	ids := map[string]bool{}
	for i, e := range list {
		m := cborMap(e)
		q := metricQuery{id: cborString(m["Id"]), label: cborString(m["Label"]), returnData: true}
		if q.id == "" {
			return nil, badRequest("MissingParameter", "The parameter MetricDataQueries.member.%d.Id is required.", i+1)
		}
		if ids[q.id] {
			return nil, badRequest(CodeInvalidParameterValue, "The value %s for parameter MetricDataQueries.member.%d.Id is a duplicate.", q.id, i+1)
		}
		ids[q.id] = true
		if rd, ok := m["ReturnData"].(cbor.Bool); ok {
			q.returnData = bool(rd)
		}
		if _, ok := m["Expression"]; ok {
			return nil, badRequest(CodeInvalidParameterValue, "awssim: metric math expressions are not modelled (MetricDataQueries.member.%d).", i+1)
		}
		ms := cborMap(m["MetricStat"])
		if ms == nil {
			return nil, badRequest(CodeInvalidParameterValue, "MetricDataQueries.member.%d needs MetricStat or Expression.", i+1)
		}
		metric := cborMap(ms["Metric"])
		q.namespace, q.name, q.dims = cborString(metric["Namespace"]), cborString(metric["MetricName"]), dimensions(metric["Dimensions"])
		q.stat = cborString(ms["Stat"])
		if !slices.Contains([]string{"Sum", "SampleCount", "Average", "Minimum", "Maximum"}, q.stat) {
			return nil, badRequest(CodeInvalidParameterValue, "awssim: the statistic %q of MetricDataQueries.member.%d is not modelled (Sum, SampleCount, Average, Minimum, Maximum).", q.stat, i+1)
		}
		p, err := cbor.AsInt64(ms["Period"])
		if err != nil || p < 60 || p%60 != 0 {
			return nil, badRequest(CodeInvalidParameterValue, "The value for parameter MetricDataQueries.member.%d.MetricStat.Period must be a multiple of 60 (awssim stores one-minute data only).", i+1)
		}
		q.period = p
		if q.label == "" {
			q.label = q.name
		}
		out = append(out, q)
	}
	return out, nil
}

// metricStat aggregates a query's series per period.
func (s *state) metricStat(q metricQuery, start, end time.Time, ascending bool) ([]time.Time, []float64) {
	sr, ok := s.metrics.series[seriesKey(q.namespace, q.name, q.dims)]
	if !ok {
		return nil, nil
	}
	per := q.period / 60
	first := (start.Unix() / q.period) * per // StartTime rounds down to its period
	last := end.Unix() / 60                  // exclusive, in minutes
	var ts []time.Time
	var vals []float64
	var cur *bucket
	var curStart int64
	flush := func() {
		if cur == nil {
			return
		}
		v := cur.sum
		switch q.stat {
		case "SampleCount":
			v = cur.count
		case "Average":
			v = cur.sum / cur.count
		case "Minimum":
			v = cur.min
		case "Maximum":
			v = cur.max
		}
		ts, vals = append(ts, time.Unix(curStart*60, 0).UTC()), append(vals, v)
		cur = nil
	}
	for _, b := range sr.buckets {
		if b.minute < first || b.minute >= last {
			continue
		}
		ps := (b.minute / per) * per
		if cur != nil && ps != curStart {
			flush()
		}
		if cur == nil {
			c := b
			cur, curStart = &c, ps
			continue
		}
		cur.sum, cur.count, cur.min, cur.max = cur.sum+b.sum, cur.count+b.count, math.Min(cur.min, b.min), math.Max(cur.max, b.max)
	}
	flush()
	if !ascending {
		slices.Reverse(ts)
		slices.Reverse(vals)
	}
	return ts, vals
}

// Datapoint is one stored minute of a series, for tests.
type Datapoint struct {
	Namespace, MetricName string
	Dimensions            map[string]string
	Minute                time.Time
	Sum, SampleCount      float64
}

// PutDatapoint stores one value from Go, as PutMetricData would.
func (a *Account) PutDatapoint(namespace, metricName string, dims map[string]string, t time.Time, value float64) {
	a.mu.Lock()
	a.st.metrics.add(namespace, metricName, copyTags(dims), t, value, 1, value, value)
	a.mu.Unlock()
}

// Datapoints returns every stored minute of every series in a namespace,
// by series and then time.
func (a *Account) Datapoints(namespace string) []Datapoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Datapoint
	for _, k := range slices.Sorted(maps.Keys(a.st.metrics.series)) {
		sr := a.st.metrics.series[k]
		if sr.namespace != namespace {
			continue
		}
		for _, b := range sr.buckets {
			out = append(out, Datapoint{Namespace: sr.namespace, MetricName: sr.name, Dimensions: copyTags(sr.dims),
				Minute: time.Unix(b.minute*60, 0).UTC(), Sum: b.sum, SampleCount: b.count})
		}
	}
	return out
}

// MetricsDropped counts the datapoints the account did not keep (past
// MetricSeries or MetricMinutesPerSeries).
func (a *Account) MetricsDropped() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.metrics.dropped
}
