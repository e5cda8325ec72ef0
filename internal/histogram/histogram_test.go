package histogram

import (
	"slices"
	"sync"
	"testing"
	"time"
)

var ms = time.Millisecond

func TestObserveBuckets(t *testing.T) {
	h, err := New([]time.Duration{1 * ms, 5 * ms, 50 * ms})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{-3 * ms, 0, 1 * ms, 1*ms + 1, 5 * ms, 49 * ms, 50 * ms, 51 * ms, time.Hour} {
		h.Observe(d)
	}
	s := h.Snapshot()
	// -3ms counts as 0: {0, 0, 1ms} <= 1ms; {1ms+1, 5ms} <= 5ms; {49ms, 50ms} <= 50ms; 2 above.
	if want := []uint64{3, 5, 7}; !slices.Equal(s.Cumulative, want) {
		t.Errorf("cumulative %v, want %v", s.Cumulative, want)
	}
	if s.Count != 9 {
		t.Errorf("count %d, want 9", s.Count)
	}
	want := 0 + 0 + 1*ms + 1*ms + 1 + 5*ms + 49*ms + 50*ms + 51*ms + time.Hour
	if s.Sum != want {
		t.Errorf("sum %v, want %v", s.Sum, want)
	}
}

func TestNewRejectsBadBounds(t *testing.T) {
	for _, b := range [][]time.Duration{nil, {0}, {-ms}, {2 * ms, ms}, {ms, ms}} {
		if _, err := New(b); err == nil {
			t.Errorf("New(%v): no error", b)
		}
	}
}

func TestQuantile(t *testing.T) {
	h, _ := New([]time.Duration{10 * ms, 20 * ms, 40 * ms})
	tests := []struct {
		name string
		obs  []time.Duration
		q    float64
		want time.Duration
	}{
		{"empty", nil, 0.5, 0},
		// 10 in (0,10ms]: the median is half way through the first bucket.
		{"first bucket", repeat(5*ms, 10), 0.5, 5 * ms},
		// 50 in (0,10], 50 in (10,20]: p99 is 98% through the second.
		{"second bucket", append(repeat(ms, 50), repeat(15*ms, 50)...), 0.99, 10*ms + 9800*time.Microsecond},
		{"+Inf bucket", repeat(time.Second, 4), 0.5, 40 * ms},
	}
	for _, tt := range tests {
		h, _ = New([]time.Duration{10 * ms, 20 * ms, 40 * ms})
		for _, d := range tt.obs {
			h.Observe(d)
		}
		if got := h.Snapshot().Quantile(tt.q); got != tt.want {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestObserveDoesNotAllocate(t *testing.T) {
	h, _ := New([]time.Duration{ms, 10 * ms, 100 * ms})
	if n := testing.AllocsPerRun(1000, func() { h.Observe(7 * ms) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func TestConcurrentObserve(t *testing.T) {
	h, _ := New([]time.Duration{ms, 10 * ms})
	var wg sync.WaitGroup
	const goroutines, each = 8, 10000
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.Observe(time.Duration(g*each+i) * time.Microsecond % (20 * ms))
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		// Snapshots during observations stay consistent: count is the +Inf bucket.
		for {
			select {
			case <-done:
				return
			default:
			}
			s := h.Snapshot()
			if s.Count < s.Cumulative[len(s.Cumulative)-1] {
				t.Error("count below the last bucket")
				return
			}
		}
	}()
	wg.Wait()
	close(done)
	if s := h.Snapshot(); s.Count != goroutines*each {
		t.Errorf("count %d, want %d", s.Count, goroutines*each)
	}
}
