// Package kafkasink publishes records to a Kafka topic with segmentio/kafka-go.
//
// A Sink puts a bounded queue in front of an asynchronous kafka-go Writer:
// Publish never blocks (unless Config.Block) and drops, counting, when the
// queue is full; one goroutine hands what is queued to the Writer and waits
// for the Writer's completion callbacks before handing more, so that the
// messages the Writer holds are part of the same bound. Whatever the broker
// does, the sink holds at most Config.QueueSize messages and
// Config.QueueBytes bytes of keys and values, plus the Writer's per-partition
// batch slices.
//
// Messages are balanced by a hash of their key, so that the records of one TCP
// connection (the key) stay in order in one partition.
package kafkasink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/apitap/apitap/internal/histogram"
)

// logEvery is the least time between two log lines about the same kind of
// trouble (write errors, drops).
const logEvery = 10 * time.Second

// errNoContact is the health of a sink that has not heard from a broker yet.
var errNoContact = errors.New("no answer from a broker yet")

// Sink publishes messages to one Kafka topic.
//
// Publish, Ready, Stats and MaxPayload are safe to call concurrently, from any
// number of goroutines. Close is called once; Publish calls made after Close
// started return false.
type Sink struct {
	cfg        Config // defaults applied
	maxPayload int
	w          *kafka.Writer
	transport  *kafka.Transport
	probe      *kafka.Client
	log        *slog.Logger
	stats      Stats
	latency    *histogram.Histogram // capture of the last packet → broker's acknowledgement

	mu        sync.Mutex
	room      sync.Cond // signalled when held drops and when Close starts; L is &mu
	waiters   int       // Publish calls waiting on room
	queue     []kafka.Message
	held      int   // messages queued or inside the writer
	heldBytes int64 // their key plus value bytes
	closing   bool  // Close started
	frozen    bool  // Close returned early: completions are no longer counted
	discarded int   // messages the drain loop dropped when Close gave up

	wake      chan struct{} // a message was queued; capacity 1
	idle      chan struct{} // the writer completed everything handed to it; capacity 1
	inflight  atomic.Int64  // messages handed to the writer and not completed
	closingCh chan struct{} // closed when Close starts
	ctx       context.Context
	cancel    context.CancelFunc // called when Close ends, or gives up
	drained   chan struct{}      // closed when the drain loop returns
	probed    chan struct{}      // closed when the probe loop returns

	lastDone atomic.Int64 // UnixNano of the last completion from the writer
	healthMu sync.Mutex
	health   error // outcome of the last write or probe; nil: reached a broker

	writeLog, probeLog, dropLog rateLimit
}

// New validates cfg, loads its TLS files and starts the sink's goroutines: the
// drain loop and the readiness probe. It does not wait for a broker; Ready
// reports when one answered.
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	brokers := make([]string, len(c.Brokers))
	for i, b := range c.Brokers {
		brokers[i] = strings.TrimSpace(b)
	}
	c.Brokers = brokers
	codec, _ := compressionCodec(c.Compression)
	acks, _ := requiredAcks(c.RequiredAcks)
	tlsConfig, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	mechanism, err := c.saslMechanism()
	if err != nil {
		return nil, err
	}

	transport := &kafka.Transport{
		DialTimeout:    min(5*time.Second, c.WriteTimeout),
		MetadataTopics: []string{c.Topic},
		ClientID:       "apitap",
		TLS:            tlsConfig,
		SASL:           mechanism,
	}
	limit := min(c.BatchBytes, int64(c.MaxMessageBytes))
	addr := kafka.TCP(c.Brokers...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		cfg:        c,
		maxPayload: int(limit) - RecordOverhead,
		transport:  transport,
		probe:      &kafka.Client{Addr: addr, Transport: transport},
		log:        c.Logger.With("topic", c.Topic),
		wake:       make(chan struct{}, 1),
		idle:       make(chan struct{}, 1),
		closingCh:  make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		drained:    make(chan struct{}),
		probed:     make(chan struct{}),
		health:     errNoContact,
		writeLog:   rateLimit{every: logEvery},
		probeLog:   rateLimit{every: logEvery},
		dropLog:    rateLimit{every: logEvery},
	}
	s.room.L = &s.mu
	s.latency, _ = histogram.New(LatencyBuckets) // valid: a test checks LatencyBuckets
	s.w = &kafka.Writer{
		Addr:         addr,
		Topic:        c.Topic,
		Balancer:     &kafka.Hash{},
		MaxAttempts:  c.MaxAttempts,
		BatchSize:    c.BatchSize,
		BatchBytes:   limit - RecordOverhead/2, // room for the batch header and compression framing
		BatchTimeout: c.Linger,
		ReadTimeout:  c.WriteTimeout,
		WriteTimeout: c.WriteTimeout,
		RequiredAcks: acks,
		Async:        true,
		Completion:   s.completion,
		Compression:  codec,
		Transport:    transport,

		AllowAutoTopicCreation: true,
	}
	go s.drainLoop()
	go s.probeLoop()
	s.log.Info("kafka sink started", "brokers", c.Brokers, "compression", c.Compression,
		"acks", c.RequiredAcks, "tls", c.TLS, "sasl", mechanismName(mechanism),
		"queue_size", c.QueueSize, "queue_bytes", c.QueueBytes, "block", c.Block)
	return s, nil
}

// MaxPayload is the largest len(key)+len(value) that Publish accepts:
// min(BatchBytes, MaxMessageBytes) - RecordOverhead.
func (s *Sink) MaxPayload() int { return s.maxPayload }

// Stats returns the sink's counters, live. Safe to read concurrently.
func (s *Sink) Stats() *Stats { return &s.stats }

// LatencyBuckets are the upper bounds of the delivery latency histogram,
// from 1 ms to 10 s, finer around 50 ms so that a p99 at or below 50 ms can
// be read from it.
var LatencyBuckets = []time.Duration{
	1 * time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 15 * time.Millisecond, 20 * time.Millisecond,
	25 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond,
	50 * time.Millisecond, 75 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, 1 * time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// DeliveryLatency returns the histogram of delivery latencies so far: for
// each delivered message published with a non-zero last, the time from last
// to the writer's completion callback (the broker's acknowledgement, with
// RequiredAcks "all"). Safe to call concurrently.
func (s *Sink) DeliveryLatency() histogram.Snapshot { return s.latency.Snapshot() }

// Publish enqueues one message. Ownership of key and value passes to the sink:
// the caller must not modify them afterwards (Config.Release hands them back).
// last is when the record's data was captured (the exchange's last packet):
// the start of its delivery latency (DeliveryLatency); zero leaves the
// message out of it.
//
// Publish never blocks unless Config.Block: when the queue is full (in
// messages or in bytes) the message is dropped, counted as
// dropped_queue_full, and Publish returns false. With Block it waits for
// room, or for Close. Messages larger than MaxPayload are dropped and counted
// as dropped_too_large; messages published after Close started are dropped
// and counted as dropped_on_close. Publish returns true when the message was
// queued, which does not mean it will be delivered (see Stats).
//
// Safe to call concurrently.
func (s *Sink) Publish(key, value []byte, last time.Time) bool {
	n := int64(len(key) + len(value))
	if n > int64(s.maxPayload) {
		s.stats.DroppedTooLarge.Add(1)
		s.releaseOne(key, value)
		if s.dropLog.allow() {
			s.log.Warn("kafka message too large, dropped", "bytes", n, "max", s.maxPayload,
				"dropped_too_large", s.stats.DroppedTooLarge.Load())
		}
		return false
	}

	msg := kafka.Message{Key: key, Value: value, Time: time.Now()}
	if !last.IsZero() {
		// The writer neither sends nor touches HighWaterMark (a reader's
		// field): it carries last to the completion callback without the
		// allocation WriterData would cost. TestDeliveryLatency fails if a
		// kafka-go upgrade changes that.
		msg.HighWaterMark = last.UnixNano()
	}
	s.mu.Lock()
	for {
		if s.closing {
			s.mu.Unlock()
			s.stats.DroppedOnClose.Add(1)
			s.releaseOne(key, value)
			return false
		}
		// An empty queue takes any message, so that Block cannot wait
		// forever for a message larger than QueueBytes.
		if s.held == 0 || (s.held < s.cfg.QueueSize && s.heldBytes+n <= s.cfg.QueueBytes) {
			break
		}
		if !s.cfg.Block {
			s.mu.Unlock()
			s.stats.DroppedQueueFull.Add(1)
			s.releaseOne(key, value)
			if s.dropLog.allow() {
				s.log.Warn("kafka queue full, dropping messages",
					"dropped_queue_full", s.stats.DroppedQueueFull.Load())
			}
			return false
		}
		s.waiters++
		s.room.Wait()
		s.waiters--
	}
	s.held++
	s.heldBytes += n
	s.setGaugesLocked()
	s.queue = append(s.queue, msg)
	s.stats.Enqueued.Add(1)
	s.mu.Unlock()

	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// Ready reports nil when the last write, or the last probe when no write
// completed recently, reached a broker, and the queue is less than 90% full
// (in messages and in bytes). Otherwise it says which: "kafka: SASL
// authentication failed: ...", "kafka: broker's TLS certificate not
// trusted: ...", "kafka: broker unreachable: ...", "kafka: writing to topic
// akto.api.logs: ..." (the broker answered with an error), "kafka: queue 95%
// full", "kafka: sink closed", joined when several hold.
//
// Safe to call concurrently.
func (s *Sink) Ready() error {
	var errs []error
	s.healthMu.Lock()
	health := s.health
	s.healthMu.Unlock()
	if health != nil {
		if what := trouble(health); what != "" {
			errs = append(errs, fmt.Errorf("kafka: %s: %w", what, health))
		} else {
			errs = append(errs, health)
		}
	}

	s.mu.Lock()
	held, heldBytes, closing := s.held, s.heldBytes, s.closing
	s.mu.Unlock()
	if closing {
		errs = append(errs, errors.New("kafka: sink closed"))
	}
	pct := max(held*100/s.cfg.QueueSize, int(heldBytes*100/s.cfg.QueueBytes))
	if pct >= 90 {
		errs = append(errs, fmt.Errorf("kafka: queue %d%% full", pct))
	}
	return errors.Join(errs...)
}

// Close stops accepting messages, hands what is queued to the writer and waits
// for the writer to complete it, within ctx. Blocked Publish calls return
// false.
//
// When ctx ends first, Close gives up: every message still queued or not yet
// completed by the writer is abandoned, counted as dropped_on_close, and Close
// returns an error saying how many (some of them may still reach the broker:
// the writer finishes its current attempts in the background). Otherwise
// Close returns nil; messages that failed are in Stats.
//
// Call Close once.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return errors.New("kafka: sink already closed")
	}
	s.closing = true
	held := s.held
	s.room.Broadcast()
	s.mu.Unlock()
	close(s.closingCh)
	s.log.Info("kafka sink closing", "held", held)

	flushed := make(chan struct{})
	go func() {
		<-s.drained
		s.w.Close() // always nil; nothing is in flight once the drain loop returned
		close(flushed)
	}()

	select {
	case <-flushed:
		s.cancel()
		<-s.probed
		s.transport.CloseIdleConnections()
		s.log.Info("kafka sink closed", "delivered", s.stats.Delivered.Load(), "failed", s.stats.Failed.Load())
		return nil
	case <-ctx.Done():
	}

	// Give up: stop the drain loop and count what is left.
	s.cancel()
	<-s.drained
	<-s.probed
	s.mu.Lock()
	s.frozen = true
	abandoned := s.discarded + s.held
	s.stats.DroppedOnClose.Add(uint64(s.held))
	queued := s.queue
	s.queue = nil
	for _, m := range queued {
		s.held--
		s.heldBytes -= int64(len(m.Key) + len(m.Value))
	}
	s.setGaugesLocked()
	s.mu.Unlock()
	s.release(queued)
	go func() {
		<-flushed
		s.transport.CloseIdleConnections()
	}()
	s.log.Warn("kafka sink closed before flushing", "abandoned", abandoned, "error", ctx.Err())
	return fmt.Errorf("kafka: closing sink for topic %s: %d messages abandoned: %w", s.cfg.Topic, abandoned, ctx.Err())
}

// drainLoop hands queued messages to the writer, one chunk at a time: a chunk
// is everything queued when the previous chunk completed. Waiting for the
// completions bounds what the asynchronous writer holds.
func (s *Sink) drainLoop() {
	defer close(s.drained)
	var chunk []kafka.Message
	for {
		select {
		case <-s.wake:
		case <-s.closingCh:
		case <-s.ctx.Done():
			return
		}
		for {
			s.mu.Lock()
			chunk, s.queue = s.queue, chunk[:0]
			closing := s.closing
			s.mu.Unlock()
			if len(chunk) == 0 {
				if closing {
					return
				}
				break
			}
			if !s.write(chunk) {
				return
			}
			clear(chunk) // drop references to keys and values
		}
	}
}

// write hands msgs to the writer and waits until the writer completed all of
// them. When the writer refuses them (it could not look the topic up), write
// retries up to MaxAttempts, then counts them as failed. It returns false
// when Close gave up meanwhile; msgs the writer does not hold are then
// counted and released here.
func (s *Sink) write(msgs []kafka.Message) bool {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		s.inflight.Store(int64(len(msgs)))
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
		err := s.w.WriteMessages(ctx, msgs...)
		cancel()
		if err == nil {
			select {
			case <-s.idle:
				return true
			case <-s.ctx.Done():
				return false // the writer holds them; Close counts them
			}
		}
		// WriteMessages either takes every message or none.
		s.inflight.Store(0)
		if s.ctx.Err() != nil {
			s.discard(msgs)
			return false
		}
		err = fmt.Errorf("kafka: writing to topic %s: %w", s.cfg.Topic, err)
		s.noteResult(err, len(msgs))
		if attempt >= s.cfg.MaxAttempts {
			s.account(msgs, err)
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			s.discard(msgs)
			return false
		}
		backoff = min(2*backoff, time.Second)
	}
}

// completion is the writer's Completion callback: msgs, all of one partition,
// were written (err nil) or failed after every attempt.
func (s *Sink) completion(msgs []kafka.Message, err error) {
	if err != nil {
		err = fmt.Errorf("kafka: writing to topic %s: %w", s.cfg.Topic, err)
	}
	now := time.Now()
	s.lastDone.Store(now.UnixNano())
	if err == nil {
		for i := range msgs {
			if last := msgs[i].HighWaterMark; last != 0 {
				s.latency.Observe(time.Duration(now.UnixNano() - last))
			}
		}
	}
	s.noteResult(err, len(msgs))
	s.account(msgs, err)
	if s.inflight.Add(-int64(len(msgs))) == 0 {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

// account counts msgs as delivered (err nil) or failed, frees their room in
// the queue and releases them.
func (s *Sink) account(msgs []kafka.Message, err error) {
	var bytes int64
	for i := range msgs {
		bytes += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
	s.mu.Lock()
	if !s.frozen {
		if err == nil {
			s.stats.Delivered.Add(uint64(len(msgs)))
		} else {
			s.stats.Failed.Add(uint64(len(msgs)))
			s.stats.WriteErrors.Add(1)
		}
	}
	s.held -= len(msgs)
	s.heldBytes -= bytes
	s.setGaugesLocked()
	if s.waiters > 0 {
		s.room.Broadcast()
	}
	s.mu.Unlock()
	s.release(msgs)
}

// discard counts msgs, which the writer never took, as dropped on close.
func (s *Sink) discard(msgs []kafka.Message) {
	var bytes int64
	for i := range msgs {
		bytes += int64(len(msgs[i].Key) + len(msgs[i].Value))
	}
	s.mu.Lock()
	s.stats.DroppedOnClose.Add(uint64(len(msgs)))
	s.discarded += len(msgs)
	s.held -= len(msgs)
	s.heldBytes -= bytes
	s.setGaugesLocked()
	s.mu.Unlock()
	s.release(msgs)
}

func (s *Sink) setGaugesLocked() {
	s.stats.QueueMessages.Store(uint64(max(s.held, 0)))
	s.stats.QueueBytes.Store(uint64(max(s.heldBytes, 0)))
}

func (s *Sink) release(msgs []kafka.Message) {
	if s.cfg.Release == nil {
		return
	}
	for i := range msgs {
		s.cfg.Release(msgs[i].Key, msgs[i].Value)
	}
}

func (s *Sink) releaseOne(key, value []byte) {
	if s.cfg.Release != nil {
		s.cfg.Release(key, value)
	}
}

// probeLoop asks a broker for its API versions whenever no write completed
// for a ProbeInterval, starting right away, so that Ready knows whether a
// broker answers while the sink is idle.
func (s *Sink) probeLoop() {
	defer close(s.probed)
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		if time.Since(time.Unix(0, s.lastDone.Load())) >= s.cfg.ProbeInterval {
			ctx, cancel := context.WithTimeout(s.ctx, min(s.cfg.WriteTimeout, s.cfg.ProbeInterval))
			resp, err := s.probe.ApiVersions(ctx, &kafka.ApiVersionsRequest{})
			cancel()
			if err == nil {
				err = resp.Error
			}
			if s.ctx.Err() != nil {
				return
			}
			if err != nil {
				err = fmt.Errorf("kafka: probing brokers %s: %w", strings.Join(s.cfg.Brokers, ","), err)
			}
			s.noteResult(err, 0)
		}
		select {
		case <-t.C:
		case <-s.closingCh:
			return
		case <-s.ctx.Done():
			return
		}
	}
}

// noteResult records the outcome of a write of n messages (n 0: a probe) for
// Ready, and logs errors, rate-limited, and recoveries.
func (s *Sink) noteResult(err error, n int) {
	s.healthMu.Lock()
	prev := s.health
	s.health = err
	s.healthMu.Unlock()
	switch {
	case err == nil && prev == errNoContact:
		s.log.Info("kafka broker reached")
	case err == nil && prev != nil:
		s.log.Info("kafka broker reachable again")
	case err != nil && n == 0 && s.probeLog.allow():
		what := trouble(err)
		if what == "" {
			what = "broker unreachable"
		}
		s.log.Warn("kafka "+what, "error", err)
	case err != nil && n > 0 && s.writeLog.allow():
		s.log.Warn("kafka write failed", "messages", n, "error", err,
			"failed", s.stats.Failed.Load(), "dropped_queue_full", s.stats.DroppedQueueFull.Load())
	}
}

// trouble names what err says about the way to the brokers, for Ready and
// the logs: "SASL authentication failed" and "broker's TLS certificate not
// trusted" are settings to fix, unlike "broker unreachable". It is "" for a
// broker answering with another error.
func trouble(err error) string {
	var verify *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	// Before unreachable: kafka-go's errors are net.Errors too.
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return "SASL authentication failed"
	case errors.As(err, &verify), errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return "broker's TLS certificate not trusted"
	case unreachable(err):
		return "broker unreachable"
	}
	return ""
}

// unreachable reports whether err means no broker could be talked to, as
// opposed to a broker answering with an error.
func unreachable(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, errNoContact),
		errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, kafka.BrokerNotAvailable),
		errors.Is(err, kafka.NetworkException),
		errors.Is(err, kafka.RequestTimedOut),
		errors.Is(err, kafka.LeaderNotAvailable):
		return true
	}
	return false
}

func mechanismName(m interface{ Name() string }) string {
	if m == nil {
		return ""
	}
	return m.Name()
}

// rateLimit lets one event through per period.
type rateLimit struct {
	every time.Duration
	last  atomic.Int64 // UnixNano
}

func (r *rateLimit) allow() bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	return (last == 0 || now-last >= int64(r.every)) && r.last.CompareAndSwap(last, now)
}
