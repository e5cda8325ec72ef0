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
	"github.com/apitap/apitap/internal/histogram"
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

// kafkaPaced publishes at rate records/s for d, each with its publish time as
// its capture time, and returns the sink's delivery latency histogram: the
// time from Publish to the broker's acknowledgement. The publisher sends
// what is due every millisecond, as records arrive from the workers live.
func kafkaPaced(cfg kafkasink.Config, keys, values [][]byte, rate float64, d time.Duration) (histogram.Snapshot, error) {
	br, err := embedded.Start("", kafkasink.DefaultTopic, kafkaPartitions)
	if err != nil {
		return histogram.Snapshot{}, err
	}
	defer br.Close()
	cfg.Brokers = []string{br.Addr()}
	cfg.Logger = slog.New(slog.DiscardHandler)
	// Block, so that a burst the queue cannot take shows as latency (the
	// capture time is taken before Publish waits) instead of as drops.
	cfg.Block = true
	s, err := kafkasink.New(cfg)
	if err != nil {
		return histogram.Snapshot{}, err
	}
	// Warm up without a capture time, so that metadata lookups and the
	// first connections are not in the figures.
	for i := range 1000 {
		s.Publish(keys[i%len(keys)], values[i%len(values)], time.Time{})
	}
	for s.Stats().Delivered.Load() < 1000 {
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	sent := 0
	for {
		now := time.Now()
		elapsed := now.Sub(t0)
		if elapsed >= d {
			break
		}
		for due := int(rate * elapsed.Seconds()); sent < due; sent++ {
			s.Publish(keys[sent%len(keys)], values[sent%len(values)], time.Now())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(context.Background()); err != nil {
		return histogram.Snapshot{}, err
	}
	if failed := s.Stats().Failed.Load(); failed > 0 {
		return histogram.Snapshot{}, fmt.Errorf("kafka: %d of %d paced records failed", failed, sent)
	}
	return s.DeliveryLatency(), nil
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
			rate := medianFloat(rates)
			who := fmt.Sprintf("%d core(s), %s", procs, compression)
			kafkaLine(stdout, who, "records/s", "%.0f", rate)
			kafkaLine(stdout, who, "allocs/record", "%.2f", medianFloat(allocs))
			kafkaLine(stdout, who, fmt.Sprintf("ratio to the %d records/s target", kafkaTarget), "%.2fx", rate/kafkaTarget)
			if compression != kafkasink.DefaultCompression {
				runtime.GOMAXPROCS(prev)
				continue
			}
			var p50s, p99s []float64
			for range runs {
				h, err := kafkaPaced(kafkasink.Config{Compression: compression}, keys, values, rate/2, 2*time.Second)
				if err != nil {
					runtime.GOMAXPROCS(prev)
					return err
				}
				p50s = append(p50s, h.Quantile(0.5).Seconds()*1000)
				p99s = append(p99s, h.Quantile(0.99).Seconds()*1000)
			}
			runtime.GOMAXPROCS(prev)
			fig := fmt.Sprintf("publish→ack ms at %.0f records/s, p50", rate/2)
			kafkaLine(stdout, who, fig, "%.1f", medianFloat(p50s))
			kafkaLine(stdout, who, fig[:len(fig)-3]+"p99", "%.1f", medianFloat(p99s))
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
