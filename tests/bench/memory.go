package main

// The memory mode (-memory, make bench-memory): hostile captures replayed
// through the real sniffer binary with its default limits, its peak RSS
// read from /proc and from the kernel's accounting when it exits.
//
// Replay rather than live capture, because replay is the worst case for
// memory: packets come as fast as the workers take them (never dropped at
// a full queue, which live capture would do and so shed load for free), and
// the capture clock moves only as fast as the capture, so no idle timeout
// fires while a flood is held. What a live sniffer holds is at most what a
// replay of the same packets holds.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// memScenario is one hostile capture and how the sniffer is run on it.
type memScenario struct {
	Name string
	What string
	Env  []string // added to the sniffer's environment
	// File names the capture when two scenarios share one.
	File string
	gen  func(w *writer, scale float64) memExpect
}

// memExpect is what a generated capture should give.
type memExpect struct {
	Good int // exchanges on well-behaved connections, verified by id
}

var memScenarios = []memScenario{
	{Name: "partial", What: "300,000 connections each holding a partial request, 1 in 100 followed by a good exchange", gen: genPartial},
	{Name: "synflood", What: "300,000 SYNs and data segments from random 4-tuples with random payloads", gen: genSYNFlood},
	{Name: "endless", What: "bodies that never end: Content-Length 2^40, chunked forever (96 MiB each)", gen: genEndless},
	{Name: "bomb", What: "20 gzip responses inflating 1000x (256 MiB of zeros each)", gen: genBomb},
	{Name: "partial-128", What: "partial with GOMEMLIMIT=128MiB", File: "partial", Env: []string{"GOMEMLIMIT=128MiB"}},
}

// memOptions configures runMemory.
type memOptions struct {
	dir     string   // where the captures are generated (and kept)
	sniffer string   // the sniffer binary; built into dir when empty
	runs    int      // runs per scenario: medians are printed
	scale   float64  // share of the connection counts generated (tests use less)
	only    []string // scenario names; all when empty
	args    []string // extra sniffer flags (tests); the bench runs the defaults
	limit   float64  // the target: peak RSS MiB
}

// memResult is one scenario's figures: medians over the runs, the stats
// of the median run.
type memResult struct {
	Name       string
	PeakRSSMiB float64
	Stats      map[string]float64 // the sniffer's "replay stats" log line
	Verdict    verdict
	Expect     memExpect
	Wall       time.Duration
}

func runMemory(o memOptions, stdout io.Writer) ([]memResult, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return nil, err
	}
	if o.sniffer == "" {
		o.sniffer = filepath.Join(o.dir, "sniffer")
		build := exec.Command("go", "build", "-o", o.sniffer, "./sniffer")
		build.Dir = moduleRoot()
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building the sniffer: %w", err)
		}
	}
	fmt.Fprintf(stdout, "memory under hostile traffic: %s -pcap with default limits, medians of %d runs, target peak RSS <= %.0f MiB\n", o.sniffer, o.runs, o.limit)
	expects := map[string]memExpect{}
	var results []memResult
	for _, sc := range memScenarios {
		if len(o.only) > 0 && !slices.Contains(o.only, sc.Name) {
			continue
		}
		file := sc.File
		if file == "" {
			file = sc.Name
		}
		path := filepath.Join(o.dir, fmt.Sprintf("mem-%s-%g.pcap", file, o.scale))
		exp, ok := expects[file]
		if !ok {
			var err error
			if exp, err = genMemCapture(path, file, o.scale); err != nil {
				return nil, fmt.Errorf("generating %s: %w", file, err)
			}
			expects[file] = exp
		}
		var runs []memResult
		for range o.runs {
			r, err := runSniffer(o, path, sc.Env)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sc.Name, err)
			}
			runs = append(runs, r)
		}
		slices.SortFunc(runs, func(a, b memResult) int { return int(a.PeakRSSMiB*1000 - b.PeakRSSMiB*1000) })
		r := runs[len(runs)/2]
		r.Name, r.Expect = sc.Name, exp
		results = append(results, r)
		printMemResult(stdout, sc, r, o.limit)
	}
	return results, nil
}

func printMemResult(w io.Writer, sc memScenario, r memResult, limit float64) {
	st := r.Stats
	verdict := "PASS"
	if r.PeakRSSMiB > limit {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%-12s %s\n", sc.Name, sc.What)
	fmt.Fprintf(w, "  peak RSS %.0f MiB (%s), conns tracked at peak %.0f, opened %.0f\n",
		r.PeakRSSMiB, verdict, st["flow_open_conns_peak"], st["flow_conns_opened"])
	var shed []string
	for _, k := range []string{"flow_conn_table_full", "flow_conns_evicted_idle", "flow_conns_evicted_memory", "flow_conns_refused_memory"} {
		if v, ok := st[k]; ok {
			shed = append(shed, fmt.Sprintf("%s %.0f", strings.TrimPrefix(k, "flow_"), v))
		}
	}
	fmt.Fprintf(w, "  shed: %s\n", strings.Join(shed, ", "))
	fmt.Fprintf(w, "  records %.0f (pending %.0f); good exchanges paired by id %d of %d, id mismatches %d; http incomplete %.0f, body_truncated %.0f, body_budget_cuts %.0f, garbage %.0f; %s\n",
		st["recorder_records"], st["recorder_records_pending"], r.Verdict.Pairs, r.Expect.Good, r.Verdict.Mismatches,
		st["http_incomplete"], st["http_body_truncated"], st["http_body_budget_cuts"], st["http_garbage"], r.Wall.Round(time.Millisecond))
}

// runSniffer replays path through the sniffer binary and samples its RSS.
func runSniffer(o memOptions, path string, env []string) (memResult, error) {
	out := path + ".out"
	args := append([]string{"-pcap", path, "-kafka", "none", "-out", out, "-log-format", "json"}, o.args...)
	cmd := exec.Command(o.sniffer, args...)
	for _, kv := range os.Environ() {
		// The defaults are what is measured: no SNIFFER_* or GO* setting
		// of the caller's leaks in.
		if !strings.HasPrefix(kv, "SNIFFER_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GOGC=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	os.Remove(out)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return memResult{}, fmt.Errorf("starting %s: %w", o.sniffer, err)
	}
	done := make(chan struct{})
	peak := make(chan float64, 1)
	go func() {
		var hwm float64
		status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := readStatusKiB(status, "VmHWM:"); ok {
				hwm = max(hwm, v/1024)
			}
			select {
			case <-done:
				peak <- hwm
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(t0)
	close(done)
	r := memResult{PeakRSSMiB: <-peak, Wall: wall}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSSMiB = max(r.PeakRSSMiB, float64(ru.Maxrss)/1024)
	}
	if err != nil {
		return r, fmt.Errorf("sniffer: %w\n%s", err, tail(stderr.Bytes(), 2000))
	}
	if r.Stats = replayStats(stderr.Bytes()); r.Stats == nil {
		return r, fmt.Errorf("sniffer logged no replay stats:\n%s", tail(stderr.Bytes(), 2000))
	}
	v := &verifier{}
	f, err := os.Open(out)
	if err != nil {
		return r, err
	}
	defer os.Remove(out)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		v.check(sc.Bytes())
	}
	r.Verdict = v.verdict()
	return r, sc.Err()
}

// readStatusKiB reads one "Name: N kB" line of /proc/<pid>/status.
func readStatusKiB(path, field string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// replayStats finds the sniffer's "replay stats" JSON log line.
func replayStats(log []byte) map[string]float64 {
	for _, line := range bytes.Split(log, []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) != nil || m["msg"] != "replay stats" {
			continue
		}
		st := map[string]float64{}
		for k, v := range m {
			if f, ok := v.(float64); ok {
				st[k] = f
			}
		}
		return st
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// moduleRoot is the directory of go.mod above the working directory.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func genMemCapture(path, name string, scale float64) (memExpect, error) {
	var sc memScenario
	for _, s := range memScenarios {
		if s.Name == name {
			sc = s
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return memExpect{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return memExpect{}, err
	}
	w := &writer{w: pw, ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), rng: rand.New(rand.NewPCG(11, uint64(len(name))))}
	exp := sc.gen(w, scale)
	if err := bw.Flush(); err != nil {
		return exp, err
	}
	return exp, f.Close()
}

// memConn is the i-th connection of a generated flood: a unique 4-tuple.
func memConn(i int) *tcpConn {
	c := &tcpConn{
		vni:    uint32(200 + i%4),
		client: [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)},
		server: [4]byte{10, 250, 0, byte(1 + i%8)},
		cport:  uint16(10000 + i%50000),
		sport:  8080,
		cseq:   uint32(1000 + i*7919),
		sseq:   uint32(5000000 + i*104729),
	}
	c.clientMAC = [6]byte{2, 0, byte(i >> 16), 0, byte(i >> 8), byte(i)}
	c.srvrMAC = [6]byte{2, 0, 0, 1, 0, byte(1 + i%8)}
	return c
}

func (w *writer) handshake(c *tcpConn) {
	w.segment(c, true, flagSYN, nil)
	c.cseq++
	w.segment(c, false, flagSYN|flagACK, nil)
	c.sseq++
	w.segment(c, true, flagACK, nil)
}

func (w *writer) fin(c *tcpConn) {
	w.segment(c, true, flagFIN|flagACK, nil)
	c.cseq++
	w.segment(c, false, flagFIN|flagACK, nil)
	c.sseq++
	w.segment(c, true, flagACK, nil)
}

// genPartial: connections that each send a request head without its final
// empty line, or a head and part of its body, and then nothing (a
// slowloris), spread over a minute of capture time. Every 100th connection
// is followed by a well-behaved one: a request and its response, then FIN.
func genPartial(w *writer, scale float64) memExpect {
	n := int(300000 * scale)
	step := time.Minute / time.Duration(max(n, 1))
	pad := strings.Repeat("x", 120)
	good := 0
	for i := range n {
		w.ts = w.ts.Add(step)
		c := memConn(i)
		w.handshake(c)
		var head string
		if i%2 == 0 {
			head = "GET /api/v1/slow/" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: api.example.internal\r\nUser-Agent: slow/1.0\r\nX-Pad: " + pad + "\r\n"
		} else {
			head = "POST /api/v1/slow/" + strconv.Itoa(i) + " HTTP/1.1\r\nHost: api.example.internal\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"pad\":\"" + pad + pad + pad
		}
		w.send(c, true, []byte(head))
		if i%100 == 99 {
			g := memConn(n + good)
			g.client[0] = 11 // apart from the flood's addresses
			good++
			w.handshake(g)
			w.send(g, true, appendRequest(nil, good, good%2 == 0))
			w.send(g, false, appendResponse(nil, good))
			w.fin(g)
		}
	}
	return memExpect{Good: good}
}

// genSYNFlood: SYNs with random payloads and data segments of random bytes,
// each from a random 4-tuple.
func genSYNFlood(w *writer, scale float64) memExpect {
	n := int(300000 * scale)
	buf := make([]byte, 1448)
	for i := range n {
		c := &tcpConn{vni: 300, cport: uint16(w.rng.Uint32()), sport: uint16(w.rng.Uint32()), cseq: w.rng.Uint32(), sseq: w.rng.Uint32()}
		ip := w.rng.Uint64()
		c.client = [4]byte{10, byte(ip), byte(ip >> 8), byte(ip >> 16)}
		c.server = [4]byte{10, byte(ip >> 24), byte(ip >> 32), byte(ip >> 40)}
		payload := buf[:w.rng.IntN(len(buf))]
		for j := range payload {
			payload[j] = byte(w.rng.Uint32())
		}
		if i%2 == 0 {
			w.segment(c, true, flagSYN, payload[:len(payload)%257])
		} else {
			w.segment(c, true, flagACK|flagPSH, payload)
		}
	}
	return memExpect{}
}

// genEndless: a request whose Content-Length is 2^40, a chunked response
// that never ends and a response whose Content-Length is 2^40, each
// streaming 96 MiB (scaled), interleaved; then one good exchange.
func genEndless(w *writer, scale float64) memExpect {
	total := int(96 << 20 * scale)
	post, chunked, long := memConn(1), memConn(2), memConn(3)
	for _, c := range []*tcpConn{post, chunked, long} {
		w.handshake(c)
	}
	w.send(post, true, []byte("POST /upload HTTP/1.1\r\nHost: api.example.internal\r\nContent-Length: 1099511627776\r\n\r\n"))
	w.send(chunked, true, []byte("GET /stream?id=1 HTTP/1.1\r\nHost: api.example.internal\r\n\r\n"))
	w.send(chunked, false, []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"))
	w.send(long, true, []byte("GET /download?id=2 HTTP/1.1\r\nHost: api.example.internal\r\n\r\n"))
	w.send(long, false, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1099511627776\r\n\r\n"))
	block := bytes.Repeat([]byte(`{"row":"0123456789abcdef"},`), 4000/27)
	chunk := append([]byte(strconv.FormatInt(int64(len(block)), 16)+"\r\n"), block...)
	chunk = append(chunk, "\r\n"...)
	for sent := 0; sent < total; sent += len(block) {
		w.send(post, true, block)
		w.send(chunked, false, chunk)
		w.send(long, false, block)
	}
	g := memConn(4)
	w.handshake(g)
	w.send(g, true, appendRequest(nil, 3, false))
	w.send(g, false, appendResponse(nil, 3))
	w.fin(g)
	return memExpect{Good: 1}
}

// genBomb: 20 connections, each a GET answered by a gzip body of 256 MiB
// of zeros (about 256 KiB on the wire), interleaved.
func genBomb(w *writer, scale float64) memExpect {
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range int(256 * max(scale, 1.0/64)) {
		zw.Write(zeros)
	}
	zw.Close()
	n := 20
	conns := make([]*tcpConn, n)
	var resps [][]byte
	for i := range conns {
		c := memConn(i)
		conns[i] = c
		w.handshake(c)
		w.send(c, true, appendRequest(nil, i+1, false))
		head := responseHead(nil, i+1)
		head = append(head, "Content-Encoding: gzip\r\nContent-Length: "+strconv.Itoa(gz.Len())+"\r\n\r\n"...)
		resps = append(resps, append(head, gz.Bytes()...))
	}
	// Interleave the responses segment by segment, so that all of them are
	// being read at once.
	for off := 0; ; off += mss {
		sent := false
		for i, c := range conns {
			if off < len(resps[i]) {
				w.send(c, false, resps[i][off:min(off+mss, len(resps[i]))])
				sent = true
			}
		}
		if !sent {
			break
		}
	}
	for _, c := range conns {
		w.fin(c)
	}
	return memExpect{Good: n}
}
