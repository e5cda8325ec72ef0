// Package capture brings mirrored packets in: live from UDP sockets on the
// VXLAN port, or replayed from pcap and pcapng files. It decodes each
// datagram or frame, counts what it cannot use by reason, and hands TCP
// segments to a Sink.
package capture

import (
	"sync/atomic"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// Sink receives decoded segments. Add must copy p.Payload before it
// returns. It reports false when it dropped the packet.
type Sink interface {
	Add(p *decode.Packet, ts time.Time) bool
	Flush()
}

// Stats counts what came in. Safe for concurrent use.
type Stats struct {
	Datagrams atomic.Uint64 // UDP datagrams or capture frames read
	Bytes     atomic.Uint64
	Oversized atomic.Uint64 // datagrams larger than the read buffer (cut)
	Decoded   [decode.NumReasons]atomic.Uint64
	// ReadErrors counts failed socket reads other than timeouts.
	ReadErrors atomic.Uint64
}

// Each calls fn with every counter; decode outcomes are named
// "decode_<reason>".
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("datagrams", s.Datagrams.Load())
	fn("bytes", s.Bytes.Load())
	fn("oversized", s.Oversized.Load())
	fn("read_errors", s.ReadErrors.Load())
	for r := decode.Reason(0); r < decode.NumReasons; r++ {
		fn("decode_"+r.String(), s.Decoded[r].Load())
	}
}
