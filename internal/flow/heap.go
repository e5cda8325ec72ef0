package flow

import "runtime/metrics"

// heapLiveMetric is the heap the last garbage collection found reachable:
// what the program holds, without the garbage not yet collected, which a
// memory limit makes the collector reclaim anyway.
const heapLiveMetric = "/gc/heap/live:bytes"

// heapWatchEvery is how many new connections pass between two readings of
// the live heap: a reading costs about a microsecond, and the figure
// changes only once per garbage collection.
const heapWatchEvery = 64

// heapWatch tells whether the live heap is over a limit, reading it once
// every heapWatchEvery questions. One worker owns it.
type heapWatch struct {
	asked  int
	isOver bool
	sample [1]metrics.Sample
}

func (h *heapWatch) over(limit int64) bool {
	if limit <= 0 {
		return false
	}
	if h.asked%heapWatchEvery == 0 {
		h.sample[0].Name = heapLiveMetric
		metrics.Read(h.sample[:])
		if h.sample[0].Value.Kind() == metrics.KindUint64 {
			h.isOver = h.sample[0].Value.Uint64() > uint64(limit)
		}
	}
	h.asked++
	return h.isOver
}
