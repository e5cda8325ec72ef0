package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestParseRates(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		bad  bool
	}{
		{in: "100k,200K,1.5M,250000,unpaced", want: []int{100000, 200000, 1500000, 250000, 0}},
		{in: " 50k , UNPACED ,", want: []int{50000, 0}},
		{in: "", bad: true},
		{in: "fast", bad: true},
		{in: "0", bad: true},
		{in: "-5k", bad: true},
		{in: "2000M", bad: true},
	} {
		got, err := parseRates(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: %v accepted", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPaceDelay(t *testing.T) {
	for _, tc := range []struct {
		elapsed time.Duration
		sent    uint64
		rate    int
		want    time.Duration
	}{
		{0, 0, 1000, 0},
		{0, 500, 1000, 500 * time.Millisecond},                 // ahead: wait
		{time.Second, 500, 1000, -500 * time.Millisecond},      // behind: send now
		{10 * time.Millisecond, 5000, 500000, 0},               // on time
		{9 * time.Millisecond, 5000, 500000, time.Millisecond}, // 1 ms ahead
		{20 * time.Millisecond, 5000, 500000, -10 * time.Millisecond},
	} {
		if got := paceDelay(tc.elapsed, tc.sent, tc.rate); got != tc.want {
			t.Errorf("paceDelay(%v, %d, %d) = %v, want %v", tc.elapsed, tc.sent, tc.rate, got, tc.want)
		}
	}
}

// Every loop's VNIs are its own: no two loops share one.
func TestLoopVNIsAreDisjoint(t *testing.T) {
	origs := []uint32{100, 101, 102, 103} // bench-data: VNI 100 + connection % 4
	seen := map[uint32]int{}
	for loop := range 1000 {
		for _, v := range origs {
			got := loopVNI(v, 4, loop)
			if prev, ok := seen[got]; ok && prev != loop {
				t.Fatalf("VNI %d in loops %d and %d", got, prev, loop)
			}
			seen[got] = loop
		}
	}
	if loopVNI(100, 4, 0) != 100 || loopVNI(103, 4, 2) != 111 {
		t.Errorf("loop 0 keeps the capture's VNIs, loop 2 adds 8: %d %d", loopVNI(100, 4, 0), loopVNI(103, 4, 2))
	}
	if got := loopVNI(0xfffffe, 1, 3); got != 1 {
		t.Errorf("VNIs are 24 bits: got %#x", got)
	}
}

const metricsText = `# HELP apitap_sniffer_flow_queue_drops_total x
# TYPE apitap_sniffer_flow_queue_drops_total counter
apitap_sniffer_flow_queue_drops_total 12
apitap_sniffer_http_orphan_responses_total 3
apitap_sniffer_http_requests_dropped_gap_total 4
apitap_sniffer_kafka_dropped_queue_full_total 1e+06
apitap_sniffer_decode_total{reason="ok"} 5.5
weird_metric{path="/a b}"} 7 1712345678
apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.005"} 10
apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.01"} 60
apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.05"} 95
apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="+Inf"} 100
apitap_sniffer_kafka_delivery_latency_seconds_sum 2.5
apitap_sniffer_kafka_delivery_latency_seconds_count 100
`

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(metricsText)
	if err != nil {
		t.Fatal(err)
	}
	for series, want := range map[string]float64{
		"apitap_sniffer_flow_queue_drops_total":                           12,
		"apitap_sniffer_kafka_dropped_queue_full_total":                   1e6,
		`apitap_sniffer_decode_total{reason="ok"}`:                        5.5,
		`weird_metric{path="/a b}"}`:                                      7,
		`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="+Inf"}`: 100,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, bad := range []string{"name_without_value\n", "x{a=\"b\" 1\n", "x notanumber\n"} {
		if _, err := parseMetrics(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	before := map[string]float64{"apitap_sniffer_flow_queue_drops_total": 2, "apitap_sniffer_http_orphan_responses_total": 1}
	d := stageDrops(before, m)
	if d["flow"] != 10 || d["http"] != 6 || d["recorder"] != 0 || d["kafka"] != 1e6 {
		t.Errorf("stage drops %v", d)
	}
	details := dropDetails(before, m)
	want := []string{"flow_queue_drops=10", "http_requests_dropped_gap=4", "http_orphan_responses=2", "kafka_dropped_queue_full=1000000"}
	if !slices.Equal(details, want) {
		t.Errorf("details %v, want %v", details, want)
	}
}

func TestHistogramDiffAndQuantile(t *testing.T) {
	after, err := parseMetrics(metricsText)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]float64{
		`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.005"}`: 10,
		`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.01"}`:  10,
		`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.05"}`:  10,
		`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="+Inf"}`:  10,
	}
	bs, ok := histogramDiff(before, after, latencyMetric)
	want := []bucket{{0.005, 0}, {0.01, 50}, {0.05, 85}, {math.Inf(1), 90}}
	if !ok || !slices.Equal(bs, want) {
		t.Fatalf("diff %v %v, want %v", bs, ok, want)
	}
	if _, ok := histogramDiff(before, after, "absent_metric"); ok {
		t.Error("an absent histogram was found")
	}
	inf := math.Inf(1)
	for _, tc := range []struct {
		name string
		q    float64
		bs   []bucket
		want float64
	}{
		{"median inside the second bucket", 0.5, want, 0.005 + 0.005*45.0/50},
		{"p90 of the run's diff, inside the third bucket", 0.9, want, 0.01 + 0.04*31.0/35},
		{"p99 in +Inf gives the highest bound", 0.99, want, 0.05},
		{"first bucket starts at 0", 0.5, []bucket{{0.1, 10}, {inf, 10}}, 0.05},
		{"q 0 is the lower bound of the first non-empty bucket", 0, []bucket{{0.1, 0}, {0.2, 4}, {inf, 4}}, 0.1},
		{"q 1", 1, []bucket{{0.1, 2}, {0.2, 4}, {inf, 4}}, 0.2},
		{"no observations", 0.5, []bucket{{0.1, 0}, {inf, 0}}, math.NaN()},
		{"no +Inf bucket", 0.5, []bucket{{0.1, 5}}, math.NaN()},
		{"only +Inf", 0.5, []bucket{{inf, 5}}, math.NaN()},
		{"q out of range", 1.5, want, math.NaN()},
		{"empty", 0.5, nil, math.NaN()},
	} {
		got := quantile(tc.q, tc.bs)
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want)) && math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestHighestSustained(t *testing.T) {
	r := func(offered int, pps float64, kept uint64) rateResult {
		return rateResult{offered: offered, sent: sendResult{Packets: uint64(pps), Seconds: 1}, expected: 1000, kept: kept}
	}
	rs := []rateResult{r(100000, 100000, 1000), r(200000, 199000, 999), r(300000, 280000, 998), r(0, 350000, 1000)}
	best, ok := highestSustained(rs, 99.9)
	if !ok || best.offered != 0 || best.sendPPS() != 350000 {
		t.Errorf("got %+v %v, want the unpaced run", best, ok)
	}
	best, ok = highestSustained(rs[:3], 99.9)
	if !ok || best.offered != 200000 {
		t.Errorf("got %+v %v, want 200k", best, ok)
	}
	if _, ok := highestSustained(rs[2:3], 99.9); ok {
		t.Error("99.8% counted as sustained")
	}
}
