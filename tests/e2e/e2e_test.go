package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apitap/apitap/tests/kafkatest"
	"github.com/apitap/apitap/tests/testkit"
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		removeStaleNamespaces()
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// tools are the external commands these tests run.
var tools = []string{"ip", "tc", "ethtool", "nginx", "tcpdump", "kcat", "java", "sysctl"}

var (
	buildOnce sync.Once
	buildDir  string
	bins      struct{ sniffer, edgeserver, edgeclient string }
	buildErr  error
)

// binaries builds the sniffer and the test's server and client once per
// test binary run, into a directory removed at the end (TestMain).
func binaries(t *testing.T) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "apitap-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		start := time.Now()
		out, err := testkit.Build(dir, "./sniffer", "./tests/e2e/edgeserver", "./tests/e2e/edgeclient")
		if err != nil {
			buildErr = err
			return
		}
		bins.sniffer, bins.edgeserver, bins.edgeclient = out[0], out[1], out[2]
		t.Logf("built the sniffer, edgeserver and edgeclient in %v", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatalf("building binaries: %v", buildErr)
	}
}

// scenario is one end-to-end run.
type scenario struct {
	tag      string
	script   Script
	impaired bool
}

// outcome is what a scenario produced.
type outcome struct {
	results  []Result
	messages []kafkatest.Message
	capture  string // pcap of the mirror path, as the sniffer ns receives it
	start    time.Time
	end      time.Time
}

func TestMirrorClean(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, tools...)
	binaries(t)
	out := runScenario(t, scenario{tag: "clean", script: cleanScript()})

	recs := parseMessages(t, out.messages)
	checkAll(t, out, recs, "MIRRORING", false)
	checkKeys(t, out, recs)

	if dst := os.Getenv("APITAP_RECORD_CAPTURE"); dst != "" {
		if err := copyFile(out.capture, dst); err != nil {
			t.Errorf("APITAP_RECORD_CAPTURE: %v", err)
		} else {
			t.Logf("capture of the mirror path copied to %s", dst)
		}
	}
	// The capture of the same traffic, replayed, gives the same records.
	replayed := replay(t, out.capture)
	t.Logf("replay of the capture: %d records", len(replayed))
	checkAll(t, out, replayed, "PCAP", false)
}

func TestMirrorImpaired(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, tools...)
	binaries(t)
	out := runScenario(t, scenario{tag: "impaired", script: impairedScript(), impaired: true})
	recs := parseMessages(t, out.messages)
	answered := checkAll(t, out, recs, "MIRRORING", true)
	checkKeys(t, out, recs)
	share := float64(answered) / float64(len(out.results))
	t.Logf("impaired mirror path: %d of %d requests arrived answered (%.0f%%), %d records in all",
		answered, len(out.results), 100*share, len(recs))
	if share < 0.60 {
		t.Errorf("only %d of %d requests (%.0f%%) arrived through the impaired mirror path; want at least 60%%",
			answered, len(out.results), 100*share)
	}
}

// runScenario builds the topology, starts the servers, Kafka and the
// sniffer, runs the client's script, stops the sniffer with SIGTERM and
// reads the topic back.
func runScenario(t *testing.T, sc scenario) outcome {
	dir := t.TempDir()
	if keep := os.Getenv("APITAP_E2E_ARTIFACTS"); keep != "" {
		// Registered first, so it runs last: after every process stopped.
		t.Cleanup(func() {
			dst := filepath.Join(keep, t.Name())
			_ = os.RemoveAll(dst)
			if err := os.CopyFS(dst, os.DirFS(dir)); err != nil {
				t.Logf("APITAP_E2E_ARTIFACTS: %v", err)
			} else {
				t.Logf("logs and captures kept in %s", dst)
			}
		})
	}
	tp := newTopology(t, sc.tag)

	// HTTP servers in the server namespace.
	nginxConf := writeNginx(t, filepath.Join(dir, "nginx"))
	startProc(t, tp.server, dir, "nginx", nil, mustLook(t, "nginx"),
		"-p", filepath.Join(dir, "nginx"), "-c", nginxConf, "-e", filepath.Join(dir, "nginx", "error.log"))
	edge := startProc(t, tp.server, dir, "edgeserver", nil, bins.edgeserver,
		"-listen", edgeV4, "-listen", edgeV6)
	edge.waitOutput(t, "ready", 10*time.Second)
	waitHTTP(t, tp, nginxV4)

	// Kafka in the sniffer namespace.
	broker := kafkatest.Start(t, kafkatest.Config{Addr: "127.0.0.1:9092", Netns: tp.sniffer})
	topic := "akto.api.logs"
	var env []string
	if sc.impaired {
		topic = "apitap.e2e.impaired"
		env = append(env, "SNIFFER_TOPIC="+topic) // the flag's environment fallback
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := broker.CreateTopic(ctx, topic); err != nil {
		t.Fatal(err)
	}

	// The capture of the mirror path, as the sniffer namespace sees it.
	var out outcome
	out.capture = filepath.Join(dir, "mirror.pcap")
	dump := startProc(t, tp.sniffer, dir, "tcpdump", nil, mustLook(t, "tcpdump"),
		"-i", "eth0", "-n", "-U", "-Z", "root", "-s", "0", "-w", out.capture, "udp", "port", "4789")
	dump.waitOutput(t, "listening on", 10*time.Second)

	// The sniffer; behind the impairing relay in the impaired run.
	listen := mirrorDst + ":4789"
	var rl *relay
	if sc.impaired {
		listen = "127.0.0.1:4799"
		// What the relay forwards is kept as a capture, for a look after
		// a failure (APITAP_E2E_ARTIFACTS).
		pf, err := os.Create(filepath.Join(dir, "relay-out.pcap"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pf.Close() })
		writePcapHeader(pf)
		drop, dup, reorder := relayRates(t)
		rl, err = startRelay(tp.sniffer, mirrorDst+":4789", listen, 20261128, drop, dup, reorder, pf)
		if err != nil {
			t.Fatalf("starting relay: %v", err)
		}
		t.Cleanup(func() { rl.Stop() })
	}
	args := []string{"-listen", listen, "-kafka", broker.Addr,
		"-admin-addr", "127.0.0.1:9190", "-health-addr", "127.0.0.1:9191"}
	sniffer := startProc(t, tp.sniffer, dir, "sniffer", env, bins.sniffer, args...)
	sniffer.waitOutput(t, "msg=listening", 20*time.Second)

	// The traffic.
	out.start = time.Now()
	out.results = runClient(t, tp, sc.script)
	out.end = time.Now()
	for _, r := range out.results {
		if r.Err != "" {
			t.Fatalf("client request %s %s %s failed: %s", r.ID, r.Method, r.Path, r.Err)
		}
		if got := firstHeader(r.Headers, "X-Req-Id"); got != r.ID {
			t.Fatalf("server did not echo the id of request %s %s: X-Req-Id %q", r.Method, r.Path, got)
		}
	}
	t.Logf("client made %d requests on %d connections in %v", len(out.results), len(sc.script.Conns), out.end.Sub(out.start).Round(time.Millisecond))

	// Let the mirror path drain, then stop the sniffer: it must flush every
	// flow and its Kafka queue and exit 0.
	time.Sleep(time.Second)
	if rl != nil {
		t.Logf("relay: %+v", rl.Stop())
	}
	metrics := scrapeMetrics(tp)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sniffer metrics before SIGTERM (non-zero apitap counters):\n%s", metrics)
		}
	})
	stopStart := time.Now()
	code, err := sniffer.stop(t, syscall.SIGTERM, 60*time.Second)
	if code != 0 {
		t.Errorf("sniffer exit after SIGTERM: code %d, %v", code, err)
	}
	t.Logf("sniffer stopped in %v; sniffer ns UDP counters:\n%s", time.Since(stopStart).Round(time.Millisecond), udpStats(tp.sniffer))
	if _, err := dump.stop(t, syscall.SIGINT, 10*time.Second); err != nil {
		t.Logf("tcpdump: %v", err)
	}
	t.Logf("tcpdump: %s", lastLines(dump.log.String(), 3))

	msgs, err := broker.Consume(ctx, topic)
	if err != nil {
		t.Fatalf("reading topic %s: %v", topic, err)
	}
	if len(msgs) == 0 {
		md, _ := exec.Command("ip", "netns", "exec", tp.sniffer, "kcat", "-L", "-b", broker.Addr).CombinedOutput()
		t.Logf("topic %s is empty; broker metadata:\n%s", topic, md)
	}
	out.messages = msgs
	return out
}

func mustLook(t *testing.T, cmd string) string {
	t.Helper()
	p, err := testkit.LookPath(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// relayRates returns the impairing relay's drop, duplicate and reorder
// rates: 3%, 3% and 5%, or APITAP_RELAY_RATES="drop,dup,reorder" (to tell
// which impairment a failure comes from).
func relayRates(t *testing.T) (drop, dup, reorder float64) {
	drop, dup, reorder = 0.03, 0.03, 0.05
	if v := os.Getenv("APITAP_RELAY_RATES"); v != "" {
		f := strings.Split(v, ",")
		var err error
		var r [3]float64
		for i := 0; i < 3 && err == nil; i++ {
			if i >= len(f) {
				err = fmt.Errorf("want three rates")
				break
			}
			r[i], err = strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
		}
		if err != nil {
			t.Fatalf("APITAP_RELAY_RATES=%q: %v", v, err)
		}
		drop, dup, reorder = r[0], r[1], r[2]
		t.Logf("relay rates from APITAP_RELAY_RATES: drop %.3f, duplicate %.3f, reorder %.3f", drop, dup, reorder)
	}
	return drop, dup, reorder
}

// scrapeMetrics reads the sniffer's /metrics from inside its namespace and
// returns the non-zero samples other than the Go runtime's.
func scrapeMetrics(tp *topology) string {
	res, err := clientRun(tp.sniffer, Script{Conns: []Conn{{Addr: "127.0.0.1:9190",
		Requests: []Request{{ID: "metrics", Method: "GET", Path: "/metrics"}}}}})
	if err != nil || len(res) != 1 || res[0].Err != "" {
		return fmt.Sprintf("(scraping /metrics: %v %+v)", err, res)
	}
	var keep []string
	for _, l := range strings.Split(res[0].Body, "\n") {
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "go_") ||
			strings.HasPrefix(l, "process_") || strings.HasPrefix(l, "promhttp_") || strings.HasSuffix(l, " 0") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// waitHTTP waits until addr answers a request from the client namespace.
func waitHTTP(t *testing.T, tp *topology, addr string) {
	t.Helper()
	probe := Script{Conns: []Conn{{Addr: addr, Requests: []Request{{ID: "probe", Method: "GET", Path: "/small.txt?id=probe"}}}}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := clientRun(tp.client, probe)
		if err == nil && len(res) == 1 && res[0].Err == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving: %v %+v", addr, err, res)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runClient(t *testing.T, tp *topology, s Script) []Result {
	t.Helper()
	res, err := clientRun(tp.client, s)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// clientRun runs edgeclient with the script in namespace ns.
func clientRun(ns string, s Script) ([]Result, error) {
	in, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, bins.edgeclient)
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("edgeclient: %v: %s", err, stderr.String())
	}
	var res []Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("edgeclient output: %v", err)
	}
	// Remember which connection each request went on.
	k := 0
	for ci, c := range s.Conns {
		for range c.Requests {
			if k < len(res) {
				res[k].ConnIndex = ci
			}
			k++
		}
	}
	return res, nil
}

// rec is one record with the Kafka key it came with.
type rec struct {
	testkit.Record
	key string
	raw string
}

// parseMessages decodes every message as a record, failing on any that
// does not have the contract's shape.
func parseMessages(t *testing.T, msgs []kafkatest.Message) []rec {
	t.Helper()
	var out []rec
	for _, m := range msgs {
		if m.Payload == nil {
			t.Errorf("message at offset %d has no payload", m.Offset)
			continue
		}
		r, err := testkit.ParseRecord([]byte(*m.Payload))
		if err != nil {
			t.Errorf("message at offset %d: %v\n%s", m.Offset, err, clip(*m.Payload, 1500))
		}
		key := ""
		if m.Key != nil {
			key = *m.Key
		}
		out = append(out, rec{Record: r, key: key, raw: *m.Payload})
	}
	return out
}

// checkAll matches records to the client's results by the id in the path
// and checks each. In a clean run every request must appear exactly once
// and answered; in an impaired one (lossy) requests may be missing or
// pending but never appear twice or wrong. It returns how many requests
// appeared answered.
func checkAll(t *testing.T, out outcome, recs []rec, source string, lossy bool) int {
	t.Helper()
	byID := map[string][]rec{}
	for _, r := range recs {
		id := testkit.ID(r.Path)
		if id == "" || id == "probe" {
			t.Errorf("record for a request the client did not make: %s", clip(r.raw, 800))
			continue
		}
		byID[id] = append(byID[id], r)
	}
	known := map[string]bool{}
	answered, pending := 0, 0
	var missing []string
	for _, res := range out.results {
		known[res.ID] = true
		got := byID[res.ID]
		switch {
		case len(got) == 0:
			missing = append(missing, fmt.Sprintf("%s %s %s", res.ID, res.Method, res.Path))
			continue
		case len(got) > 1:
			var raws []string
			for _, g := range got {
				raws = append(raws, clip(g.raw, 600))
			}
			t.Errorf("request %s %s appears %d times:\n%s", res.Method, res.Path, len(got), strings.Join(raws, "\n"))
		}
		r := got[0]
		if r.IsPending == "true" {
			pending++
		} else {
			answered++
		}
		if probs := checkRecord(r, res, out, source, lossy); len(probs) > 0 {
			t.Errorf("record for request %s %s (%s, got100=%v) is wrong:\n  - %s\n  record: %s",
				res.Method, res.Path, res.Status, res.Got100, strings.Join(probs, "\n  - "), clip(r.raw, 1500))
		}
	}
	for id, rs := range byID {
		if !known[id] {
			t.Errorf("%d record(s) with id %s, which no request had: %s", len(rs), id, clip(rs[0].raw, 600))
		}
	}
	if len(missing) > 0 {
		if lossy {
			t.Logf("%d requests did not arrive: %s", len(missing), strings.Join(missing, "; "))
		} else {
			t.Errorf("%d of %d requests have no record (source %s):\n  %s", len(missing), len(out.results), source, strings.Join(missing, "\n  "))
		}
	}
	if pending > 0 {
		if lossy {
			t.Logf("%d requests arrived pending (no response)", pending)
		} else {
			t.Errorf("%d requests arrived pending in a clean run", pending)
		}
	}
	return answered
}

// checkRecord compares one record with what the client sent and received.
// droppedByDefault reports whether the sniffer's default
// -drop-body-content-types covers a Content-Type.
func droppedByDefault(contentType string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(contentType)), ";")
	for _, prefix := range []string{"image/", "audio/", "video/", "font/"} {
		if strings.HasPrefix(mt, prefix) {
			return true
		}
	}
	return strings.TrimSpace(mt) == "application/octet-stream"
}

func checkRecord(r rec, res Result, out outcome, source string, lossy bool) []string {
	var p []string
	eq := func(field, got, want string) {
		if got != want {
			p = append(p, fmt.Sprintf("%s = %s, want %s", field, clip(strconv.Quote(got), 300), clip(strconv.Quote(want), 300)))
		}
	}
	eq("method", r.Method, res.Method)
	eq("path", r.Path, res.Path)
	eq("type", r.Type, res.Proto)
	eq("requestPayload", r.RequestPayload, res.RequestBody)
	eq("akto_vxlan_id", r.VxlanID, strconv.Itoa(vni))
	eq("akto_account_id", r.AccountID, "1000000")
	eq("source", r.Source, source)
	if !sameIP(r.IP, res.Local) {
		p = append(p, fmt.Sprintf("ip = %q, want client %s", r.IP, res.Local))
	}
	if !sameIP(r.DestIP, res.Remote) {
		p = append(p, fmt.Sprintf("destIp = %q, want server %s", r.DestIP, res.Remote))
	}
	if ts, err := strconv.ParseInt(r.Time, 10, 64); err != nil || ts < res.Start-2 || ts > res.Start+3 {
		p = append(p, fmt.Sprintf("time = %q, want about %d (when the request was sent)", r.Time, res.Start))
	}
	if rh, err := testkit.ParseHeaders(r.RequestHeaders); err == nil {
		if h, _ := testkit.Header(rh, "Host"); h == "" {
			p = append(p, "requestHeaders has no Host: "+clip(r.RequestHeaders, 300))
		}
	}
	if r.IsPending == "true" {
		if !lossy {
			p = append(p, "is_pending = \"true\" in a clean run")
		}
		return p
	}
	eq("is_pending", r.IsPending, "false")
	eq("statusCode", r.StatusCode, strconv.Itoa(res.StatusCode))
	eq("status", r.Status, res.Status)
	rh, err := testkit.ParseHeaders(r.ResponseHeaders)
	// Bodies of the sniffer's default dropped types (images, audio, video,
	// fonts, application/octet-stream) are omitted and the record says so;
	// every other body arrives whole.
	if ct, _ := testkit.Header(rh, "Content-Type"); err == nil && droppedByDefault(ct) {
		eq("responsePayload", r.ResponsePayload, "")
		if omitted, _ := testkit.Header(rh, "X-Apitap-Body-Omitted"); omitted == "" && res.Body != "" {
			p = append(p, "a "+ct+" body omitted without X-Apitap-Body-Omitted")
		}
	} else {
		eq("responsePayload", r.ResponsePayload, res.Body)
	}
	if err != nil {
		p = append(p, "responseHeaders: "+err.Error())
	} else if id, _ := testkit.Header(rh, "X-Req-Id"); id != res.ID {
		p = append(p, fmt.Sprintf("responseHeaders X-Req-Id = %q, want %q: the record pairs the request with another request's response", id, res.ID))
	}
	return p
}

// checkKeys: all records of one connection share their Kafka key, and
// different connections have different keys.
func checkKeys(t *testing.T, out outcome, recs []rec) {
	t.Helper()
	connOf := map[string]int{}
	for _, res := range out.results {
		connOf[res.ID] = res.ConnIndex
	}
	keysOfConn := map[int]map[string]bool{}
	connsOfKey := map[string]map[int]bool{}
	for _, r := range recs {
		c, ok := connOf[testkit.ID(r.Path)]
		if !ok {
			continue
		}
		if r.key == "" {
			t.Errorf("record %s %s has no Kafka key", r.Method, r.Path)
			continue
		}
		if keysOfConn[c] == nil {
			keysOfConn[c] = map[string]bool{}
		}
		keysOfConn[c][r.key] = true
		if connsOfKey[r.key] == nil {
			connsOfKey[r.key] = map[int]bool{}
		}
		connsOfKey[r.key][c] = true
	}
	for c, ks := range keysOfConn {
		if len(ks) > 1 {
			t.Errorf("connection %d of the script has records under %d Kafka keys: %v", c, len(ks), ks)
		}
	}
	for k, cs := range connsOfKey {
		if len(cs) > 1 {
			t.Errorf("key %q is shared by %d connections", k, len(cs))
		}
	}
}

// replay runs the sniffer on a capture file and parses its records.
func replay(t *testing.T, capture string) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.sniffer, "-pcap", capture, "-kafka", "none", "-out", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("sniffer -pcap %s: %v\n%s", capture, err, lastLines(stderr.String(), 30))
		return nil
	}
	var out []rec
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := testkit.ParseRecord([]byte(line))
		if err != nil {
			t.Errorf("replay record: %v\n%s", err, clip(line, 1500))
		}
		out = append(out, rec{Record: r, raw: line})
	}
	return out
}

func sameIP(a, b string) bool {
	x, err1 := netip.ParseAddr(a)
	y, err2 := netip.ParseAddr(b)
	return err1 == nil && err2 == nil && x.Unmap() == y.Unmap()
}

func firstHeader(h map[string][]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
