package stack_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apitap/apitap/infra/stack"
	"github.com/apitap/apitap/internal/contract"
)

// The fleet's metrics script, run by bash on two scrapes of a sniffer's
// /metrics (curl and aws are stand-ins that serve the scrape and keep the
// metric data): it publishes the growth of the drop counters and of each
// VNI's records, pairs and bytes, with the contract's names.
func TestMetricsScriptPublishesGrowthPerVNI(t *testing.T) {
	s := synth(t, "scram")
	ud := userData(t, s)
	start := strings.Index(ud, "cat >"+stack.MetricsScript+" <<'APITAP_EOF'\n")
	if start < 0 {
		t.Fatal("the user data does not install the metrics script")
	}
	body := ud[start+len("cat >"+stack.MetricsScript+" <<'APITAP_EOF'\n"):]
	body = body[:strings.Index(body, "\nAPITAP_EOF")]

	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	must(t, os.MkdirAll(bin, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "metrics.sh"), []byte(body), 0o755))
	must(t, os.WriteFile(filepath.Join(bin, "curl"), []byte("#!/bin/sh\ncat \"$SCRAPE\"\n"), 0o755))
	// aws keeps each call's arguments, and the metric data file it names.
	must(t, os.WriteFile(filepath.Join(bin, "aws"), []byte(`#!/bin/bash
echo "$*" >>"$OUT/calls"
for a; do case "$a" in file://*) cat "${a#file://}" >>"$OUT/data"; echo >>"$OUT/data";; esac; done
`), 0o755))
	scrape := func(lines ...string) {
		must(t, os.WriteFile(filepath.Join(dir, "scrape"), []byte(strings.Join(lines, "\n")+"\n"), 0o644))
		cmd := exec.Command("bash", filepath.Join(dir, "metrics.sh"))
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "SCRAPE=" + filepath.Join(dir, "scrape"), "OUT=" + dir,
			"APITAP_METRICS_STATE=" + filepath.Join(dir, "state")}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("metrics script: %v\n%s", err, out)
		}
	}
	scrape(`# HELP apitap_sniffer_vni_records_total records`,
		contract.PromVNIRecords+`{vni="12600619"} 10`, contract.PromVNIPairs+`{vni="12600619"} 9`, contract.PromVNIBytes+`{vni="12600619"} 1000`,
		contract.PromVNIRecords+`{vni="other"} 1`, `apitap_sniffer_kafka_dropped_queue_full_total 2`)
	// The first run knows no earlier counts: it publishes no growth yet,
	// for every VNI it sees.
	first, err := os.ReadFile(filepath.Join(dir, "data"))
	must(t, err)
	if n := strings.Count(string(first), `"Value":0`); n != 4 {
		t.Errorf("first run published %d zero values, want 4:\n%s", n, first)
	}
	must(t, os.Remove(filepath.Join(dir, "data")))
	scrape(contract.PromVNIRecords+`{vni="12600619"} 17`, contract.PromVNIPairs+`{vni="12600619"} 15`, contract.PromVNIBytes+`{vni="12600619"} 1800`,
		contract.PromVNIRecords+`{vni="other"} 1`, `apitap_sniffer_kafka_dropped_queue_full_total 5`)

	raw, err := os.ReadFile(filepath.Join(dir, "data"))
	must(t, err)
	var data []struct {
		MetricName, Unit string
		Value            float64
		Dimensions       []struct{ Name, Value string }
	}
	must(t, json.Unmarshal(raw, &data))
	got := map[string]float64{}
	for _, d := range data {
		if len(d.Dimensions) != 2 || d.Dimensions[0].Name != contract.DimStack || d.Dimensions[0].Value != s.cfg.StackName || d.Dimensions[1].Name != contract.DimVNI {
			t.Errorf("dimensions %+v", d.Dimensions)
		}
		if (d.MetricName == contract.SnifferMetricBytes) != (d.Unit == "Bytes") {
			t.Errorf("%s in %s", d.MetricName, d.Unit)
		}
		got[d.MetricName+"/"+d.Dimensions[1].Value] = d.Value
	}
	want := map[string]float64{"Records/12600619": 7, "Pairs/12600619": 6, "Bytes/12600619": 800, "Records/other": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	calls, err := os.ReadFile(filepath.Join(dir, "calls"))
	must(t, err)
	if !strings.Contains(string(calls), "--metric-name Drops --unit Count --value 3 --dimensions Stack="+s.cfg.StackName) {
		t.Errorf("drops not published as their growth:\n%s", calls)
	}
}
