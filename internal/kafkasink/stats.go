package kafkasink

import "sync/atomic"

// Stats are the sink's counters and gauges. Every field is safe to read
// concurrently with the sink's work; Each reads them in a fixed order.
//
// Every message given to Publish ends up in exactly one of enqueued,
// dropped_queue_full, dropped_too_large or dropped_on_close (when Publish is
// called after Close started). Every enqueued message ends up in delivered,
// failed or dropped_on_close (abandoned by Close), or is still held
// (queue_messages). After Close returns, late completions from the writer are
// no longer counted.
type Stats struct {
	// Enqueued counts messages Publish accepted.
	Enqueued atomic.Uint64
	// Delivered counts messages the broker acknowledged (or, with
	// RequiredAcks "none", that were sent).
	Delivered atomic.Uint64
	// Failed counts messages lost to write errors after every retry.
	Failed atomic.Uint64
	// DroppedQueueFull counts messages Publish dropped because the queue was
	// full (never in Block mode).
	DroppedQueueFull atomic.Uint64
	// DroppedTooLarge counts messages Publish dropped because they exceed
	// Sink.MaxPayload.
	DroppedTooLarge atomic.Uint64
	// DroppedOnClose counts messages Close abandoned at its deadline, and
	// messages published once Close had started.
	DroppedOnClose atomic.Uint64
	// WriteErrors counts batches that failed after every retry (their
	// messages are in Failed).
	WriteErrors atomic.Uint64
	// QueueMessages is a gauge: messages held, waiting or in the writer.
	QueueMessages atomic.Uint64
	// QueueBytes is a gauge: key plus value bytes of the messages held.
	QueueBytes atomic.Uint64
}

// Each calls fn with every counter and gauge, in this order: enqueued,
// delivered, failed, dropped_queue_full, dropped_too_large, dropped_on_close,
// write_errors, queue_messages, queue_bytes. The last two are gauges.
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("enqueued", s.Enqueued.Load())
	fn("delivered", s.Delivered.Load())
	fn("failed", s.Failed.Load())
	fn("dropped_queue_full", s.DroppedQueueFull.Load())
	fn("dropped_too_large", s.DroppedTooLarge.Load())
	fn("dropped_on_close", s.DroppedOnClose.Load())
	fn("write_errors", s.WriteErrors.Load())
	fn("queue_messages", s.QueueMessages.Load())
	fn("queue_bytes", s.QueueBytes.Load())
}
