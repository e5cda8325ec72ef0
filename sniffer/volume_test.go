package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// replayWith replays the demo capture with the given environment and
// returns the records written and the sniffer's metrics by name (with the
// vni label appended as name{vni}).
func replayWith(t *testing.T, environ map[string]string) (records int, metrics map[string]float64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "records.jsonl")
	o, err := parseFlags([]string{"-pcap", "../testdata/demo.pcap", "-kafka", "none", "-out", out}, env(environ), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSniffer(context.Background(), o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	records = strings.Count(string(b), "\n")
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics = map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			if c := m.GetCounter(); c != nil {
				metrics[name] = c.GetValue()
			} else if g := m.GetGauge(); g != nil {
				metrics[name] = g.GetValue()
			}
		}
	}
	return records, metrics
}

// demoCounts reads demoEndpoints: exchanges by method, path and status class.
type demoExchange struct {
	method, path, class string
	n                   int
}

func demoExchanges(t *testing.T) []demoExchange {
	t.Helper()
	var out []demoExchange
	for _, line := range strings.Split(demoEndpoints, "\n") {
		f := strings.Fields(line)
		for _, st := range strings.Split(f[5], ",") {
			class, n, _ := strings.Cut(st, "=")
			k, err := strconv.Atoi(n)
			if err != nil {
				t.Fatal(line)
			}
			out = append(out, demoExchange{f[2], f[3], class, k})
		}
	}
	return out
}

// TestReplayVolumeControl replays the demo capture with volume rules: fewer
// records, and each drop counted under its reason.
func TestReplayVolumeControl(t *testing.T) {
	all, base := replayWith(t, nil)
	total := 0
	for _, e := range demoExchanges(t) {
		total += e.n
	}
	if all != total || base["apitap_sniffer_recorder_conns_sampled_out_total"] != 0 {
		t.Fatalf("without rules: %d records, want %d", all, total)
	}

	t.Run("rules", func(t *testing.T) {
		var byMethod, byPath, byStatus, kept int
		for _, e := range demoExchanges(t) {
			switch {
			case e.method != "GET":
				byMethod += e.n
			case e.path == "/index.html":
				byPath += e.n
			case e.class == "4xx" || e.class == "5xx":
				byStatus += e.n
			default:
				kept += e.n
			}
		}
		got, m := replayWith(t, map[string]string{
			"SNIFFER_METHODS":        "GET",
			"SNIFFER_EXCLUDE_PATHS":  "/index*",
			"SNIFFER_EXCLUDE_STATUS": "4xx,5xx",
		})
		if got != kept {
			t.Errorf("%d records, want %d", got, kept)
		}
		for name, want := range map[string]int{
			"apitap_sniffer_recorder_records_filtered_method_total": byMethod,
			"apitap_sniffer_recorder_records_filtered_path_total":   byPath,
			"apitap_sniffer_recorder_records_filtered_status_total": byStatus,
			"apitap_sniffer_recorder_records_filtered_host_total":   0,
			"apitap_sniffer_recorder_records_total":                 kept,
		} {
			if m[name] != float64(want) {
				t.Errorf("%s = %v, want %d", name, m[name], want)
			}
		}
	})

	t.Run("hosts", func(t *testing.T) {
		// No request of the demo names a host under nowhere.example: an
		// include list of it drops all.
		got, m := replayWith(t, map[string]string{"SNIFFER_INCLUDE_HOSTS": "*.nowhere.example"})
		if got != 0 || m["apitap_sniffer_recorder_records_filtered_host_total"] != float64(total) {
			t.Errorf("%d records, %v filtered by host", got, m["apitap_sniffer_recorder_records_filtered_host_total"])
		}
	})

	t.Run("sampling", func(t *testing.T) {
		got, m := replayWith(t, map[string]string{"SNIFFER_SAMPLE_RATE": "0"})
		opened := m["apitap_sniffer_flow_conns_opened_total"]
		if got != 0 || opened == 0 || m["apitap_sniffer_recorder_conns_sampled_out_total"] != opened {
			t.Errorf("rate 0: %d records, %v of %v connections sampled out", got, m["apitap_sniffer_recorder_conns_sampled_out_total"], opened)
		}
		if m["apitap_sniffer_flow_skipped_bytes_total"] == 0 {
			t.Error("sampled-out connections' bytes were not skipped")
		}
		half, m := replayWith(t, map[string]string{"SNIFFER_SAMPLE_RATE": "0.5"})
		again, _ := replayWith(t, map[string]string{"SNIFFER_SAMPLE_RATE": "0.5"})
		if half != again || half >= total || m["apitap_sniffer_recorder_conns_sampled_out_total"] == 0 {
			t.Errorf("rate 0.5: %d then %d records of %d", half, again, total)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		got, m := replayWith(t, map[string]string{"SNIFFER_VNI_RATE_LIMIT": "0.000001", "SNIFFER_VNI_RATE_BURST": "5"})
		if got != 5 || m["apitap_sniffer_recorder_records_rate_limited_total"] != float64(total-5) ||
			m["apitap_sniffer_vni_rate_limited_total{4242}"] != float64(total-5) {
			t.Errorf("%d records, %v rate limited, %v on vni 4242", got,
				m["apitap_sniffer_recorder_records_rate_limited_total"], m["apitap_sniffer_vni_rate_limited_total{4242}"])
		}
	})

	t.Run("bodies", func(t *testing.T) {
		_, dflt := replayWith(t, nil)
		_, none := replayWith(t, map[string]string{"SNIFFER_DROP_BODY_CONTENT_TYPES": "none"})
		_, every := replayWith(t, map[string]string{"SNIFFER_DROP_BODY_CONTENT_TYPES": "*"})
		d, n, e := dflt["apitap_sniffer_recorder_bodies_omitted_total"], none["apitap_sniffer_recorder_bodies_omitted_total"], every["apitap_sniffer_recorder_bodies_omitted_total"]
		if n != 0 || e == 0 || d > e {
			t.Errorf("bodies omitted: default %v, none %v, all %v", d, n, e)
		}
		if every["apitap_sniffer_recorder_records_total"] != float64(total) {
			t.Error("omitting bodies dropped records")
		}
	})
}
