// Package histogram counts durations into fixed buckets, for a Prometheus
// histogram (_bucket, _sum, _count) and for quantiles read back from it.
//
// Observe takes no lock and does not allocate: one atomic add on a bucket
// and one on the sum. Snapshot reads the buckets one by one, so a snapshot
// taken during observations may miss the newest ones; its count is always
// the sum of its buckets, so that _count equals the +Inf bucket.
package histogram

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Histogram counts durations into buckets with fixed upper bounds. Safe for
// concurrent use.
type Histogram struct {
	bounds []time.Duration // upper bounds, increasing
	counts []atomic.Uint64 // counts[i]: observations in (bounds[i-1], bounds[i]]; the last one: above every bound
	sum    atomic.Int64    // nanoseconds
}

// New returns a histogram with the given bucket upper bounds, which must be
// positive and strictly increasing. Observations above the last bound go to
// the +Inf bucket.
func New(bounds []time.Duration) (*Histogram, error) {
	if len(bounds) == 0 {
		return nil, errors.New("histogram: no bucket bounds")
	}
	for i, b := range bounds {
		if b <= 0 {
			return nil, fmt.Errorf("histogram: bucket bound %v is not positive", b)
		}
		if i > 0 && b <= bounds[i-1] {
			return nil, fmt.Errorf("histogram: bucket bounds not increasing: %v after %v", b, bounds[i-1])
		}
	}
	return &Histogram{bounds: slices.Clone(bounds), counts: make([]atomic.Uint64, len(bounds)+1)}, nil
}

// Observe counts one duration. Negative durations (clocks disagree) count
// as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	// Binary search by hand: sort.Search's closure would escape.
	lo, hi := 0, len(h.bounds)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.bounds[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	h.counts[lo].Add(1)
	h.sum.Add(int64(d))
}

// Snapshot is a histogram's state at one moment.
type Snapshot struct {
	// Bounds are the buckets' upper bounds; Cumulative[i] counts the
	// observations at most Bounds[i]. The +Inf bucket is Count.
	Bounds     []time.Duration
	Cumulative []uint64
	Count      uint64
	Sum        time.Duration
}

// Snapshot returns the counts so far.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Bounds: slices.Clone(h.bounds), Cumulative: make([]uint64, len(h.bounds))}
	var n uint64
	for i := range h.bounds {
		n += h.counts[i].Load()
		s.Cumulative[i] = n
	}
	s.Count = n + h.counts[len(h.bounds)].Load()
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Quantile estimates the q-quantile (0 <= q <= 1) the way Prometheus's
// histogram_quantile does: linear interpolation within the bucket that holds
// it, the first bucket starting at zero. It returns 0 without observations,
// and the last bound when the quantile falls in the +Inf bucket.
func (s Snapshot) Quantile(q float64) time.Duration {
	if s.Count == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	var below uint64
	var lower time.Duration
	for i, c := range s.Cumulative {
		if float64(c) >= rank && c > below {
			frac := (rank - float64(below)) / float64(c-below)
			return lower + time.Duration(frac*float64(s.Bounds[i]-lower))
		}
		below, lower = c, s.Bounds[i]
	}
	return s.Bounds[len(s.Bounds)-1]
}
