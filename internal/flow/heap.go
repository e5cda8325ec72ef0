package flow

import "runtime/metrics"

// The live heap is known only as of the last garbage collection; a flood
// of connections can grow it a lot before the next one. So the heap is
// taken to be what the last collection found live plus everything
// allocated since, as if all of it were kept: an overestimate by the
// garbage made since, which is what a limit must err on.
const (
	heapLiveMetric  = "/gc/heap/live:bytes"
	heapAllocMetric = "/gc/heap/allocs:bytes"
	gcCyclesMetric  = "/gc/cycles/total:gc-cycles"
)

// heapWatchEvery is how many new connections pass between two readings:
// a reading costs about a microsecond.
const heapWatchEvery = 64

// heapWatch tells whether the heap is over a limit, reading it once every
// heapWatchEvery questions. One worker owns it.
type heapWatch struct {
	asked   int
	isOver  bool
	cycles  uint64 // collections seen at the last reading
	allocAt uint64 // bytes allocated in total when that collection was first seen
	samples [3]metrics.Sample
}

func (h *heapWatch) over(limit int64) bool {
	if limit <= 0 {
		return false
	}
	if h.asked%heapWatchEvery == 0 {
		h.isOver = h.estimate() > uint64(limit)
	}
	h.asked++
	return h.isOver
}

// estimate is the live heap as of the last collection plus what was
// allocated since (as far as this watch can tell: since it first saw that
// collection).
func (h *heapWatch) estimate() uint64 {
	h.samples[0].Name, h.samples[1].Name, h.samples[2].Name = heapLiveMetric, heapAllocMetric, gcCyclesMetric
	metrics.Read(h.samples[:])
	for _, s := range h.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0
		}
	}
	live, alloc, cycles := h.samples[0].Value.Uint64(), h.samples[1].Value.Uint64(), h.samples[2].Value.Uint64()
	if cycles != h.cycles {
		h.cycles, h.allocAt = cycles, alloc
	}
	return live + alloc - h.allocAt
}
