package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"time"

	"github.com/apitap/apitap/internal/embedded"
	"github.com/apitap/apitap/internal/kafkasink"
	"github.com/apitap/apitap/internal/record"
)

// kafkaTarget is the records/s the kafka-go Writer must sustain into the
// in-process broker on one core (issue 11).
const kafkaTarget = 100_000

// kafkaConns is how many connections (message keys) the records are spread
// over; kafkaPartitions is the topic's partition count.
const (
	kafkaConns      = 1000
	kafkaPartitions = 4
)

// kafkaRecords returns n distinct Akto records of about 1.3 KB and their
// keys (about 40 bytes, spread over kafkaConns connections), encoded by
// internal/record as the recorder does. Ids, ports, timestamps and the
// numbers in the bodies vary, so that compression sees what it would see
// live; the seed is fixed.
func kafkaRecords(n int) (keys, values [][]byte) {
	rng := rand.New(rand.NewPCG(11, 1300))
	opts := &record.Options{Redact: []string{"authorization"}}
	server := netip.MustParseAddrPort("10.0.2.20:8080")
	keys, values = make([][]byte, n), make([][]byte, n)
	for i := range n {
		conn := i % kafkaConns
		client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + conn%200)}), uint16(32768+conn))
		id := rng.Uint64()
		reqID := strconv.FormatUint(id, 16)
		order := rng.IntN(1_000_000)
		body := fmt.Sprintf(`{"id":%d,"status":"shipped","customer":{"id":%d,"name":"customer-%d","tier":"gold"},`+
			`"items":[{"sku":"SKU-%05d","qty":%d,"price":%d.%02d},{"sku":"SKU-%05d","qty":%d,"price":%d.%02d}],`+
			`"total":%d.%02d,"currency":"EUR","created_at":"2026-11-28T16:%02d:%02dZ","tracking":"%016x",`+
			`"shipping":{"carrier":"dhl","address":{"street":"%d Main Street","city":"Springfield","zip":"%05d","country":"DE"}}}`,
			order, rng.IntN(100000), rng.IntN(100000),
			rng.IntN(99999), 1+rng.IntN(5), rng.IntN(500), rng.IntN(100),
			rng.IntN(99999), 1+rng.IntN(5), rng.IntN(500), rng.IntN(100),
			rng.IntN(2000), rng.IntN(100), rng.IntN(60), rng.IntN(60), rng.Uint64(),
			1+rng.IntN(300), rng.IntN(100000))
		rec := record.Record{
			Method: "GET",
			Path:   "/api/v1/orders/" + strconv.Itoa(order) + "?include=items,customer",
			Proto:  "HTTP/1.1",
			RequestHeaders: []record.Header{
				{Name: "Host", Value: "api.shop.internal"},
				{Name: "User-Agent", Value: "okhttp/4.12.0"},
				{Name: "Accept", Value: "application/json"},
				{Name: "Accept-Encoding", Value: "gzip"},
				{Name: "Authorization", Value: "Bearer " + reqID},
				{Name: "X-Request-Id", Value: reqID},
				{Name: "X-Forwarded-For", Value: client.Addr().String()},
			},
			ResponseHeaders: []record.Header{
				{Name: "Content-Type", Value: "application/json; charset=utf-8"},
				{Name: "Content-Length", Value: strconv.Itoa(len(body))},
				{Name: "Date", Value: "Sat, 28 Nov 2026 16:51:00 GMT"},
				{Name: "Cache-Control", Value: "no-store"},
				{Name: "X-Request-Id", Value: reqID},
				{Name: "Server", Value: "envoy"},
			},
			ResponsePayload: []byte(body),
			ClientIP:        client.Addr(),
			ServerIP:        server.Addr(),
			Time:            1795884184 + int64(i/1000),
			StatusCode:      200,
			Status:          "200 OK",
			AccountID:       record.DefaultAccountID,
			VNI:             4242,
			Source:          record.SourceMirroring,
		}
		values[i], _ = record.Encode(nil, &rec, opts)
		keys[i] = record.AppendKey(nil, rec.VNI, client, server)
	}
	return keys, values
}

// kafkaRun is one run's figures.
type kafkaRun struct {
	perSec  float64
	mallocs float64 // per record
}

// publishAll starts an in-process broker and a sink with cfg, publishes
// every record (keys[i%len], values[i%len]) n times in Block mode, closes the
// sink (which waits for every acknowledgement) and reports the rate, counting
// from the first Publish to the end of Close.
func publishAll(cfg kafkasink.Config, keys, values [][]byte, n int) (kafkaRun, error) {
	br, err := embedded.Start("", kafkasink.DefaultTopic, kafkaPartitions)
	if err != nil {
		return kafkaRun{}, err
	}
	defer br.Close()
	cfg.Brokers = []string{br.Addr()}
	if v := os.Getenv("XB"); v != "" {
		cfg.BatchSize, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("XL"); v != "" {
		cfg.Linger, _ = time.ParseDuration(v)
	}
	if v := os.Getenv("XQ"); v != "" {
		cfg.QueueSize, _ = strconv.Atoi(v)
	}
	cfg.Block = true
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := kafkasink.New(cfg)
	if err != nil {
		return kafkaRun{}, err
	}
	// Warm up: metadata, connections, the writer's batches.
	for i := range 1000 {
		s.Publish(keys[i%len(keys)], values[i%len(values)], time.Time{})
	}
	for s.Stats().Delivered.Load() < 1000 {
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	t0 := time.Now()
	for i := range n {
		s.Publish(keys[i%len(keys)], values[i%len(values)], time.Time{})
	}
	if err := s.Close(context.Background()); err != nil {
		return kafkaRun{}, err
	}
	wall := time.Since(t0)
	runtime.ReadMemStats(&m1)
	if d := s.Stats().Delivered.Load(); d != uint64(n+1000) {
		return kafkaRun{}, fmt.Errorf("kafka: delivered %d of %d records", d, n+1000)
	}
	return kafkaRun{perSec: float64(n) / wall.Seconds(), mallocs: float64(m1.Mallocs-m0.Mallocs) / float64(n)}, nil
}

// benchKafka prints the kafka-go Writer's throughput into the in-process
// broker, on one core and on all, medians of runs runs.
func benchKafka(stdout io.Writer, runs int, cpuProfile string) error {
	keys, values := kafkaRecords(4096)
	var size int
	for i := range values {
		size += len(values[i]) + len(keys[i])
	}
	fmt.Fprintf(stdout, "kafka-go Writer into the in-process broker (kfake, %d partitions), Block mode, %d distinct records of %d bytes on average (key+value), %d connections, medians of %d runs\n",
		kafkaPartitions, len(values), size/len(values), kafkaConns, runs)
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	const n = 200_000
	cores := runtime.NumCPU()
	for _, procs := range []int{1, cores} {
		for _, compression := range []string{kafkasink.DefaultCompression, "none"} {
			prev := runtime.GOMAXPROCS(procs)
			var rates, allocs []float64
			for range runs {
				r, err := publishAll(kafkasink.Config{Compression: compression}, keys, values, n)
				if err != nil {
					runtime.GOMAXPROCS(prev)
					return err
				}
				rates = append(rates, r.perSec)
				allocs = append(allocs, r.mallocs)
			}
			runtime.GOMAXPROCS(prev)
			rate := medianFloat(rates)
			who := fmt.Sprintf("%d core(s), %s", procs, compression)
			kafkaLine(stdout, who, "records/s", "%.0f", rate)
			kafkaLine(stdout, who, "allocs/record", "%.2f", medianFloat(allocs))
			kafkaLine(stdout, who, fmt.Sprintf("ratio to the %d records/s target", kafkaTarget), "%.2fx", rate/kafkaTarget)
		}
	}
	return nil
}

func kafkaLine(w io.Writer, who, fig, format string, v float64) {
	fmt.Fprintf(w, "%-6s %-24s %-46s %12s\n", "kafka", who, fig, fmt.Sprintf(format, v))
}

func medianFloat(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
