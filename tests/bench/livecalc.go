package main

// The live benchmark's pure parts, table-tested in livecalc_test.go.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// latencyMetric is the sniffer's histogram of the delay from a pair's last
// captured packet to the broker's acknowledgement.
const latencyMetric = "apitap_sniffer_kafka_delivery_latency_seconds"

// parseRates reads "100k,1.5M,250000,unpaced": packets/s, 0 for unpaced.
func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.EqualFold(f, "unpaced") {
			out = append(out, 0)
			continue
		}
		mult := 1.0
		switch {
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mult, f = 1e3, f[:len(f)-1]
		case strings.HasSuffix(f, "M"):
			mult, f = 1e6, f[:len(f)-1]
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || !(v*mult >= 1) || v*mult > 1e9 {
			return nil, fmt.Errorf("rate %q: want packets/s from 1 to 1e9 (k and M suffixes) or unpaced", f)
		}
		out = append(out, int(math.Round(v*mult)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rates in %q", s)
	}
	return out, nil
}

// paceDelay is how long a sender at rate packets/s that has sent sent
// packets elapsed after its start must wait before sending more (negative
// when it is behind).
func paceDelay(elapsed time.Duration, sent uint64, rate int) time.Duration {
	due := time.Duration(float64(sent) / float64(rate) * float64(time.Second))
	return due - elapsed
}

// loopVNI is the VNI a packet of VNI orig carries in loop loop, when the
// capture's VNIs span span values: loops never share a VNI, so each loop's
// connections are new ones (the VNI is part of the connection key).
func loopVNI(orig, span uint32, loop int) uint32 {
	return (orig + uint32(loop)*span) & 0xffffff
}

// parseMetrics reads Prometheus text exposition: series (name with its
// labels as written) to value.
func parseMetrics(text string) (map[string]float64, error) {
	m := map[string]float64{}
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		// Label values may hold spaces: the series ends at the closing brace.
		end := strings.IndexByte(line, ' ')
		if i := strings.IndexByte(line, '{'); i >= 0 && (end < 0 || i < end) {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("metrics line %d: unclosed labels: %q", n+1, line)
			}
			end = j + 1
		}
		if end <= 0 || end >= len(line) {
			return nil, fmt.Errorf("metrics line %d: no value: %q", n+1, line)
		}
		fields := strings.Fields(line[end:])
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: value %q: %w", n+1, fields[0], err)
		}
		m[line[:end]] = v
	}
	return m, nil
}

// dropStages are the sniffer's own drop counters, summed per stage.
var dropStages = []struct {
	stage    string
	counters []string
}{
	{"flow", []string{"queue_drops", "conn_table_full", "conns_refused_memory", "conns_evicted_idle", "conns_evicted_memory", "buffer_overflows"}},
	{"http", []string{"requests_dropped_gap", "requests_dropped_desync", "requests_dropped_unaligned", "orphan_responses", "queue_overflow"}},
	{"recorder", []string{"records_refused", "records_too_large"}},
	{"kafka", []string{"dropped_queue_full", "dropped_too_large", "dropped_on_close", "failed"}},
}

// stageDrops is each stage's drops between two scrapes.
func stageDrops(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for _, st := range dropStages {
		for _, c := range st.counters {
			name := "apitap_sniffer_" + st.stage + "_" + c + "_total"
			out[st.stage] += after[name] - before[name]
		}
	}
	return out
}

// dropDetails names each drop counter that moved between two scrapes,
// "stage_counter=n", in dropStages order.
func dropDetails(before, after map[string]float64) []string {
	var out []string
	for _, st := range dropStages {
		for _, c := range st.counters {
			name := "apitap_sniffer_" + st.stage + "_" + c + "_total"
			if d := after[name] - before[name]; d != 0 {
				out = append(out, fmt.Sprintf("%s_%s=%.0f", st.stage, c, d))
			}
		}
	}
	return out
}

// bucket is one cumulative histogram bucket: count observations <= le.
type bucket struct{ le, count float64 }

// histogramDiff is histogram name's buckets in after minus those in
// before, sorted by bound; false when after has none.
func histogramDiff(before, after map[string]float64, name string) ([]bucket, bool) {
	prefix := name + "_bucket{"
	var out []bucket
	for series, v := range after {
		if !strings.HasPrefix(series, prefix) {
			continue
		}
		_, rest, ok := strings.Cut(series, `le="`)
		le, _, ok2 := strings.Cut(rest, `"`)
		if !ok || !ok2 {
			continue
		}
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		out = append(out, bucket{bound, v - before[series]})
	}
	slices.SortFunc(out, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	return out, len(out) > 0
}

// quantile estimates the q-quantile of cumulative buckets as Prometheus's
// histogram_quantile does: linear within the bucket holding the rank, the
// lower bound of the first bucket is 0, and a rank in the +Inf bucket gives
// the highest finite bound. NaN when there are no observations.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || !math.IsInf(bs[len(bs)-1].le, 1) || q < 0 || q > 1 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	i, _ := slices.BinarySearchFunc(bs, rank, func(b bucket, r float64) int {
		if b.count < r {
			return -1
		}
		return 1
	})
	if i >= len(bs)-1 {
		if len(bs) < 2 {
			return math.NaN()
		}
		return bs[len(bs)-2].le
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bs[i-1].le, bs[i-1].count
	}
	if bs[i].count == below {
		return bs[i].le
	}
	return lo + (bs[i].le-lo)*(rank-below)/(bs[i].count-below)
}

// highestSustained is the result with the highest achieved send rate that
// kept at least keep percent of the pairs.
func highestSustained(rs []rateResult, keep float64) (rateResult, bool) {
	var best rateResult
	found := false
	for _, r := range rs {
		if r.keptPct() >= keep && (!found || r.sendPPS() > best.sendPPS()) {
			best, found = r, true
		}
	}
	return best, found
}
