package http1

import "sync/atomic"

// Stats counts what the parsers of a process did and, above all, what they
// dropped and why. One Stats is shared by all Conns (of all workers); every
// field is safe for concurrent use. The zero value is ready.
type Stats struct {
	Pairs          atomic.Uint64 // request/response pairs emitted
	PendingEmitted atomic.Uint64 // requests emitted without a response (Expire, Close, overflow, skip)
	PendingDropped atomic.Uint64 // requests without a response dropped because EmitPending is false

	RequestsDroppedGap    atomic.Uint64 // queued requests dropped because bytes were lost (Gap)
	RequestsDroppedDesync atomic.Uint64 // queued requests dropped because the server direction lost sync (garbage)
	OrphanResponses       atomic.Uint64 // responses with no request to pair with, parsed and dropped
	LateResponses         atomic.Uint64 // responses to requests already emitted as pending (timeout, overflow), dropped

	RejectedRequests         atomic.Uint64 // request heads refused after their start line (bad field, length, coding, too big): not published, their response dropped
	RequestsDroppedUnaligned atomic.Uint64 // requests not published because unreadable client bytes before them may have had a response: their slot takes one response
	AmbiguousFraming         atomic.Uint64 // messages with Content-Length and Transfer-Encoding, or Transfer-Encoding in HTTP/1.0: pairing on the connection stops after them

	Resyncs       atomic.Uint64 // a direction searched for the next message start after a gap or garbage
	Garbage       atomic.Uint64 // unparseable start line, header, framing or chunk size; too-big head
	BodyTruncated atomic.Uint64 // bodies cut at MaxBodyBytes
	DecodeErrors  atomic.Uint64 // Content-Encoding decoding failed or its input had been cut
	BinaryBodies  atomic.Uint64 // bodies that were not valid UTF-8, replaced by nothing
	Incomplete    atomic.Uint64 // messages cut short by End or Close

	SkippedTLS     atomic.Uint64 // connections recognised as TLS and skipped
	SkippedHTTP2   atomic.Uint64 // connections starting with the HTTP/2 preface and skipped
	Upgrades       atomic.Uint64 // connections switched away from HTTP/1 (101, CONNECT 2xx) and skipped
	QueueOverflow  atomic.Uint64 // requests pushed out of a full queue (MaxPending)
	BodyBudgetCuts atomic.Uint64 // bodies cut because Config.Budget, the memory for all bodies held, was used up
}

// Each calls fn with every counter's snake_case name and current value, in a
// fixed order, for the metrics layer.
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("pairs", s.Pairs.Load())
	fn("pending_emitted", s.PendingEmitted.Load())
	fn("pending_dropped", s.PendingDropped.Load())
	fn("requests_dropped_gap", s.RequestsDroppedGap.Load())
	fn("requests_dropped_desync", s.RequestsDroppedDesync.Load())
	fn("orphan_responses", s.OrphanResponses.Load())
	fn("late_responses", s.LateResponses.Load())
	fn("rejected_requests", s.RejectedRequests.Load())
	fn("requests_dropped_unaligned", s.RequestsDroppedUnaligned.Load())
	fn("ambiguous_framing", s.AmbiguousFraming.Load())
	fn("resyncs", s.Resyncs.Load())
	fn("garbage", s.Garbage.Load())
	fn("body_truncated", s.BodyTruncated.Load())
	fn("decode_errors", s.DecodeErrors.Load())
	fn("binary_bodies", s.BinaryBodies.Load())
	fn("incomplete", s.Incomplete.Load())
	fn("skipped_tls", s.SkippedTLS.Load())
	fn("skipped_http2", s.SkippedHTTP2.Load())
	fn("upgrades", s.Upgrades.Load())
	fn("queue_overflow", s.QueueOverflow.Load())
	fn("body_budget_cuts", s.BodyBudgetCuts.Load())
}
