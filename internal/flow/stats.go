package flow

import "sync/atomic"

// Stats counts what the reassembler did. All fields are safe for concurrent
// use; one Stats is shared by every worker of an Engine.
type Stats struct {
	Packets        atomic.Uint64 // TCP segments handed to workers
	PayloadBytes   atomic.Uint64 // their payload bytes
	ConnsOpened    atomic.Uint64
	ConnsClosedFIN atomic.Uint64
	ConnsClosedRST atomic.Uint64
	ConnsExpired   atomic.Uint64
	ConnsFlushed   atomic.Uint64 // closed at shutdown or end of capture
	ConnsReused    atomic.Uint64 // a new SYN on a known 4-tuple replaced the old connection
	ConnTableFull  atomic.Uint64 // packets of new connections dropped: MaxConns reached and none idle for EvictIdle
	// Whole connections shed for memory, by reason (README "Memory").
	ConnsEvictedIdle   atomic.Uint64 // closed to make room for a new one: MaxConns reached, idle for EvictIdle
	ConnsEvictedMemory atomic.Uint64 // closed to make room for a new one: heap over MaxHeapLive, idle for EvictIdle
	ConnsRefusedMemory atomic.Uint64 // packets of new connections dropped: heap over MaxHeapLive and none idle for EvictIdle
	Duplicates         atomic.Uint64 // segments entirely already seen (retransmissions, mirror duplicates)
	OutOfOrder         atomic.Uint64 // segments buffered because they arrived ahead of a hole
	Gaps               atomic.Uint64 // holes declared: bytes that never arrived
	GapBytes           atomic.Uint64
	BufferOverflows    atomic.Uint64 // holes declared early because a buffer cap was reached
	TruncatedSegs      atomic.Uint64 // segments cut short by the capture (counted as gaps too)
	Held               atomic.Uint64 // in-order content held until the other direction caught up (mirror reordering across directions)
	HeldTimeouts       atomic.Uint64 // of which released after the reorder window without the other direction catching up
	LateAcrossGap      atomic.Uint64 // content sent before the other direction's lost bytes but reaching the parser after the loss: given to it as lost
	QueueDrops         atomic.Uint64 // packets dropped because workers fell behind (live capture only)
	SkippedBytes       atomic.Uint64 // payload of connections the parser gave up on (TLS, HTTP/2, upgraded)
	BufferedBytes      atomic.Int64  // out-of-order bytes held now (gauge)
	OpenConns          atomic.Int64  // connections tracked now (gauge)
	PeakOpenConns      atomic.Int64  // the most connections tracked at once so far (gauge)
}

// opened counts a new connection and keeps the peak up to date.
func (s *Stats) opened() {
	s.ConnsOpened.Add(1)
	n := s.OpenConns.Add(1)
	for {
		peak := s.PeakOpenConns.Load()
		if n <= peak || s.PeakOpenConns.CompareAndSwap(peak, n) {
			return
		}
	}
}

// Each calls fn with every counter's name and value, for export.
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("packets", s.Packets.Load())
	fn("payload_bytes", s.PayloadBytes.Load())
	fn("conns_opened", s.ConnsOpened.Load())
	fn("conns_closed_fin", s.ConnsClosedFIN.Load())
	fn("conns_closed_rst", s.ConnsClosedRST.Load())
	fn("conns_expired", s.ConnsExpired.Load())
	fn("conns_flushed", s.ConnsFlushed.Load())
	fn("conns_reused", s.ConnsReused.Load())
	fn("conn_table_full", s.ConnTableFull.Load())
	fn("conns_evicted_idle", s.ConnsEvictedIdle.Load())
	fn("conns_evicted_memory", s.ConnsEvictedMemory.Load())
	fn("conns_refused_memory", s.ConnsRefusedMemory.Load())
	fn("duplicates", s.Duplicates.Load())
	fn("out_of_order", s.OutOfOrder.Load())
	fn("gaps", s.Gaps.Load())
	fn("gap_bytes", s.GapBytes.Load())
	fn("buffer_overflows", s.BufferOverflows.Load())
	fn("truncated_segments", s.TruncatedSegs.Load())
	fn("held", s.Held.Load())
	fn("held_timeouts", s.HeldTimeouts.Load())
	fn("late_across_gap", s.LateAcrossGap.Load())
	fn("queue_drops", s.QueueDrops.Load())
	fn("skipped_bytes", s.SkippedBytes.Load())
}

// Gauges calls fn with the current values of the gauges.
func (s *Stats) Gauges(fn func(name string, v float64)) {
	fn("buffered_bytes", float64(s.BufferedBytes.Load()))
	fn("open_conns", float64(s.OpenConns.Load()))
	fn("open_conns_peak", float64(s.PeakOpenConns.Load()))
}
