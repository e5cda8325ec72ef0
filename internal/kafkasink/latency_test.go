package kafkasink

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/histogram"
)

func TestLatencyBuckets(t *testing.T) {
	if _, err := histogram.New(LatencyBuckets); err != nil {
		t.Fatal(err)
	}
	if LatencyBuckets[0] != time.Millisecond || LatencyBuckets[len(LatencyBuckets)-1] != 10*time.Second {
		t.Errorf("buckets from %v to %v, want 1ms to 10s", LatencyBuckets[0], LatencyBuckets[len(LatencyBuckets)-1])
	}
	if !slices.Contains(LatencyBuckets, 50*time.Millisecond) {
		t.Error("no 50ms bound: p99 <= 50ms cannot be read")
	}
}

// TestDeliveryLatency publishes through the real writer into the embedded
// broker with known capture times: each delivered message is observed once,
// from its last to the acknowledgement; zero times are not observed.
func TestDeliveryLatency(t *testing.T) {
	b := startBroker(t, 2)
	s := newSink(t, Config{Brokers: []string{b.Addr()}})
	const old, future, zero = 300, 50, 70
	start := time.Now()
	publish := func(n int, last time.Time) {
		for i := range n {
			if !s.Publish([]byte(fmt.Sprintf("conn-%d", i%5)), []byte(`{"v":1}`), last) {
				t.Fatal("Publish refused")
			}
		}
	}
	publish(old, start.Add(-3*time.Second)) // (2.5s, 5s] unless delivery takes over 2s
	publish(future, start.Add(time.Hour))   // a clock ahead counts as 0
	publish(zero, time.Time{})              // not observed
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if d := s.Stats().Delivered.Load(); d != old+future+zero {
		t.Fatalf("delivered %d, want %d", d, old+future+zero)
	}
	h := s.DeliveryLatency()
	if h.Count != old+future {
		t.Fatalf("observed %d messages, want %d", h.Count, old+future)
	}
	at := func(bound time.Duration) uint64 { return h.Cumulative[slices.Index(h.Bounds, bound)] }
	if got := at(time.Millisecond); got != future {
		t.Errorf("%d messages at most 1ms, want the %d from the future", got, future)
	}
	if took < 2*time.Second {
		if got := at(2500 * time.Millisecond); got != future {
			t.Errorf("%d messages at most 2.5s, want %d", got, future)
		}
		if got := at(5 * time.Second); got != old+future {
			t.Errorf("%d messages at most 5s, want %d", got, old+future)
		}
	}
	if lo, hi := time.Duration(old)*3*time.Second, time.Duration(old)*(3*time.Second+took); h.Sum < lo || h.Sum > hi {
		t.Errorf("sum %v, want between %v and %v", h.Sum, lo, hi)
	}
}

func TestPublishDoesNotAllocateForLatency(t *testing.T) {
	b := startBroker(t, 1)
	s := newSink(t, Config{Brokers: []string{b.Addr()}, QueueSize: 1 << 20, QueueBytes: 1 << 30})
	key, value := []byte("conn"), []byte(`{"v":1}`)
	last := time.Now()
	// Publish with and without a capture time costs the same: recording it
	// adds no allocation (the queue's growth is amortized away by the runs).
	with := testing.AllocsPerRun(2000, func() { s.Publish(key, value, last) })
	without := testing.AllocsPerRun(2000, func() { s.Publish(key, value, time.Time{}) })
	if with > without {
		t.Errorf("Publish allocates %v times with a capture time, %v without", with, without)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
}
