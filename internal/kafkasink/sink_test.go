package kafkasink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/embedded"
)

// testLogger sends the sink's logs to t.Log, shown when a test fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// downAddr is an address nothing listens on.
const downAddr = "127.0.0.1:1"

func startBroker(t *testing.T, partitions int) *embedded.Broker {
	t.Helper()
	b, err := embedded.Start("", DefaultTopic, partitions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newSink(t *testing.T, cfg Config) *Sink {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func statsMap(s *Stats) map[string]uint64 {
	m := map[string]uint64{}
	s.Each(func(name string, v uint64) { m[name] = v })
	return m
}

func TestPublishReadBack(t *testing.T) {
	b := startBroker(t, 4)
	var released atomic.Int64
	s := newSink(t, Config{
		Brokers:       []string{b.Addr()},
		ProbeInterval: 50 * time.Millisecond,
		Release:       func(key, value []byte) { released.Add(1) },
	})
	waitFor(t, "Ready", 5*time.Second, func() bool { return s.Ready() == nil })

	const keys, perKey = 16, 250
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			if !s.Publish([]byte(fmt.Sprintf("conn-%02d", k)), []byte(fmt.Sprintf(`{"seq":%d}`, i)), time.Time{}) {
				t.Fatalf("Publish(%d, %d) = false", k, i)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err == nil {
		t.Error("second Close: no error")
	}
	if s.Publish([]byte("k"), []byte("v"), time.Time{}) {
		t.Error("Publish after Close = true")
	}

	got, err := embedded.ReadAll(ctx, b.Addr(), DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != keys*perKey {
		t.Fatalf("read %d messages, want %d", len(got), keys*perKey)
	}
	partitionOf := map[string]int32{}
	next := map[string]int{}
	for _, m := range got {
		k := string(m.Key)
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, m.Partition)
		}
		partitionOf[k] = m.Partition
		if want := fmt.Sprintf(`{"seq":%d}`, next[k]); string(m.Value) != want {
			t.Fatalf("key %s: got %s at offset %d, want %s", k, m.Value, m.Offset, want)
		}
		next[k]++
	}
	if len(partitionOf) != keys {
		t.Fatalf("read %d keys, want %d", len(partitionOf), keys)
	}
	partitions := map[int32]bool{}
	for _, p := range partitionOf {
		partitions[p] = true
	}
	if len(partitions) < 2 {
		t.Errorf("16 keys landed in %d partition(s), want them spread", len(partitions))
	}

	st := statsMap(s.Stats())
	want := map[string]uint64{
		"enqueued": keys * perKey, "delivered": keys * perKey, "failed": 0,
		"dropped_queue_full": 0, "dropped_too_large": 0, "dropped_on_close": 1,
		"write_errors": 0, "queue_messages": 0, "queue_bytes": 0,
	}
	for name, v := range want {
		if st[name] != v {
			t.Errorf("%s = %d, want %d", name, st[name], v)
		}
	}
	if len(st) != 9 {
		t.Errorf("Each reported %d names, want 9: %v", len(st), st)
	}
	if n := released.Load(); n != keys*perKey+1 {
		t.Errorf("Release called %d times, want %d", n, keys*perKey+1)
	}
}

func TestBrokerDown(t *testing.T) {
	s := newSink(t, Config{
		Brokers:       []string{downAddr},
		QueueSize:     500,
		MaxAttempts:   2,
		ProbeInterval: 50 * time.Millisecond,
	})

	const n = 10000
	value := bytes.Repeat([]byte("x"), 100)
	start := time.Now()
	accepted := 0
	for i := 0; i < n; i++ {
		if s.Publish([]byte(fmt.Sprintf("conn-%d", i%7)), value, time.Now()) {
			accepted++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("%d Publish calls took %v, want < 1s", n, d)
	}
	st := s.Stats()
	if got := st.DroppedQueueFull.Load(); got == 0 || got+uint64(accepted) != n {
		t.Fatalf("dropped_queue_full = %d, accepted = %d; want drops, summing to %d", got, accepted, n)
	}
	if q := st.QueueMessages.Load(); q > 500 {
		t.Fatalf("queue_messages = %d, above QueueSize 500", q)
	}

	waitFor(t, "Ready to report the broker unreachable", 3*time.Second, func() bool {
		err := s.Ready()
		return err != nil && strings.Contains(err.Error(), "broker unreachable")
	})
	if err := s.Ready(); !strings.Contains(err.Error(), "queue 100% full") {
		t.Errorf("Ready() = %v, want it to mention the full queue", err)
	}
	// With MaxAttempts 2 the first chunk is given up on and counted.
	waitFor(t, "failed messages", 5*time.Second, func() bool { return st.Failed.Load() > 0 })
	if st.WriteErrors.Load() == 0 {
		t.Error("write_errors = 0 after failed messages")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close() = %v; with MaxAttempts 2 everything fails fast", err)
	}
	m := statsMap(st)
	if m["enqueued"] != m["failed"] || m["delivered"] != 0 || m["queue_messages"] != 0 {
		t.Errorf("after Close: %v, want every enqueued message failed", m)
	}
	if n := s.DeliveryLatency().Count; n != 0 {
		t.Errorf("delivery latency observed %d failed messages", n)
	}
}

func TestCloseDeadlineBrokerDown(t *testing.T) {
	s := newSink(t, Config{Brokers: []string{downAddr}, QueueSize: 1000})
	for i := 0; i < 2000; i++ {
		s.Publish([]byte(fmt.Sprintf("conn-%d", i%7)), []byte("value"), time.Time{})
	}
	st := s.Stats()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Close(ctx)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with a 200ms deadline", d)
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "abandoned") {
		t.Errorf("Close() = %v, want abandoned messages and a deadline error", err)
	}
	m := statsMap(st)
	if m["enqueued"] != m["delivered"]+m["failed"]+m["dropped_on_close"] {
		t.Errorf("enqueued != delivered + failed + dropped_on_close: %v", m)
	}
	if m["delivered"] != 0 {
		t.Errorf("delivered = %d with no broker", m["delivered"])
	}
}

func TestBlockWaitsForRoom(t *testing.T) {
	t.Run("broker up", func(t *testing.T) {
		b := startBroker(t, 2)
		s := newSink(t, Config{Brokers: []string{b.Addr()}, QueueSize: 10, Block: true})
		const n = 300
		for i := 0; i < n; i++ {
			if !s.Publish([]byte(fmt.Sprintf("conn-%d", i%3)), []byte(fmt.Sprint(i)), time.Time{}) {
				t.Fatalf("Publish %d = false in Block mode", i)
			}
			if q := s.Stats().QueueMessages.Load(); q > 10 {
				t.Fatalf("queue_messages = %d, above QueueSize 10", q)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		st := statsMap(s.Stats())
		if st["delivered"] != n || st["dropped_queue_full"] != 0 {
			t.Fatalf("stats %v, want %d delivered and no drops", st, n)
		}
		got, err := embedded.ReadAll(ctx, b.Addr(), DefaultTopic)
		if err != nil || len(got) != n {
			t.Fatalf("read %d messages (%v), want %d", len(got), err, n)
		}
	})

	t.Run("broker down", func(t *testing.T) {
		s := newSink(t, Config{Brokers: []string{downAddr}, QueueSize: 5, Block: true})
		for i := 0; i < 5; i++ {
			if !s.Publish([]byte("k"), []byte("v"), time.Time{}) {
				t.Fatalf("Publish %d = false", i)
			}
		}
		var wg sync.WaitGroup
		var returned atomic.Bool
		var result atomic.Bool
		wg.Add(1)
		go func() {
			defer wg.Done()
			result.Store(s.Publish([]byte("k"), []byte("blocked"), time.Time{}))
			returned.Store(true)
		}()
		time.Sleep(200 * time.Millisecond)
		if returned.Load() {
			t.Fatal("Publish returned with a full queue in Block mode")
		}
		if got := s.Stats().DroppedQueueFull.Load(); got != 0 {
			t.Fatalf("dropped_queue_full = %d in Block mode", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = s.Close(ctx)
		wg.Wait()
		if result.Load() {
			t.Error("blocked Publish returned true after Close")
		}
	})
}

func TestTooLarge(t *testing.T) {
	b := startBroker(t, 1)
	s := newSink(t, Config{Brokers: []string{b.Addr()}, MaxMessageBytes: 4096})
	if got, want := s.MaxPayload(), 4096-RecordOverhead; got != want {
		t.Fatalf("MaxPayload() = %d, want %d", got, want)
	}
	key := []byte("conn-1")
	if !s.Publish(key, []byte("before"), time.Time{}) {
		t.Fatal("Publish(before) = false")
	}
	if s.Publish(key, bytes.Repeat([]byte("x"), s.MaxPayload()-len(key)+1), time.Time{}) {
		t.Fatal("Publish(too large) = true")
	}
	if !s.Publish(key, bytes.Repeat([]byte("y"), s.MaxPayload()-len(key)), time.Time{}) {
		t.Fatal("Publish(largest allowed) = false")
	}
	if !s.Publish(key, []byte("after"), time.Time{}) {
		t.Fatal("Publish(after) = false")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := statsMap(s.Stats())
	if st["dropped_too_large"] != 1 || st["delivered"] != 3 || st["failed"] != 0 {
		t.Fatalf("stats %v, want 1 dropped_too_large, 3 delivered, 0 failed", st)
	}
	got, err := embedded.ReadAll(ctx, b.Addr(), DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || string(got[0].Value) != "before" || got[1].Value[0] != 'y' || string(got[2].Value) != "after" {
		t.Fatalf("read %d messages, want before, yyy…, after", len(got))
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Brokers: []string{"b:9092"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("zero Config with brokers: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no brokers", func(c *Config) { c.Brokers = nil }, "no brokers configured"},
		{"empty broker", func(c *Config) { c.Brokers = []string{" "} }, "empty broker address"},
		{"compression", func(c *Config) { c.Compression = "x" }, `kafka: unknown compression "x" (want lz4, snappy, gzip, zstd, none)`},
		{"acks", func(c *Config) { c.RequiredAcks = "2" }, `kafka: unknown required acks "2" (want all, one, none)`},
		{"sasl", func(c *Config) { c.SASLMechanism = "GSSAPI"; c.SASLUsername = "u" }, `unknown SASL mechanism "GSSAPI"`},
		{"sasl user", func(c *Config) { c.SASLMechanism = "SCRAM-SHA-512" }, "needs a username"},
		{"tls off", func(c *Config) { c.TLSCAFile = "ca.pem" }, "TLS is off"},
		{"tls pair", func(c *Config) { c.TLS = true; c.TLSCertFile = "c.pem" }, "both a cert file and a key file"},
		{"small messages", func(c *Config) { c.MaxMessageBytes = 100 }, "max message bytes 100"},
		{"negative linger", func(c *Config) { c.Linger = -1 }, "negative linger"},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }, "negative queue size"},
	}
	for _, tc := range cases {
		c := ok
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted an invalid Config", tc.name)
		}
	}
	for _, c := range []Config{
		{Brokers: []string{"b:1"}, Compression: "ZSTD", RequiredAcks: "one", SASLMechanism: "plain", SASLUsername: "u"},
		{Brokers: []string{"b:1"}, Compression: "none", RequiredAcks: "none", SASLMechanism: "SCRAM-SHA-256", SASLUsername: "u"},
		{Brokers: []string{"b:1"}, Compression: "snappy", TLS: true, TLSInsecureSkipVerify: true},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", c, err)
		}
	}
}

func TestBrokerDiesAndComesBack(t *testing.T) {
	b := startBroker(t, 1)
	addr := b.Addr()
	s := newSink(t, Config{Brokers: []string{addr}, MaxAttempts: 2, WriteTimeout: time.Second, ProbeInterval: 50 * time.Millisecond})
	defer s.Close(context.Background())
	st := s.Stats()
	s.Publish([]byte("k"), []byte("1"), time.Time{})
	waitFor(t, "first delivery", 5*time.Second, func() bool { return st.Delivered.Load() == 1 })
	if err := s.Ready(); err != nil {
		t.Fatalf("Ready() = %v after a delivery", err)
	}

	b.Close()
	for i := 0; i < 10; i++ {
		s.Publish([]byte("k"), []byte("2"), time.Time{})
	}
	waitFor(t, "failures after the broker died", 10*time.Second, func() bool { return st.Failed.Load() == 10 })
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "broker unreachable") {
		t.Fatalf("Ready() = %v, want broker unreachable", err)
	}

	b2, err := embedded.Start(addr, DefaultTopic, 1)
	if err != nil {
		t.Skipf("restarting the broker on %s: %v", addr, err)
	}
	defer b2.Close()
	waitFor(t, "Ready after the broker came back", 10*time.Second, func() bool { return s.Ready() == nil })
	s.Publish([]byte("k"), []byte("3"), time.Time{})
	waitFor(t, "delivery after the broker came back", 10*time.Second, func() bool { return st.Delivered.Load() == 2 })
}

func BenchmarkPublish(b *testing.B) {
	br, err := embedded.Start("", DefaultTopic, 4)
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	s, err := New(Config{Brokers: []string{br.Addr()}, Block: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte(`{"path":"/api/v1/x","method":"GET"}`), 40)
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("conn-%d", i))
	}
	b.SetBytes(int64(len(value)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Publish(keys[i%len(keys)], value, time.Time{})
	}
	if err := s.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if d := s.Stats().Delivered.Load(); d != uint64(b.N) {
		b.Fatalf("delivered %d of %d", d, b.N)
	}
}
