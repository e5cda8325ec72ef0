package flow

import (
	"net/netip"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// Handler consumes one TCP connection's reassembled bytes. Direction 0 is
// the side that sent the first segment the sniffer saw (bare ACKs of unknown
// connections are ignored); the handler decides
// from content which side is the client. A worker calls a Handler from one
// goroutine only. Byte slices passed to Data are borrowed: copy to keep.
type Handler interface {
	Data(dir int, b []byte, ts time.Time)
	// Gap reports n bytes of dir that will never arrive (n < 0: unknown).
	Gap(dir int, n int, ts time.Time)
	// End reports the FIN of dir, after all of dir's data.
	End(dir int, ts time.Time)
	// Close ends the connection; the handler is not used afterwards.
	Close(ts time.Time)
	// Expire lets the handler time out state by the capture clock.
	Expire(now time.Time)
	// Skipping reports that the handler wants no more bytes (TLS, HTTP/2).
	Skipping() bool
}

// Starter is implemented by a Handler that wants to know where a stream
// starts: Start(dir) is called just before the first bytes of dir when they
// are the first bytes of the stream (its SYN, or the SYN-ACK naming its
// first byte, was seen), never for a stream joined mid-way. A parser can
// then take what starts there for a message start instead of guessing.
type Starter interface {
	Start(dir int)
}

// ConnID names a connection: the VNI it arrived with and its endpoints, A
// being the sender of the first segment seen.
type ConnID struct {
	VNI  uint32
	A, B netip.AddrPort
}

// NewHandler makes the Handler of a new connection.
type NewHandler func(id ConnID) Handler

// key is the direction-independent map key of a connection.
type key struct {
	lo, hi netip.Addr // first: no padding, the map's slots stay small
	vni    uint32
	lp, hp uint16
}

func makeKey(p *decode.Packet) key {
	k := key{vni: p.VNI, lo: p.Src, lp: p.SrcPort, hi: p.Dst, hp: p.DstPort}
	if c := p.Src.Compare(p.Dst); c > 0 || (c == 0 && p.SrcPort > p.DstPort) {
		k.lo, k.lp, k.hi, k.hp = p.Dst, p.DstPort, p.Src, p.SrcPort
	}
	return k
}

// segment is out-of-order data waiting for the hole before it to fill.
type segment struct {
	seq     uint32
	data    []byte // a buffer from the worker's pool
	missing int    // bytes cut from the end of data by the capture
	ack     uint32 // the segment's acknowledgement number, when hasAck
	hasAck  bool
	ts      time.Time
}

// pending is in-order content of one direction waiting to be handed to the
// Handler until the other direction has been handed the bytes it
// acknowledges: the mirror may deliver a response before the request it
// answers, and the parser must see them in the order they were sent.
type pending struct {
	data   []byte // a buffer from the worker's pool, or nil for a gap
	gap    int    // bytes lost after data (-1: unknown), 0 for none
	end    uint32 // stream position after this content
	ack    uint32
	hasAck bool
	ts     time.Time
}

// half is one direction of a connection. Fields are ordered by size: a
// tracked connection costs its struct, and there may be hundreds of
// thousands of them.
type half struct {
	held   []pending
	ooo    []segment
	finTs  int64  // when the FIN was seen, unix nanoseconds of capture time
	next   uint32 // sequence number of the next byte to reassemble
	out    uint32 // sequence number of the next byte to hand to the Handler
	isn    uint32 // initial sequence number, when the SYN was seen
	finSeq uint32
	// lostEnd is where the last bytes declared lost in this direction
	// ended (valid when lost): content of the other direction sent before
	// all of them reached its sender cannot follow the loss to the parser.
	lostEnd uint32
	lost    bool
	started bool // next is known
	synSeen bool
	atStart bool // started from a SYN or SYN-ACK: out began at the stream's first byte
	begun   bool // content has been handed over
	finSeen bool
	ended   bool // End was delivered
}

type conn struct {
	key key
	// h is made when the connection first has something for it (content,
	// a gap): a connection that only ever sent a SYN costs no parser.
	h Handler
	// older and newer link the worker's connections from the least to the
	// most recently seen, to find the one to evict when the table is full.
	older, newer *conn
	dirs         [2]half
	idx          int   // position in the worker's list
	lastSeen     int64 // unix nanoseconds of capture time
	flipped      bool  // A, the sender of the first segment seen, is key.hi
	skipping     bool
	// forcing is set while waiting content is given up on: everything is
	// handed over at once, in order, without holding.
	forcing bool
	// busy is set while the worker frees buffer space with this
	// connection's work on the stack: freeing space may give up another
	// connection's holes, which delivers its content and may need space
	// in turn, and must never reach back into a connection half-way
	// through delivering (its next bytes would overtake the ones being
	// delivered).
	busy bool
}

// id is the connection's ConnID, rebuilt from its key rather than kept.
func (c *conn) id() ConnID {
	a, b := netip.AddrPortFrom(c.key.lo, c.key.lp), netip.AddrPortFrom(c.key.hi, c.key.hp)
	if c.flipped {
		a, b = b, a
	}
	return ConnID{VNI: c.key.vni, A: a, B: b}
}

// dirOf is the direction of a segment sent from src:port.
func (c *conn) dirOf(src netip.Addr, port uint16) int {
	aAddr, aPort := c.key.lo, c.key.lp
	if c.flipped {
		aAddr, aPort = c.key.hi, c.key.hp
	}
	if port != aPort || src != aAddr {
		return 1
	}
	return 0
}

// start sets the position of a direction first seen at seq.
func (d *half) start(seq uint32) {
	d.started = true
	d.next = seq
	d.out = seq
}

// seqDiff is a-b in sequence space (wraps at 2^32).
func seqDiff(a, b uint32) int32 { return int32(a - b) }
