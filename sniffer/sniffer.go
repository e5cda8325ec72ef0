package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"

	"github.com/apitap/apitap/internal/apiinventory"
	"github.com/apitap/apitap/internal/bufpool"
	"github.com/apitap/apitap/internal/capture"
	"github.com/apitap/apitap/internal/embedded"
	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/kafkasink"
	"github.com/apitap/apitap/internal/recorder"
	"github.com/apitap/apitap/internal/vnicount"
)

// sniffer wires capture → flow → recorder → outputs.
type sniffer struct {
	o      *options
	log    *slog.Logger
	stdout io.Writer

	captureStats  capture.Stats
	flowStats     flow.Stats
	httpStats     http1.Stats
	recorderStats recorder.Stats

	// vnis counts records, pairs and bytes per VNI; inventory is the API
	// surface seen (nil with -inventory-max-endpoints 0). Both watch the
	// published records (Observe).
	vnis      *vnicount.Counters
	inventory *apiinventory.Inventory

	broker   *embedded.Broker
	sink     *kafkasink.Sink
	listener *capture.Listener // live capture (nil in replay), set before the admin endpoints start
	lines    *lineWriter
	engine   *flow.Engine
	rec      *recorder.Recorder

	closeOnce sync.Once
	closeErr  error

	// started, when set, is told the bound addresses once live capture
	// runs (tests listen on port 0).
	started func(udp, admin net.Addr)
	// released, when set, sees every record buffer just before it goes
	// back to bufpool (tests overwrite it to catch early releases).
	released func(buf []byte)
}

func newSniffer(ctx context.Context, o *options, log *slog.Logger, stdout io.Writer) (_ *sniffer, err error) {
	s := &sniffer{o: o, log: log, stdout: stdout}
	defer func() {
		if err != nil {
			s.closeOutputs(context.Background())
		}
	}()
	maxRecord := o.kafkaCfg.MaxMessageBytes
	switch o.kafka {
	case "none":
	case "embedded":
		if o.replay() {
			// Nobody else reads it: do not take a fixed port.
			s.broker, err = embedded.Start("127.0.0.1:0", o.kafkaCfg.Topic, 1)
		} else {
			// Live on the embedded broker is for trying apitap out: keep
			// only the newest records, so memory stays bounded.
			s.broker, err = embedded.StartBounded(o.embeddedAddr, o.kafkaCfg.Topic, 1, o.embeddedBytes)
			log.Warn("publishing to the in-process broker: records stay in this process's memory (the newest -embedded-max-bytes only); set -kafka to your brokers for production",
				"addr", o.embeddedAddr, "max_bytes", o.embeddedBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("starting embedded broker: %w", err)
		}
		log.Info("embedded broker started", "addr", s.broker.Addr(), "topic", o.kafkaCfg.Topic)
		o.kafkaCfg.Brokers = []string{s.broker.Addr()}
	default:
		o.kafkaCfg.Brokers = o.brokers()
	}
	if o.mskIAM {
		// MSK IAM signs each connection with the host's AWS credentials
		// (the instance role on EC2).
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading AWS credentials for MSK IAM: %w", err)
		}
		o.kafkaCfg.Mechanism = aws_msk_iam_v2.NewMechanism(awsCfg)
	}
	if len(o.kafkaCfg.Brokers) > 0 {
		o.kafkaCfg.Logger = log
		o.kafkaCfg.Release = s.release
		if s.sink, err = kafkasink.New(o.kafkaCfg); err != nil {
			return nil, err
		}
		maxRecord = s.sink.MaxPayload() - 256 // room for the key
	}
	if o.out != "" {
		if s.lines, err = newLineWriter(o.out, stdout); err != nil {
			return nil, err
		}
	}
	if s.vnis, err = vnicount.New(o.vnis); err != nil {
		return nil, err
	}
	if !o.inventoryOff {
		if s.inventory, err = apiinventory.New(o.inventory); err != nil {
			return nil, err
		}
	}
	o.recorder.Observer = s
	o.recorder.MaxRecordBytes = maxRecord
	if s.rec, err = recorder.New(o.recorder, s, &s.recorderStats, &s.httpStats); err != nil {
		return nil, err
	}
	if s.engine, err = flow.New(o.flow, &s.flowStats, s.rec.NewHandler); err != nil {
		return nil, err
	}
	return s, nil
}

// Publish fans a record out to the line writer and the Kafka sink, and
// releases its buffer once both are done with it: the line writer copies the
// record before returning, so it goes first; the sink then owns the buffer
// and releases it (Config.Release) once the broker acknowledged the record,
// or it failed or was dropped. Without a sink the buffer is released here.
func (s *sniffer) Publish(key, value []byte, last time.Time) bool {
	ok := true
	if s.lines != nil {
		ok = s.lines.write(value) && ok
	}
	if s.sink == nil {
		s.release(key, value)
		return ok
	}
	return s.sink.Publish(key, value, last) && ok
}

// release returns a record's buffer to bufpool. The recorder encodes the key
// after the value in one buffer from bufpool.Get, so the value's capacity
// covers the key; a key in a buffer of its own is left to the garbage
// collector. Called once per record, from any goroutine.
func (s *sniffer) release(_, value []byte) {
	if s.released != nil {
		s.released(value[:cap(value)])
	}
	bufpool.Put(value)
}

// Observe counts a published record per VNI and in the API inventory.
// Workers call it concurrently; neither allocates for a known VNI or
// endpoint.
func (s *sniffer) Observe(o recorder.Observation) {
	s.vnis.Add(o.VNI, !o.Pending, o.Bytes)
	if s.inventory != nil {
		s.inventory.Add(apiinventory.Observation{
			VNI: o.VNI, Host: o.Host, Server: o.Server, Method: o.Method, Target: o.Target,
			Status: o.Status, Time: o.Time,
		})
	}
}

func (s *sniffer) run(ctx context.Context) error {
	if s.o.replay() {
		return s.replay(ctx)
	}
	return s.live(ctx)
}

func (s *sniffer) replay(ctx context.Context) error {
	start := time.Now()
	s.log.Info("replaying capture", "file", s.o.pcap)
	in := s.engine.NewInput()
	err := capture.ReplayFile(ctx, s.o.pcap, in, &s.captureStats)
	s.engine.Close()
	closeErr := s.closeOutputs(ctx)
	s.log.Info("replay done", "file", s.o.pcap, "frames", s.captureStats.Datagrams.Load(),
		"records", s.recorderStats.Records.Load(), "elapsed", time.Since(start).Round(time.Millisecond))
	// Live, /metrics has these; a replay has no admin address, so the
	// counters (what was shed and why among them) are logged once at the end.
	s.log.Info("replay stats", s.statsAttrs()...)
	if err != nil {
		return err
	}
	if s.broker != nil {
		if err := s.printDemo(ctx); err != nil {
			return err
		}
		s.broker.Close()
	}
	if s.o.printInventory {
		if s.broker != nil {
			fmt.Fprintln(s.stdout, "API inventory (live, GET /inventory on the admin address answers the same):")
		}
		if err := s.inventory.Snapshot().WriteJSON(s.stdout); err != nil {
			return fmt.Errorf("printing the API inventory: %w", err)
		}
	}
	return closeErr
}

func (s *sniffer) live(ctx context.Context) error {
	l, err := capture.Listen(s.o.live, &s.captureStats)
	if err != nil {
		return err
	}
	defer l.Close()
	s.listener = l
	admin, err := s.startAdmin()
	if err != nil {
		return err
	}
	defer admin.close()
	if s.started != nil {
		s.started(l.Addr(), admin.addr())
	}
	s.log.Info("listening", "udp", l.Addr().String(), "health", s.o.healthAddr, "admin", s.o.adminAddr,
		"kafka", s.o.kafka, "topic", s.o.kafkaCfg.Topic, "workers", s.o.flow.Workers)

	var wg sync.WaitGroup
	tickCtx, stopTick := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-tickCtx.Done():
				return
			case now := <-t.C:
				s.engine.Tick(now)
			}
		}
	}()
	l.Serve(ctx, func() capture.Sink { return s.engine.NewInput() })
	stopTick()
	wg.Wait()

	s.log.Info("stopping: flushing connections and the Kafka queue", "timeout", s.o.shutdown)
	deadline, cancel := context.WithTimeout(context.Background(), s.o.shutdown)
	defer cancel()
	flushed := make(chan struct{})
	go func() {
		s.engine.Close()
		close(flushed)
	}()
	select {
	case <-flushed:
	case <-deadline.Done():
		s.log.Warn("connections not flushed before the shutdown deadline")
	}
	// What the deadline cut off is counted (dropped_on_close) and logged; a
	// stop on SIGTERM is still a clean exit, so systemd does not flag it.
	if err := s.closeOutputs(deadline); err != nil {
		s.log.Warn("records lost at shutdown", "err", err)
	}
	if s.broker != nil {
		s.broker.Close()
	}
	s.log.Info("stopped", "records", s.recorderStats.Records.Load())
	return nil
}

// statsAttrs is every counter and gauge of capture, flow, http and
// recorder as log attributes named like their metrics (without the
// apitap_sniffer_ prefix and _total suffix).
func (s *sniffer) statsAttrs() []any {
	var attrs []any
	counter := func(stage string) func(string, uint64) {
		return func(name string, v uint64) { attrs = append(attrs, slog.Uint64(stage+"_"+name, v)) }
	}
	s.captureStats.Each(counter("capture"))
	s.flowStats.Each(counter("flow"))
	s.flowStats.Gauges(func(name string, v float64) { attrs = append(attrs, slog.Float64("flow_"+name, v)) })
	s.httpStats.Each(counter("http"))
	s.recorderStats.Each(counter("recorder"))
	return attrs
}

// closeOutputs flushes the Kafka queue and the line writer, once. The
// outputs stay in place: a worker still flushing after the shutdown
// deadline publishes into closed outputs, which refuse and count it.
func (s *sniffer) closeOutputs(ctx context.Context) error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.sink != nil {
			if err := s.sink.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("flushing kafka: %w", err))
			}
		}
		if s.lines != nil {
			if err := s.lines.close(); err != nil {
				errs = append(errs, fmt.Errorf("writing %s: %w", s.o.out, err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// lineWriter writes records as JSON lines. Workers call write concurrently.
type lineWriter struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

func newLineWriter(path string, stdout io.Writer) (*lineWriter, error) {
	lw := &lineWriter{}
	if path == "-" {
		lw.w = bufio.NewWriterSize(stdout, 256<<10)
		return lw, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening output %s: %w", path, err)
	}
	lw.f, lw.w = f, bufio.NewWriterSize(f, 256<<10)
	return lw, nil
}

func (lw *lineWriter) write(value []byte) bool {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return false
	}
	lw.w.Write(value)
	if err := lw.w.WriteByte('\n'); err != nil {
		lw.err = err
		return false
	}
	return true
}

func (lw *lineWriter) close() error {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err == nil {
		lw.err = errClosed
	}
	err := lw.w.Flush()
	if lw.f != nil {
		err = errors.Join(err, lw.f.Close())
	}
	if lw.err != errClosed {
		err = errors.Join(lw.err, err)
	}
	return err
}

var errClosed = errors.New("output closed")
