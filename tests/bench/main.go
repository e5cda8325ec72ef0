// Command bench generates VXLAN captures (-gen) and replays them through
// apitap's pipeline and through a baseline written the common way, in this
// process, printing throughput, allocation, CPU and memory figures (medians
// of -runs runs). `make bench-data` and `make bench` run it; README
// "Performance" explains the figures.
package main

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "live" {
		return runLive(args[1:], stdout) // live.go
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	dir := fs.String("dir", "bench-data", "directory of the generated captures")
	doGen := fs.Bool("gen", false, "generate the captures into -dir and exit")
	runs := fs.Int("runs", 3, "runs per figure; the median is printed")
	only := fs.String("scenarios", "", "comma-separated scenarios to replay (default all)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of apitap's replays to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (after apitap's replays) to this file")
	oursOnly := fs.Bool("ours-only", false, "skip the baseline (for profiling)")
	memory := fs.Bool("memory", false, "memory mode: generate hostile captures into -dir and replay them through the sniffer binary, printing its peak RSS (make bench-memory)")
	memScale := fs.Float64("memory-scale", 1, "memory mode: share of the connection counts and body sizes generated")
	snifferBin := fs.String("sniffer", "", "memory mode: the sniffer binary (default: built from ./sniffer into -dir)")
	kafka := fs.Bool("kafka", false, "measure the Kafka sink into the in-process broker instead of replaying the captures")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *memory {
		var names []string
		if *only != "" {
			names = strings.Split(*only, ",")
		}
		_, err := runMemory(memOptions{dir: *dir, sniffer: *snifferBin, runs: *runs, scale: *memScale, only: names, limit: 256}, stdout)
		return err
	}
	if *doGen {
		return gen(*dir, scenarios)
	}
	if *kafka {
		return benchKafka(stdout, *runs, *cpuProfile)
	}
	var todo []scenario
	for _, sc := range scenarios {
		if *only == "" || slices.Contains(strings.Split(*only, ","), sc.Name) {
			todo = append(todo, sc)
		}
	}
	cores := runtime.NumCPU()
	type loaded struct {
		sc   scenario
		path string
		m    manifest
		wire uint64
	}
	var all []loaded
	for _, sc := range todo {
		path := filepath.Join(*dir, sc.Name+".pcap")
		wire, err := capturedBytes(path)
		if err != nil {
			return fmt.Errorf("%w (run make bench-data first)", err)
		}
		var m manifest
		mb, err := os.ReadFile(filepath.Join(*dir, sc.Name+".json"))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(mb, &m); err != nil {
			return err
		}
		all = append(all, loaded{sc, path, m, wire})
	}

	fmt.Fprintf(stdout, "pipeline replay, in process, medians of %d runs, %d cores (%s/%s)\n", *runs, cores, runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "%-6s %-24s %-46s %12s\n", "data", "pipeline", "figure", "median")
	line := func(sc, who, fig, format string, v float64) {
		fmt.Fprintf(stdout, "%-6s %-24s %-46s %12s\n", sc, who, fig, fmt.Sprintf(format, v))
	}
	type cfg struct {
		name    string
		procs   int
		workers int
	}
	cfgs := []cfg{{"1 worker", 1, 1}, {fmt.Sprintf("%d workers", cores), cores, cores}}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	// Ours first for every scenario, so that the peak RSS printed for it
	// is not the baseline's.
	for _, l := range all {
		for _, c := range cfgs {
			s, err := measure(*runs, c.procs, func() (verdict, error) { return runOurs(l.path, c.workers, &verifier{}) })
			if err != nil {
				return fmt.Errorf("%s: %w", l.sc.Name, err)
			}
			who := "apitap " + c.name
			report(line, l.sc.Name, who, s, l.m, l.wire)
			line(l.sc.Name, who, "peak RSS MiB (process so far)", "%.0f", s.maxRSSMiB)
		}
	}
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			return err
		}
	}
	if *oursOnly {
		return nil
	}
	// The baseline runs alternate with apitap's, and each ratio is taken
	// within one pair of runs: load from other processes on a shared
	// machine then weighs on both sides of a ratio alike.
	for _, l := range all {
		for _, c := range cfgs {
			var base []result
			var speed, cpu []float64
			for range *runs {
				o, err := measure(1, c.procs, func() (verdict, error) { return runOurs(l.path, c.workers, &verifier{}) })
				if err != nil {
					return fmt.Errorf("%s: %w", l.sc.Name, err)
				}
				b, err := measure(1, c.procs, func() (verdict, error) { return runBaseline(l.path, &verifier{}) })
				if err != nil {
					return fmt.Errorf("%s baseline: %w", l.sc.Name, err)
				}
				base = append(base, b)
				speed = append(speed, o.pairsPerSec()/b.pairsPerSec())
				cpu = append(cpu, b.cpuPerPair()/o.cpuPerPair())
			}
			who := "baseline GOMAXPROCS=" + fmt.Sprint(c.procs)
			report(line, l.sc.Name, who, medianRun(base), l.m, l.wire)
			line(l.sc.Name, "apitap/baseline", "pairs/s ratio, "+c.name, "%.2fx", medianF(speed))
			line(l.sc.Name, "apitap/baseline", "CPU per pair ratio (baseline/apitap), "+c.name, "%.2fx", medianF(cpu))
		}
	}
	return nil
}

// medianRun is the run of median throughput.
func medianRun(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmp.Compare(a.pairsPerSec(), b.pairsPerSec()) })
	return s[len(s)/2]
}

func medianF(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func report(line func(sc, who, fig, format string, v float64), sc, who string, s result, m manifest, wire uint64) {
	sec := s.wall.Seconds()
	line(sc, who, "packets/s", "%.0f", float64(m.Packets)/sec)
	line(sc, who, "Gbit/s captured", "%.2f", float64(wire)*8/sec/1e9)
	line(sc, who, "pairs/s", "%.0f", s.pairsPerSec())
	line(sc, who, "allocs/packet", "%.2f", float64(s.mallocs)/float64(m.Packets))
	line(sc, who, "allocs/pair", "%.1f", float64(s.mallocs)/float64(max(s.v.Pairs, 1)))
	line(sc, who, "CPU s per 1M pairs", "%.2f", s.cpu.Seconds()/float64(max(s.v.Pairs, 1))*1e6)
	line(sc, who, fmt.Sprintf("pairs verified of %d sent (%d segments lost)", m.Exchanges, m.Dropped), "%.0f", float64(s.v.Pairs))
	line(sc, who, "id mismatches", "%.0f", float64(s.v.Mismatches))
	line(sc, who, "records without response or id", "%.0f", float64(s.v.Pending+s.v.NoID))
}

// result is the median run's figures (each figure's own median).
type result struct {
	wall, cpu time.Duration
	mallocs   uint64
	v         verdict
	maxRSSMiB float64
}

func (r result) pairsPerSec() float64 { return float64(r.v.Pairs) / r.wall.Seconds() }

func (r result) cpuPerPair() float64 { return r.cpu.Seconds() / float64(max(r.v.Pairs, 1)) }

// measure runs fn n times with GOMAXPROCS procs and returns the median
// of each figure.
func measure(n, procs int, fn func() (verdict, error)) (result, error) {
	prev := runtime.GOMAXPROCS(procs)
	defer runtime.GOMAXPROCS(prev)
	var walls, cpus []time.Duration
	var mallocs []uint64
	var v verdict
	for range n {
		runtime.GC()
		debug.FreeOSMemory()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		c0 := cpuTime()
		t0 := time.Now()
		got, err := fn()
		wall := time.Since(t0)
		c1 := cpuTime()
		runtime.ReadMemStats(&m1)
		if err != nil {
			return result{}, err
		}
		v = got
		walls = append(walls, wall)
		cpus = append(cpus, c1-c0)
		mallocs = append(mallocs, m1.Mallocs-m0.Mallocs)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return result{wall: median(walls), cpu: median(cpus), mallocs: median(mallocs), v: v,
		maxRSSMiB: float64(ru.Maxrss) / 1024}, nil
}

func median[T int64 | uint64 | time.Duration](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// capturedBytes sums the captured lengths of a classic pcap file's
// frames, streaming so that the file does not count in the peak RSS.
func capturedBytes(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<16)
	var hdr [24]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if hdr[0] == 0xa1 && hdr[1] == 0xb2 {
		order = binary.BigEndian
	}
	var n uint64
	for {
		var rec [16]byte
		if _, err := io.ReadFull(br, rec[:]); err != nil {
			return n, nil
		}
		l := int(order.Uint32(rec[8:]))
		n += uint64(l)
		if _, err := br.Discard(l); err != nil {
			return n, nil
		}
	}
}
