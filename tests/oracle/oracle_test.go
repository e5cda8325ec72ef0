// Package oracle checks the sniffer's replay mode against an independent
// HTTP dissector: for every capture under testdata/ the multiset of
// (method, path, status) of the answered pairs the sniffer emits must equal
// the one tshark (Wireshark) finds.
//
// How tshark's view is built: tshark's own request/response links
// (http.request_in, http.response_for.uri) are wrong for pipelined
// requests (every response of a pipelined batch is linked to the batch's
// last request), so this test takes from tshark only what it frames
// reliably, the sequence of requests and of responses of each TCP stream,
// and pairs them in order (HTTP/1.x answers in request order; 1xx interim
// responses are skipped). In a stream where a HEAD request is pipelined,
// tshark does not know which response answers the HEAD and reads the next
// response as its body; the requests of such streams are compared by
// (method, path) only.
//
// A capture that tshark cannot judge can be excluded with a file next to
// it named <capture>.nooracle whose text says why.
package oracle

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/tests/testkit"
)

func TestReplayMatchesTshark(t *testing.T) {
	testkit.RequireTools(t, "tshark")
	root := testkit.RepoRoot(t)
	captures := findCaptures(t, filepath.Join(root, "testdata"))
	if len(captures) == 0 {
		t.Skip("no *.pcap or *.pcapng under testdata/")
	}
	bin, err := testkit.Build(t.TempDir(), "./sniffer")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range captures {
		rel, _ := filepath.Rel(root, c)
		t.Run(rel, func(t *testing.T) {
			if why, err := os.ReadFile(c + ".nooracle"); err == nil {
				t.Skipf("excluded by %s.nooracle: %s", filepath.Base(c), strings.TrimSpace(string(why)))
			}
			t.Parallel()
			compare(t, bin[0], c)
		})
	}
}

// findCaptures lists the capture files under dir, leaving out fuzz corpora.
func findCaptures(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "fuzz" || n == "corpus" || strings.HasPrefix(n, "Fuzz") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(p)); ext == ".pcap" || ext == ".pcapng" {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

type pair struct{ method, path, status string }

type req struct{ method, path string }

func compare(t *testing.T, sniffer, capture string) {
	recs := replay(t, sniffer, capture)
	view := dissect(t, capture)

	var answered, pending []testkit.Record
	for _, r := range recs {
		if r.IsPending == "true" {
			pending = append(pending, r)
		} else {
			answered = append(answered, r)
		}
	}
	t.Logf("sniffer: %d answered, %d pending; tshark: %d pairs, %d requests in streams with a pipelined HEAD, %d unanswered requests",
		len(answered), len(pending), len(view.pairs), len(view.unframed), len(view.unanswered))

	expected := map[pair]int{}
	for _, p := range view.pairs {
		expected[p]++
	}
	unframed := map[req]int{}
	for _, r := range view.unframed {
		unframed[req{r.method, r.path}]++
	}
	var extra []string
	for _, r := range answered {
		p := pair{r.Method, r.Path, r.StatusCode}
		switch {
		case expected[p] > 0:
			expected[p]--
		case unframed[req{r.Method, r.Path}] > 0:
			unframed[req{r.Method, r.Path}]--
		default:
			extra = append(extra, fmt.Sprintf("%s %s -> %s", r.Method, r.Path, r.StatusCode))
		}
	}
	// Pending records must be requests tshark saw without a response (or
	// in a stream it cannot frame).
	unanswered := map[req]int{}
	for _, r := range view.unanswered {
		unanswered[req{r.method, r.path}]++
	}
	var badPending []string
	for _, r := range pending {
		k := req{r.Method, r.Path}
		switch {
		case unanswered[k] > 0:
			unanswered[k]--
		case unframed[k] > 0:
			unframed[k]--
		default:
			badPending = append(badPending, fmt.Sprintf("%s %s", r.Method, r.Path))
		}
	}
	var missing []string
	for p, n := range expected {
		for range n {
			missing = append(missing, fmt.Sprintf("%s %s -> %s", p.method, p.path, p.status))
		}
	}
	for r, n := range unframed {
		for range n {
			missing = append(missing, fmt.Sprintf("%s %s (pipelined HEAD stream)", r.method, r.path))
		}
	}
	sort.Strings(extra)
	sort.Strings(missing)
	sort.Strings(badPending)
	if len(extra) > 0 {
		t.Errorf("%d answered pairs from the sniffer that tshark does not see:\n  %s", len(extra), strings.Join(extra, "\n  "))
	}
	if len(missing) > 0 {
		t.Errorf("%d pairs tshark sees that the sniffer did not emit:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if len(badPending) > 0 {
		t.Errorf("%d pending records for requests that tshark sees answered or not at all:\n  %s", len(badPending), strings.Join(badPending, "\n  "))
	}
	if len(view.unanswered) > 0 && len(pending) == 0 {
		t.Logf("tshark sees %d requests without a response; the sniffer emitted no pending record (allowed: -pending drop, or the pending timeout)", len(view.unanswered))
	}
}

// replay runs the sniffer on a capture and parses its records.
func replay(t *testing.T, sniffer, capture string) []testkit.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sniffer, "-pcap", capture, "-kafka", "none", "-out", "-")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sniffer -pcap %s -kafka none -out -: %v\n%s", capture, err, tail(stderr.String(), 3000))
	}
	var out []testkit.Record
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		r, err := testkit.ParseRecord(line)
		if err != nil {
			t.Errorf("record: %v\n%.800s", err, line)
			continue
		}
		if r.Source != "PCAP" {
			t.Errorf("record %s %s has source %q, want PCAP", r.Method, r.Path, r.Source)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tsharkView is what tshark finds in a capture.
type tsharkView struct {
	pairs      []pair // answered requests, in streams tshark frames reliably
	unanswered []req  // requests without a response, in those streams
	unframed   []req  // every request of streams with a pipelined HEAD
}

// sep separates the values of a field that occurs more than once in a
// frame (several pipelined requests in one segment): a control character
// that no request-target contains.
const sep = "\x1f"

// dissect runs tshark over the capture and pairs each TCP stream's
// requests and final responses in order.
func dissect(t *testing.T, capture string) tsharkView {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{
		"-r", capture, "-2", "-n",
		"-d", "udp.port==4789,vxlan",
		"--enable-heuristic", "http_tcp",
		"-o", "tcp.reassemble_out_of_order:TRUE",
		"-Y", "http.request or http.response",
		"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=" + sep,
		"-e", "frame.number", "-e", "tcp.stream",
		"-e", "http.request.method", "-e", "http.request.uri", "-e", "http.response.code",
	}
	cmd := exec.CommandContext(ctx, "tshark", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 3000))
	}

	type stream struct {
		reqs          []req
		codes         []string
		pipelinedHead bool
		hasHead       bool
		pipelined     bool
	}
	streams := map[string]*stream{}
	var order []string
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		for len(f) < 5 {
			f = append(f, "")
		}
		id := f[1]
		s := streams[id]
		if s == nil {
			s = &stream{}
			streams[id] = s
			order = append(order, id)
		}
		// Responses of a frame come before its requests only when both
		// directions share a frame, which TCP does not allow: one of the
		// two lists is empty.
		for _, c := range split(f[4]) {
			n, err := strconv.Atoi(c)
			if err != nil || (n >= 100 && n < 200) {
				continue // 1xx interim responses answer no request
			}
			s.codes = append(s.codes, c)
		}
		methods, uris := split(f[2]), split(f[3])
		if len(methods) != len(uris) {
			t.Fatalf("tshark frame %s: %d methods but %d request-targets", f[0], len(methods), len(uris))
		}
		if len(methods) > 0 && (len(s.reqs) > len(s.codes) || len(methods) > 1) {
			s.pipelined = true
		}
		for i, m := range methods {
			s.reqs = append(s.reqs, req{m, uris[i]})
			if m == "HEAD" {
				s.hasHead = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var v tsharkView
	for _, id := range order {
		s := streams[id]
		if s.pipelined && s.hasHead {
			v.unframed = append(v.unframed, s.reqs...)
			continue
		}
		if len(s.codes) > len(s.reqs) {
			t.Errorf("tshark stream %s: %d responses for %d requests (capture started mid-stream?)", id, len(s.codes), len(s.reqs))
		}
		for i, r := range s.reqs {
			if i < len(s.codes) {
				v.pairs = append(v.pairs, pair{r.method, r.path, s.codes[i]})
			} else {
				v.unanswered = append(v.unanswered, r)
			}
		}
	}
	return v
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, sep)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
