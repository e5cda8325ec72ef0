package main

// The live benchmark (`make bench-live`, `bench live`): the real sniffer
// binary listens on UDP 4789 in one network namespace; a sender in another,
// joined by a veth pair, replays capture (a) at rising rates with sendmmsg.
// Per rate it prints the pairs read back from the sniffer's embedded broker
// and checked by id, the kernel's drops (/proc/net/udp) and the sniffer's
// own drop counters (/metrics). The pure parts (rate plan, pacing, VNIs per
// loop, /proc/net/udp, metrics text, quantiles) are in livecalc.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/apitap/apitap/internal/capture"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sys/unix"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/decode"
	"github.com/apitap/apitap/internal/embedded"
	"github.com/apitap/apitap/tests/testkit"
)

const (
	liveNSPrefix  = "apitap-live-"
	liveSnifferIP = "198.18.200.1"
	liveSenderIP  = "198.18.200.2"
	liveUDPPort   = 4789
	liveAdmin     = "127.0.0.1:9090"
	liveBroker    = "127.0.0.1:9092"
)

// liveOptions are the flags of `bench live`.
type liveOptions struct {
	pcap, sniffer, snifferArgs, cpuProfile string
	sink                                   string
	rates                                  []int
	duration                               time.Duration
	runs, sendSockets, sendBatch           int
	keep                                   float64
}

func runLive(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench live", flag.ContinueOnError)
	send := fs.Bool("send", false, "be the sender (the benchmark runs this inside the sender's namespace)")
	to := fs.String("to", "", "with -send: UDP address of the sniffer")
	rate := fs.Int("rate", 0, "with -send: packets/s, 0 unpaced")
	var o liveOptions
	fs.StringVar(&o.pcap, "pcap", "bench-data/small.pcap", "VXLAN capture to replay (make bench-data); its .json manifest gives the exchanges per loop")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "least sending time per rate; the capture is sent in whole loops, each with its own VNIs")
	rates := fs.String("rates", "100k,200k,300k,400k,500k,600k,unpaced", "comma-separated packets/s (k and M suffixes), \"unpaced\" for as fast as the sender can")
	fs.IntVar(&o.runs, "runs", 1, "runs per rate; each figure printed is the median")
	fs.StringVar(&o.sniffer, "sniffer", "", "sniffer binary (default: go build ./sniffer into a temporary directory)")
	fs.StringVar(&o.snifferArgs, "sniffer-args", "", `extra sniffer flags, space-separated, e.g. "-read-batch 1"`)
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "profile the sniffer at the last rate of -rates into this file and print pprof's top 15")
	fs.IntVar(&o.sendSockets, "send-sockets", 8, "sender UDP sockets (source ports); a TCP flow always leaves from the same one, and SO_REUSEPORT spreads them over the sniffer's sockets")
	fs.IntVar(&o.sendBatch, "send-batch", 64, "datagrams per sendmmsg call")
	fs.StringVar(&o.sink, "sink", "embedded", `where the sniffer publishes: "embedded" (its in-process Kafka broker, read back with a Kafka client) or "file" (-kafka none -out, JSON lines read back from a file: intake and pairing without Kafka)`)
	fs.Float64Var(&o.keep, "keep", 99.9, "percentage of pairs a rate must keep to count as sustained")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.sink != "embedded" && o.sink != "file" {
		return fmt.Errorf("-sink %q: want embedded or file", o.sink)
	}
	if o.sendSockets < 1 || o.sendBatch < 1 || o.sendBatch > 1024 {
		return fmt.Errorf("-send-sockets %d, -send-batch %d: want at least 1, and at most 1024 per batch", o.sendSockets, o.sendBatch)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *send {
		res, err := sendCapture(ctx, o.pcap, *to, *rate, o.duration, o.sendSockets, o.sendBatch)
		if err != nil {
			return err
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	var err error
	if o.rates, err = parseRates(*rates); err != nil {
		return err
	}
	if o.runs < 1 {
		return fmt.Errorf("-runs %d: want at least 1", o.runs)
	}
	return liveBench(ctx, o, stdout)
}

// ---- sender ----

// sendResult is what the sender prints (JSON) for the benchmark.
type sendResult struct {
	Packets uint64  `json:"packets"`
	Loops   int     `json:"loops"`
	Seconds float64 `json:"seconds"`
	Errors  uint64  `json:"errors"`
}

// sendSocket batches datagrams for one connected UDP socket.
type sendSocket struct {
	raw  syscall.RawConn
	hdrs []unix.Mmsghdr
	iovs []unix.Iovec
	n    int
	errs uint64
	send func(fd uintptr) bool // s.sendmmsg, made once
	off  int
}

func (s *sendSocket) add(b []byte) {
	s.iovs[s.n].Base = &b[0]
	s.iovs[s.n].SetLen(len(b))
	s.n++
}

// sendmmsg sends the batch from s.off; false waits for the socket to be
// writable.
func (s *sendSocket) sendmmsg(fd uintptr) bool {
	for s.off < s.n {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.hdrs[s.off])), uintptr(s.n-s.off), 0, 0, 0)
		switch e {
		case 0:
			s.off += int(n)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			// The first datagram failed (ECONNREFUSED before the sniffer
			// listens, ENOBUFS): count it and go on with the next.
			s.errs++
			s.off++
		}
	}
	return true
}

func (s *sendSocket) flush() error {
	if s.n == 0 {
		return nil
	}
	s.off = 0
	err := s.raw.Write(s.send)
	s.n = 0
	return err
}

// sendCapture replays the VXLAN payloads of path to addr in whole loops
// until duration has passed, each loop with its own VNIs, at rate packets/s
// (0: as fast as it can).
func sendCapture(ctx context.Context, path, addr string, rate int, duration time.Duration, nsock, batch int) (sendResult, error) {
	pkts, err := readVXLANPayloads(path)
	if err != nil {
		return sendResult{}, err
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return sendResult{}, fmt.Errorf("sender: address %q: %w", addr, err)
	}
	socks := make([]*sendSocket, nsock)
	for i := range socks {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return sendResult{}, fmt.Errorf("sender: dialing %s: %w", addr, err)
		}
		defer c.Close()
		_ = c.SetWriteBuffer(8 << 20)
		raw, err := c.SyscallConn()
		if err != nil {
			return sendResult{}, fmt.Errorf("sender: raw socket: %w", err)
		}
		s := &sendSocket{raw: raw, hdrs: make([]unix.Mmsghdr, batch), iovs: make([]unix.Iovec, batch)}
		for j := range s.hdrs {
			s.hdrs[j].Hdr.Iov = &s.iovs[j]
			s.hdrs[j].Hdr.SetIovlen(1)
		}
		s.send = s.sendmmsg
		socks[i] = s
	}
	// A flow always leaves from the same socket (AWS mirroring varies the
	// VXLAN source port by flow), so its packets stay in order.
	sockOf := make([]uint8, len(pkts))
	orig := make([]uint32, len(pkts))
	minVNI, maxVNI := uint32(math.MaxUint32), uint32(0)
	var p decode.Packet
	for i, b := range pkts {
		decode.VXLAN(b, &p)
		sockOf[i] = uint8(flowHash(&p) % uint64(nsock))
		orig[i] = p.VNI
		minVNI, maxVNI = min(minVNI, p.VNI), max(maxVNI, p.VNI)
	}
	span := maxVNI - minVNI + 1
	var res sendResult
	start := time.Now()
	for loop := 0; ; loop++ {
		for i, b := range pkts {
			v := loopVNI(orig[i], span, loop)
			b[4], b[5], b[6] = byte(v>>16), byte(v>>8), byte(v)
		}
		for i, b := range pkts {
			s := socks[sockOf[i]]
			s.add(b)
			if s.n < batch {
				continue
			}
			if err := s.flush(); err != nil {
				return res, fmt.Errorf("sender: sendmmsg: %w", err)
			}
			res.Packets += uint64(batch)
			if rate > 0 {
				if d := paceDelay(time.Since(start), res.Packets, rate); d > 200*time.Microsecond {
					time.Sleep(d)
				}
			}
		}
		// The next loop rewrites the VNIs in place: send what is batched.
		for _, s := range socks {
			n := s.n
			if err := s.flush(); err != nil {
				return res, fmt.Errorf("sender: sendmmsg: %w", err)
			}
			res.Packets += uint64(n)
		}
		res.Loops = loop + 1
		if time.Since(start) >= duration || ctx.Err() != nil {
			break
		}
	}
	res.Seconds = time.Since(start).Seconds()
	for _, s := range socks {
		res.Errors += s.errs
	}
	return res, ctx.Err()
}

// flowHash is the same for both directions of a connection.
func flowHash(p *decode.Packet) uint64 {
	a := binary.BigEndian.AppendUint16(p.Src.AppendTo(nil), p.SrcPort)
	b := binary.BigEndian.AppendUint16(p.Dst.AppendTo(nil), p.DstPort)
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	h := fnv.New64a()
	h.Write(a)
	h.Write(b)
	return h.Sum64()
}

// readVXLANPayloads returns the UDP payloads (VXLAN header first) of a
// classic pcap file's outer Ethernet/IPv4/UDP 4789 frames.
func readVXLANPayloads(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sender: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, fmt.Errorf("sender: reading %s: %w", path, err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if hdr[0] == 0xa1 && hdr[1] == 0xb2 {
		order = binary.BigEndian
	}
	var out [][]byte
	for {
		var rec [16]byte
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			break
		}
		frame := make([]byte, order.Uint32(rec[8:]))
		if _, err := io.ReadFull(br, frame); err != nil {
			return nil, fmt.Errorf("sender: reading %s: %w", path, err)
		}
		payload, ok := outerUDPPayload(frame)
		if !ok {
			return nil, fmt.Errorf("sender: %s: frame %d is not Ethernet/IPv4/UDP %d", path, len(out), liveUDPPort)
		}
		out = append(out, payload)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sender: %s has no frames", path)
	}
	return out, nil
}

func outerUDPPayload(b []byte) ([]byte, bool) {
	if len(b) < 14+20+8 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return nil, false
	}
	ip := b[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != 17 || len(ip) < ihl+8 {
		return nil, false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[2:]) != liveUDPPort || len(udp) < 9 {
		return nil, false
	}
	return udp[8:], true
}

// ---- the benchmark ----

// liveEnv is the two namespaces and the binaries of one benchmark.
type liveEnv struct {
	snd, snf  string
	tmp       string
	bench     string
	sniffer   string
	pcap      string
	exchanges int // pairs per loop of the capture
	o         liveOptions
	http      *http.Client
}

// rateResult is one run at one rate.
type rateResult struct {
	offered                  int // 0: unpaced
	sent                     sendResult
	expected, kept, mismatch uint64
	kernelDrops              uint64
	drops                    map[string]float64
	dropDetails              []string
	latency                  []bucket // delivery latency histogram over the run
	latencyPresent           bool
}

func (r rateResult) sendPPS() float64 { return float64(r.sent.Packets) / r.sent.Seconds }
func (r rateResult) keptPct() float64 { return 100 * float64(r.kept) / float64(max(r.expected, 1)) }

func liveBench(ctx context.Context, o liveOptions, stdout io.Writer) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("live: needs root (network namespaces)")
	}
	var m manifest
	mb, err := os.ReadFile(strings.TrimSuffix(o.pcap, ".pcap") + ".json")
	if err != nil {
		return fmt.Errorf("live: reading the manifest of %s (run make bench-data): %w", o.pcap, err)
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return fmt.Errorf("live: manifest of %s: %w", o.pcap, err)
	}
	tmp, err := os.MkdirTemp("", "apitap-live-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	e := &liveEnv{tmp: tmp, pcap: o.pcap, exchanges: m.Exchanges, o: o}
	if e.bench, err = os.Executable(); err != nil {
		return err
	}
	e.sniffer = o.sniffer
	if e.sniffer == "" {
		e.sniffer = filepath.Join(tmp, "sniffer")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", e.sniffer, "./sniffer").CombinedOutput(); err != nil {
			return fmt.Errorf("live: building the sniffer: %w\n%s", err, out)
		}
	}
	removeStaleLiveNamespaces()
	teardown, err := e.setup(ctx)
	defer teardown()
	if err != nil {
		return err
	}
	e.http = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: e.dialSniffer, DisableKeepAlives: true}}

	fmt.Fprintf(stdout, "live: sniffer in %s (%s:%d), sender in %s over veth; capture %s (%d packets, %d exchanges per loop); at least %s per rate; medians of %d runs; sniffer flags: %q\n",
		e.snf, liveSnifferIP, liveUDPPort, e.snd, o.pcap, m.Packets, m.Exchanges, o.duration, o.runs, o.snifferArgs)
	fmt.Fprintf(stdout, "%-9s %11s %10s %10s %10s %8s %9s %12s %8s %8s %9s %8s\n",
		"offered", "sent pps", "loops", "expected", "kept", "kept %", "mismatch", "kernel drop", "flow", "http", "recorder", "kafka")
	var results []rateResult
	for i, rate := range o.rates {
		var runs []rateResult
		for run := range o.runs {
			profile := ""
			if o.cpuProfile != "" && i == len(o.rates)-1 && run == 0 {
				profile = o.cpuProfile
			}
			r, err := e.runRate(ctx, rate, profile)
			if err != nil {
				return fmt.Errorf("live: rate %s: %w", rateName(rate), err)
			}
			runs = append(runs, r)
		}
		r := medianResult(runs)
		results = append(results, r)
		fmt.Fprintf(stdout, "%-9s %11.0f %10d %10d %10d %8.3f %9d %12d %8.0f %8.0f %9.0f %8.0f\n",
			rateName(rate), r.sendPPS(), r.sent.Loops, r.expected, r.kept, r.keptPct(), r.mismatch, r.kernelDrops,
			r.drops["flow"], r.drops["http"], r.drops["recorder"], r.drops["kafka"])
		for j, run := range runs {
			if len(run.dropDetails) > 0 {
				fmt.Fprintf(stdout, "  run %d drops: %s\n", j+1, strings.Join(run.dropDetails, " "))
			}
		}
	}
	peak, ok := highestSustained(results, o.keep)
	if !ok {
		fmt.Fprintf(stdout, "highest rate with >= %.1f%% of pairs kept: none\nlatency: n/a (no sustained rate)\n", o.keep)
	} else {
		fmt.Fprintf(stdout, "highest rate with >= %.1f%% of pairs kept: %.0f packets/s (offered %s)\n", o.keep, peak.sendPPS(), rateName(peak.offered))
		half := int(peak.sendPPS() / 2)
		r, err := e.runRate(ctx, half, "")
		if err != nil {
			return fmt.Errorf("live: latency run at %d packets/s: %w", half, err)
		}
		if !r.latencyPresent {
			fmt.Fprintln(stdout, "latency: n/a (metric absent)")
		} else {
			fmt.Fprintf(stdout, "latency at half the peak (%d packets/s, %.3f%% kept): last packet to broker ack p50 %.1f ms, p99 %.1f ms (%s, %.0f pairs)\n",
				half, r.keptPct(), 1000*quantile(0.5, r.latency), 1000*quantile(0.99, r.latency), latencyMetric, r.latency[len(r.latency)-1].count)
		}
	}
	if o.cpuProfile != "" {
		out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", e.sniffer, o.cpuProfile).CombinedOutput()
		fmt.Fprintf(stdout, "sniffer CPU profile at %s (%s):\n%s", rateName(o.rates[len(o.rates)-1]), o.cpuProfile, out)
		if err != nil {
			return fmt.Errorf("live: go tool pprof: %w", err)
		}
	}
	return nil
}

// medianResult takes each figure's median over runs.
func medianResult(runs []rateResult) rateResult {
	if len(runs) == 1 {
		return runs[0]
	}
	med := func(f func(rateResult) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	r := runs[0]
	pps := med(rateResult.sendPPS)
	r.sent.Loops = int(med(func(r rateResult) float64 { return float64(r.sent.Loops) }))
	r.sent.Seconds = 1
	r.sent.Packets = uint64(pps)
	r.expected = uint64(med(func(r rateResult) float64 { return float64(r.expected) }))
	r.kept = uint64(med(func(r rateResult) float64 { return float64(r.kept) }))
	r.mismatch = uint64(med(func(r rateResult) float64 { return float64(r.mismatch) }))
	r.kernelDrops = uint64(med(func(r rateResult) float64 { return float64(r.kernelDrops) }))
	r.drops = map[string]float64{}
	for _, st := range dropStages {
		r.drops[st.stage] = med(func(r rateResult) float64 { return r.drops[st.stage] })
	}
	// kept % is printed from the medians of kept and expected: with whole
	// loops, expected rarely differs between runs.
	return r
}

func rateName(rate int) string {
	if rate == 0 {
		return "unpaced"
	}
	if rate%1000 == 0 {
		return strconv.Itoa(rate/1000) + "k"
	}
	return strconv.Itoa(rate)
}

func (e *liveEnv) setup(ctx context.Context) (func(), error) {
	base := fmt.Sprintf("%s%d-", liveNSPrefix, os.Getpid())
	e.snd, e.snf = base+"snd", base+"snf"
	var made []string
	teardown := func() {
		for _, ns := range made {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "live: ip netns del %s: %v %s\n", ns, err, out)
			}
		}
	}
	ip := func(args ...string) error {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("live: ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	for _, ns := range []string{e.snd, e.snf} {
		if err := ip("netns", "add", ns); err != nil {
			return teardown, err
		}
		made = append(made, ns)
	}
	// MTU 9000: a full inner segment plus VXLAN and outer headers is over
	// 1500 bytes, and mirrored traffic is not fragmented.
	for _, args := range [][]string{
		{"link", "add", "lv0", "netns", e.snd, "mtu", "9000", "type", "veth", "peer", "name", "lv1", "netns", e.snf, "mtu", "9000"},
		{"-n", e.snd, "addr", "add", liveSenderIP + "/24", "dev", "lv0"},
		{"-n", e.snf, "addr", "add", liveSnifferIP + "/24", "dev", "lv1"},
		{"-n", e.snd, "link", "set", "lv0", "up"},
		{"-n", e.snf, "link", "set", "lv1", "up"},
		{"-n", e.snd, "link", "set", "lo", "up"},
		{"-n", e.snf, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			return teardown, err
		}
	}
	return teardown, nil
}

// removeStaleLiveNamespaces deletes namespaces of earlier benchmark runs
// whose process is gone (a killed run cannot clean up).
func removeStaleLiveNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, liveNSPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidStr); err == nil && syscall.Kill(pid, 0) == nil {
			continue // its benchmark still runs
		}
		if exec.Command("ip", "netns", "del", name).Run() == nil {
			fmt.Fprintf(os.Stderr, "live: removed stale network namespace %s\n", name)
		}
	}
}

// dialSniffer connects from inside the sniffer's namespace: the socket is
// made on a thread that entered it, and stays there.
func (e *liveEnv) dialSniffer(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := testkit.InNetns(e.snf, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func (e *liveEnv) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+liveAdmin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(string(b))
}

func (e *liveEnv) udpDrops() (uint64, error) {
	var drops uint64
	err := testkit.InNetns(e.snf, func() error {
		// /proc/net is the namespace of the process's main thread; the
		// thread's own view is under thread-self.
		b, err := os.ReadFile("/proc/thread-self/net/udp")
		if err != nil {
			return err
		}
		drops, err = capture.ParseUDPDrops(string(b), liveUDPPort)
		return err
	})
	return drops, err
}

// runRate runs one fresh sniffer, sends at rate, waits for the records to
// drain, reads them back and stops the sniffer.
func (e *liveEnv) runRate(ctx context.Context, rate int, profile string) (rateResult, error) {
	res := rateResult{offered: rate}
	args := []string{"netns", "exec", e.snf, e.sniffer,
		"-listen", fmt.Sprintf("%s:%d", liveSnifferIP, liveUDPPort), "-admin-addr", liveAdmin, "-health-addr", "",
		"-log-level", "warn"}
	outPath := filepath.Join(e.tmp, "records.jsonl")
	if e.o.sink == "file" {
		args = append(args, "-kafka", "none", "-out", outPath)
		defer os.Remove(outPath)
	} else {
		// The embedded broker must hold one whole run to read it back, and
		// it lives in the sniffer's heap: without room for it the sniffer
		// would shed connections for memory the broker holds.
		args = append(args, "-kafka", "embedded", "-embedded-addr", liveBroker, "-embedded-max-bytes", "16GiB", "-memory-limit", "16GiB")
	}
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return res, err
		}
		args = append(args, "-cpuprofile", abs)
	}
	args = append(args, strings.Fields(e.o.snifferArgs)...)
	logPath := filepath.Join(e.tmp, "sniffer.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("starting the sniffer: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("sniffer did not stop within 40s of SIGTERM")
		}
	}
	defer stop()
	withLog := func(err error) error {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return fmt.Errorf("%w\nsniffer log:\n%s", err, b)
	}

	var m0 map[string]float64
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m0, err = e.metrics(ctx); err == nil {
			break
		}
		select {
		case err := <-exited:
			return res, withLog(fmt.Errorf("sniffer exited before serving /metrics: %v", err))
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return res, withLog(fmt.Errorf("sniffer's /metrics did not answer: %w", err))
		}
	}
	udp0, err := e.udpDrops()
	if err != nil {
		return res, err
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", e.snd, e.bench, "live", "-send",
		"-pcap", e.pcap, "-to", fmt.Sprintf("%s:%d", liveSnifferIP, liveUDPPort), "-rate", strconv.Itoa(rate),
		"-duration", e.o.duration.String(), "-send-sockets", strconv.Itoa(e.o.sendSockets), "-send-batch", strconv.Itoa(e.o.sendBatch)).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		return res, fmt.Errorf("sender: %w", err)
	}
	if err := json.Unmarshal(out, &res.sent); err != nil {
		return res, fmt.Errorf("sender's result %q: %w", out, err)
	}
	res.expected = uint64(res.sent.Loops) * uint64(e.exchanges)
	m1, err := e.drain(ctx)
	if err != nil {
		return res, withLog(err)
	}
	udp1, err := e.udpDrops()
	if err != nil {
		return res, err
	}
	res.kernelDrops = udp1 - udp0
	res.drops = stageDrops(m0, m1)
	res.dropDetails = dropDetails(m0, m1)
	res.latency, res.latencyPresent = histogramDiff(m0, m1, latencyMetric)

	v := &verifier{}
	if e.o.sink == "file" {
		// The line writer is flushed when the sniffer stops.
		if err := stop(); err != nil {
			return res, withLog(fmt.Errorf("stopping the sniffer: %w", err))
		}
		if err := checkLines(outPath, v); err != nil {
			return res, err
		}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		err = embedded.ReadEach(rctx, liveBroker, contract.DefaultTopic, func(m embedded.Message) { v.check(m.Value) },
			kgo.Dialer(e.dialSniffer))
		if err != nil {
			return res, fmt.Errorf("reading the records back: %w", err)
		}
		if err := stop(); err != nil {
			return res, withLog(fmt.Errorf("stopping the sniffer: %w", err))
		}
	}
	vd := v.verdict()
	res.kept, res.mismatch = vd.Pairs, vd.Mismatches
	return res, nil
}

// drain waits until the sniffer has published everything it will: its
// record and delivery counters stand still for a second with an empty
// Kafka queue.
func (e *liveEnv) drain(ctx context.Context) (map[string]float64, error) {
	var last map[string]float64
	still := 0
	deadline := time.Now().Add(2 * time.Minute)
	for {
		m, err := e.metrics(ctx)
		if err != nil {
			return nil, fmt.Errorf("draining: %w", err)
		}
		same := last != nil
		for _, k := range []string{"apitap_sniffer_capture_datagrams_total", "apitap_sniffer_recorder_records_total", "apitap_sniffer_kafka_delivered_total"} {
			same = same && m[k] == last[k]
		}
		if same && m["apitap_sniffer_kafka_queue_messages"] == 0 {
			still++
		} else {
			still = 0
		}
		if still >= 4 {
			return m, nil
		}
		last = m
		if time.Now().After(deadline) {
			return nil, errors.New("draining: the sniffer's counters still move after 2 minutes")
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// checkLines checks every record of a JSON-lines file.
func checkLines(path string, v *verifier) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading the records back: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		v.check(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading the records back from %s: %w", path, err)
	}
	return nil
}
