package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/apiinventory"
	"github.com/apitap/apitap/internal/recorder"
	"github.com/apitap/apitap/internal/vnicount"
)

// demoEndpoints is the API surface of testdata/demo.pcap: VNI, host,
// method, path template, count and status classes. tshark reads the same
// requests from the capture (`tshark -r testdata/demo.pcap -Y http.request`).
const demoEndpoints = `4242 198.18.1.2:80 GET /big.dat 2 2xx=2
4242 198.18.1.2:80 GET /dir 1 3xx=1
4242 198.18.1.2:80 GET /index.html 2 2xx=2
4242 198.18.1.2:80 GET /medium.json 1 2xx=1
4242 198.18.1.2:80 GET /missing.txt 2 4xx=2
4242 198.18.1.2:80 GET /small.txt 3 2xx=2,3xx=1
4242 198.18.1.2:80 HEAD /big.dat 1 2xx=1
4242 198.18.1.2:80 HEAD /medium.json 1 2xx=1
4242 198.18.1.2:80 POST /small.txt 1 4xx=1
4242 198.18.1.2:8080 DELETE /nocontent 2 2xx=2
4242 198.18.1.2:8080 GET /chunked 2 2xx=2
4242 198.18.1.2:8080 GET /close 1 2xx=1
4242 198.18.1.2:8080 GET /deflate 1 2xx=1
4242 198.18.1.2:8080 GET /etag 2 2xx=1,3xx=1
4242 198.18.1.2:8080 GET /gzip 1 2xx=1
4242 198.18.1.2:8080 GET /gzip-chunked 1 2xx=1
4242 198.18.1.2:8080 GET /json 1 2xx=1
4242 198.18.1.2:8080 GET /slow 1 2xx=1
4242 198.18.1.2:8080 GET /status 2 3xx=1,5xx=1
4242 198.18.1.2:8080 GET /text 4 2xx=4
4242 198.18.1.2:8080 GET /utf8 1 2xx=1
4242 198.18.1.2:8080 HEAD /text 2 2xx=2
4242 198.18.1.2:8080 OPTIONS /status 1 2xx=1
4242 198.18.1.2:8080 PATCH /echo 1 2xx=1
4242 198.18.1.2:8080 POST /echo 4 2xx=4
4242 198.18.1.2:8080 POST /upload 2 2xx=2
4242 198.18.1.2:8080 PUT /echo 1 2xx=1
4242 [2001:2:0:1::2]:80 GET /index.html 1 2xx=1
4242 [2001:2:0:1::2]:80 GET /small.txt 1 2xx=1
4242 [2001:2:0:1::2]:8080 GET /gzip 1 2xx=1
4242 [2001:2:0:1::2]:8080 POST /echo 1 2xx=1`

func endpointLines(t *testing.T, s apiinventory.Snapshot) string {
	t.Helper()
	var lines []string
	for _, e := range s.Endpoints {
		var st []string
		for c, n := range e.Status {
			st = append(st, fmt.Sprintf("%s=%d", c, n))
		}
		slices.Sort(st)
		lines = append(lines, fmt.Sprintf("%d %s %s %s %d %s", e.VNI, e.Host, e.Method, e.Path, e.Count, strings.Join(st, ",")))
	}
	return strings.Join(lines, "\n")
}

// TestReplayInventory replays the demo capture with -print-inventory: the
// inventory printed after the records is the capture's API surface, and
// the per-VNI counters add up to the records written.
func TestReplayInventory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "records.jsonl")
	o, err := parseFlags([]string{"-pcap", "../testdata/demo.pcap", "-kafka", "none", "-out", out, "-print-inventory"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	s, err := newSniffer(context.Background(), o, slog.New(slog.DiscardHandler), &stdout)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	var snap apiinventory.Snapshot
	if err := json.Unmarshal(stdout.Bytes(), &snap); err != nil {
		t.Fatalf("stdout is not the inventory JSON: %v\n%s", err, stdout.String())
	}
	if got := endpointLines(t, snap); got != demoEndpoints {
		t.Errorf("inventory of demo.pcap:\n%s\nwant:\n%s", got, demoEndpoints)
	}
	if snap.Dropped != 0 || snap.MaxEndpoints != apiinventory.DefaultMaxEndpoints {
		t.Errorf("dropped %d max %d", snap.Dropped, snap.MaxEndpoints)
	}
	first, last := snap.Endpoints[0].FirstSeen, snap.Endpoints[0].LastSeen
	if first.Year() != 2026 || last.Before(first) {
		t.Errorf("seen %v..%v: not the capture's time", first, last)
	}

	records, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(records), "\n"), "\n")
	var want vnicount.Counts
	for _, l := range lines {
		want.Records++
		want.Bytes += uint64(len(l))
		if !strings.Contains(l, `"is_pending":"true"`) {
			want.Pairs++
		}
	}
	got := map[string]vnicount.Counts{}
	s.vnis.Each(func(vni uint32, other bool, c vnicount.Counts) { got[fmt.Sprint(vni, other)] = c })
	if len(got) != 1 || got["4242 false"] != want || want.Records != 48 {
		t.Errorf("per-VNI counts %+v, want 4242: %+v", got, want)
	}
}

// TestLiveVNIMetricsAndInventory: /metrics counts records, pairs and bytes
// per VNI up to -max-vnis and the rest as "other"; /inventory collapses
// the ids in the paths.
func TestLiveVNIMetricsAndInventory(t *testing.T) {
	out := filepath.Join(t.TempDir(), "records.jsonl")
	r := startLive(t, "-kafka", "none", "-out", out, "-max-vnis", "2", "-inventory-max-endpoints", "100")
	const perVNI = 5
	for v, vni := range []uint32{5, 6, 7} {
		for i := range perVNI {
			send(t, r.udp, vxlanConversation(t, vni, uint16(42000+v*100+i), fmt.Sprintf("/items/%d", 1000*v+i), "x"))
		}
		// One VNI after the other: the first two get their own label.
		want := fmt.Sprintf(`apitap_sniffer_recorder_records_total %d`, perVNI*(v+1))
		waitMetric(t, r, want)
	}
	_, metrics := r.get(t, "/metrics")
	for _, l := range []string{
		`apitap_sniffer_vni_records_total{vni="5"} 5`,
		`apitap_sniffer_vni_records_total{vni="6"} 5`,
		`apitap_sniffer_vni_records_total{vni="other"} 5`,
		`apitap_sniffer_vni_pairs_total{vni="5"} 5`,
		`apitap_sniffer_vni_pairs_total{vni="other"} 5`,
		`apitap_sniffer_inventory_endpoints 3`,
		`apitap_sniffer_inventory_dropped_total 0`,
		`apitap_sniffer_capture_kernel_drops_total 0`,
	} {
		if !strings.Contains(metrics, l+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", l, grep(metrics, "_vni_"))
		}
	}
	if strings.Contains(metrics, `vni="7"`) {
		t.Error("a VNI beyond -max-vnis has its own label")
	}
	if !strings.Contains(metrics, `apitap_sniffer_vni_bytes_total{vni="5"} `) {
		t.Error("/metrics lacks the bytes per VNI")
	}

	code, body := r.get(t, "/inventory")
	var snap apiinventory.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); code != 200 || err != nil {
		t.Fatalf("/inventory %d %v:\n%s", code, err, body)
	}
	want := "5 api POST /items/{id} 5 2xx=5\n6 api POST /items/{id} 5 2xx=5\n7 api POST /items/{id} 5 2xx=5"
	if got := endpointLines(t, snap); got != want || snap.MaxEndpoints != 100 {
		t.Errorf("/inventory:\n%s\nwant:\n%s", got, want)
	}
	r.stop(t)
}

func waitMetric(t *testing.T, r *liveRun, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics := r.get(t, "/metrics")
		if strings.Contains(metrics, line+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in /metrics:\n%s", line, grep(metrics, "apitap_sniffer_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInventoryFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-print-inventory"}, "-print-inventory needs -pcap"},
		{[]string{"-pcap", "x", "-kafka", "none", "-out", "-", "-print-inventory", "-inventory-max-endpoints", "0"}, "needs an inventory"},
		{[]string{"-inventory-max-endpoints", "-1"}, "negative endpoint limit"},
		{[]string{"-max-vnis", "70000"}, "VNI limit 70000"},
	} {
		_, err := parseFlags(tc.args, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want %q", tc.args, err, tc.err)
		}
	}
	o, err := parseFlags([]string{"-inventory-max-endpoints", "0", "-admin-addr", "", "-health-addr", ""}, env(map[string]string{"SNIFFER_MAX_VNIS": "3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !o.inventoryOff || o.vnis.MaxVNIs != 3 {
		t.Errorf("inventoryOff %v, MaxVNIs %d", o.inventoryOff, o.vnis.MaxVNIs)
	}
}

// TestObserveDoesNotAllocate: counting a record of a known VNI and endpoint
// costs no allocation (the workers call Observe for every record).
func TestObserveDoesNotAllocate(t *testing.T) {
	o, err := parseFlags([]string{"-pcap", "x", "-kafka", "none", "-out", os.DevNull}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSniffer(context.Background(), o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeOutputs(context.Background())
	obs := recorder.Observation{VNI: 4242, Host: "api.internal", Server: netip.MustParseAddrPort("10.0.2.20:80"),
		Method: "GET", Target: "/v1/users/7?x=1", Status: 200, Bytes: 900, Time: time.Unix(1795884184, 0)}
	pending := obs
	pending.Host, pending.Status, pending.Pending = "", 0, true
	s.Observe(obs)
	s.Observe(pending)
	if n := testing.AllocsPerRun(1000, func() { s.Observe(obs); s.Observe(pending) }); n != 0 {
		t.Errorf("Observe allocates %.1f times per call pair", n)
	}
}
