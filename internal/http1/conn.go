// Package http1 turns the two byte streams of one TCP connection into
// HTTP/1.x request/response pairs.
//
// The reassembly layer owns one *Conn per TCP connection and feeds it the
// in-order bytes of each direction (Data), lost bytes (Gap), FINs (End) and
// the end of the connection (Close). A Conn is not safe for concurrent use: a
// worker goroutine calls it for all of its connections, so nothing inside
// locks or starts goroutines. Bytes passed in are borrowed: whatever is kept
// is copied before the call returns. The other way round, an Exchange handed
// to emit is borrowed too: its messages are recycled once the call returns
// (docs/sniffer.md), so that parsing allocates nothing in the steady state.
//
// Pairing follows HTTP/1.1's only rule: responses come back in the order of
// the requests. Each connection keeps a FIFO queue of requests; a response is
// framed with its request's method and paired with the oldest request that
// has no response yet. Whenever that order can no longer be known for certain
// (bytes lost, a direction that stopped making sense) the queue is dropped
// and both directions look for the next plausible message start, because a
// missing pair is acceptable and a wrong pair is not.
//
// A request whose head is refused after its start line was read keeps its
// place in the queue and takes the response the server sends it (a 400),
// unpublished. Client bytes that are no request at all may have been
// answered too: the requests after them are not published (their slots
// take the responses) until a response has come that no earlier request
// waited for and the server has caught up.
//
// One case stays beyond any stream parser without TCP sequence numbers: a
// client that pipelines requests across lost bytes. How many responses are
// still owed is then unknown, and a later response may pair with a wrong
// request. Clients that wait for each response, nearly all of them, are
// paired correctly.
package http1

import (
	"bytes"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apitap/apitap/internal/record"
)

// Message is one parsed HTTP request or response. Its strings and bytes
// are the parser's: valid during the emit call that hands them out, reused
// after it (Clone keeps a copy).
type Message struct {
	Method, Target, Proto string // request: "GET", "/a?b=1", "HTTP/1.1"; response: Proto only
	StatusCode            int    // response: 200
	Status                string // response: code and reason phrase as sent, "404 Not Found" (just "200" without a reason)

	// Headers are the header fields as sent: names as written, order kept,
	// repeated fields as separate entries. They are not changed when the body
	// is decoded. Trailer fields of a chunked body are not kept.
	Headers []record.Header

	// Body is the body after chunked and content decoding, at most
	// Config.MaxBodyBytes long, nil when empty or not valid UTF-8. It belongs
	// to the Message.
	Body          []byte
	BodyTruncated bool // Body was cut, or could be decoded only in part
	BodyOmitted   bool // the Filter said KeepHead and the body had bytes: none were kept

	Time time.Time // capture time of the message's first byte
	End  time.Time // capture time of the message's last byte (the end of its head when pending)

	reserved int64 // raw body bytes counted against Config.Budget

	// Buffers reused when the Message is recycled (message.go).
	head []byte       // the bytes the string fields point into
	raw  []byte       // the body as framed (chunks joined), before content decoding
	dec  []byte       // the content-decoded body
	rd   bytes.Reader // reads raw for the decoder
}

// Verdict is a Filter's answer for an exchange.
type Verdict uint8

const (
	Keep     Verdict = iota // emit it
	KeepHead                // emit it, without this message's body (not kept, not decoded)
	Drop                    // do not emit it: its bodies are not kept
)

// Filter decides, as soon as a head is parsed, what becomes of its
// exchange, so that what is not wanted costs no body copy or decoding. A
// dropped exchange is still framed and paired all the same: its response
// must not go to another request. Request is asked once the request head
// is complete (clientDir is the direction that carried it), Response once
// the response head is (for exchanges the request did not drop). Both are
// called from the Conn's methods, with messages valid during the call.
type Filter interface {
	Request(clientDir int, req *Message) Verdict
	Response(req, resp *Message) Verdict
}

// Exchange is a request with its response, or with none (pending). It is
// valid only during the emit call: the Conn reuses it and its Messages.
type Exchange struct {
	ClientDir int      // the direction (0 or 1) that carried the request
	Request   *Message // never nil
	Response  *Message // nil when the request is emitted as pending
}

// phase is where a direction is within a message.
type phase uint8

const (
	phLine      phase = iota // start line (or empty lines between messages)
	phFields                 // header fields, until the empty line
	phBody                   // Content-Length body: remain bytes left
	phChunkSize              // chunk-size line
	phChunkData              // chunk data: remain bytes left
	phChunkEnd               // the CRLF after chunk data
	phTrailer                // trailer fields, until the empty line
	phClose                  // close-delimited body: until End or Close
	phPeek                   // after the head of a response whose request is unknown
)

// side is the parsing state of one direction.
type side struct {
	phase phase

	// sync: the direction is looking for a plausible message start, after a
	// gap, garbage or at the start of the capture. Only line starts and the
	// starts of Data calls are tried; lineStart says whether the next byte is
	// one.
	sync      bool
	lineStart bool
	begin     bool // the next byte is the stream's first (Start): a message starts there
	fresh     bool // no line of this direction looked at yet: TLS detection
	tentative bool // the start line was found by resync; until the head is complete a failure is silent
	sawCR     bool // phChunkEnd: the CR has been seen

	part      []byte // a line that is not complete yet (borrowed bytes copied)
	headBytes int    // bytes of the current head or trailer so far

	start    time.Time // capture time of the current message's first byte
	startSeq uint64    // Conn.seq when it arrived

	msg      *Message
	isReq    bool
	entry    *entry // request: its queue entry; response: the entry it answers (nil: orphan)
	body     []byte // raw body kept so far, at most MaxBodyBytes
	reserved int64  // len(body), counted against Config.Budget
	cut      bool   // raw body longer than MaxBodyBytes
	remain   int64  // phBody, phChunkData
	enc      encoding
	last     bool // response: its framing is ambiguous, pairing stops after it
	omit     bool // the body's bytes are not kept (Filter)
	omitted  bool // some were not

	framing  framing   // phPeek: the response's framing, if it has a body
	peekTime time.Time // phPeek: when the first peeked byte arrived
	peekSeq  uint64
}

// maxKeptPart bounds the line buffer capacity a direction keeps between
// messages, so that one huge head does not pin 64 KiB for the connection's life.
const maxKeptPart = 4 << 10

// next prepares the side for the next message, in step (not resyncing).
func (d *side) next() {
	part := d.part[:0]
	if cap(part) > maxKeptPart {
		part = nil
	}
	fresh := d.fresh
	*d = side{part: part, fresh: fresh}
}

// resync abandons whatever the side was doing and makes it search for the
// next message start. lineStart says whether the next byte begins a line.
func (d *side) resync(lineStart bool) {
	d.next()
	d.sync, d.lineStart = true, lineStart
}

// entry is one request in a connection's queue.
type entry struct {
	req      *Message
	resp     *Message  // the response, when it completed before the request did
	seq      uint64    // Conn.seq of the request's first byte
	done     bool      // the request is complete
	doneAt   time.Time // when it completed: a response is due from then
	answered bool      // a response has been paired with it (perhaps still being read)
	dead     bool      // the request was abandoned, but its response is still owed: drop it when it comes
	last     bool      // its framing is ambiguous: pairing stops once its response is done
	drop     bool      // the Filter dropped it: it is paired, never emitted
}

// Conn parses one TCP connection. Create it with NewConn or reuse one with
// Reset. Its methods must be called from one goroutine; the emit callback is
// called synchronously from them and must not call back into the Conn.
type Conn struct {
	cfg   Config
	stats *Stats
	emit  func(*Exchange)

	sides  [2]side
	client int // the direction that carries requests, -1 until known

	queue []*entry // requests in order; responses pair with the first not answered
	// owed counts requests that left the queue before their response came
	// (emitted as pending by Expire or on overflow). Their responses still
	// come first, and are dropped so that they cannot pair with later
	// requests. owedMethods holds the methods of the oldest of them (at most
	// MaxPending) so that those responses are framed right (HEAD: no body).
	owed        int
	owedMethods []string

	now      time.Time // capture time of the bytes being parsed
	retained int64     // raw body bytes held (queue and sides), counted in Config.Budget

	// unaligned: the client direction sent bytes that were no request
	// line. The server may have answered them (a 400, say) or not, so the
	// next responses may be theirs: requests are not paired until a
	// response has come since and the server has caught up (aligned).
	// respSince says whether a final response started since that may have
	// been theirs: one that no request sent before them waited for.
	unaligned, respSince bool
	unalignedSeq         uint64 // Conn.seq of those bytes

	// clientDone: the client sent a request whose framing a server may
	// read differently (RFC 9112 section 6.1, 6.3); what follows it is not
	// parsed, and pairing stops once its response is done.
	clientDone bool

	// tunnel is a CONNECT request waiting for its response: what the client
	// sends meanwhile is tunnel data (RFC 9110 section 9.3.6), not HTTP, and
	// is not parsed; tunnelBytes says whether any came.
	tunnel      *entry
	tunnelBytes bool

	seq    uint64 // counts Data calls: orders the two directions' bytes
	skip   bool   // TLS, HTTP/2 or upgraded: nothing more to parse
	closed bool

	ex     Exchange // what emit is handed, reused
	filter Filter   // nil: everything is kept
}

// NewConn returns a Conn that reports exchanges to emit. cfg may be nil
// (defaults); stats may be nil (counts are then discarded).
func NewConn(cfg *Config, stats *Stats, emit func(*Exchange)) *Conn {
	c := new(Conn)
	c.Reset(cfg, stats, emit)
	return c
}

// Reset makes c a new connection, keeping its buffers, so that Conns can be
// pooled.
func (c *Conn) Reset(cfg *Config, stats *Stats, emit func(*Exchange)) {
	var conf Config
	if cfg != nil {
		conf = *cfg
	}
	c.cfg = conf.withDefaults()
	if stats == nil {
		stats = new(Stats)
	}
	if emit == nil {
		emit = func(*Exchange) {}
	}
	c.stats, c.emit = stats, emit
	for i := range c.sides {
		d := &c.sides[i]
		d.fresh = true
		d.resync(true) // the start of the capture may be the middle of a message
	}
	clear(c.queue)
	c.queue = c.queue[:0]
	c.owed, c.owedMethods = 0, c.owedMethods[:0]
	c.client, c.seq = -1, 0
	c.unaligned, c.respSince = false, false
	c.clientDone = false
	c.tunnel, c.tunnelBytes = nil, false
	c.skip, c.closed = false, false
	c.filter = nil
}

// SetFilter makes f decide what becomes of each exchange from now on (nil:
// all are kept). Reset removes it.
func (c *Conn) SetFilter(f Filter) { c.filter = f }

// Start tells c that the next bytes of dir are the first of their stream
// (the reassembler saw its SYN): a message starts there, with any method,
// where a capture that joins mid-stream has to guess. It has effect only
// before dir's first bytes. It implements flow.Starter.
func (c *Conn) Start(dir int) {
	if c.skip || c.closed || dir&^1 != 0 {
		return
	}
	if d := &c.sides[dir]; d.fresh && d.sync && d.phase == phLine && len(d.part) == 0 {
		d.begin, d.lineStart = true, true
	}
}

// Skipping reports whether the connection stopped being HTTP/1 (TLS, HTTP/2,
// an upgrade or a CONNECT tunnel): the caller may stop feeding it bytes.
func (c *Conn) Skipping() bool { return c.skip }

// Data parses the next in-order bytes b of direction dir (0 or 1), captured
// at ts. b is only read during the call.
func (c *Conn) Data(dir int, b []byte, ts time.Time) {
	if c.skip || c.closed || dir&^1 != 0 || c.clientDone && dir == c.client {
		return
	}
	if c.tunnel != nil && dir == c.client {
		if slices.Contains(c.queue, c.tunnel) {
			c.tunnelBytes = true
			return
		}
		c.tunnel = nil // it left the queue (expired, dropped): parse again
	}
	c.now = ts
	c.seq++
	if d := &c.sides[dir]; d.sync && len(d.part) == 0 {
		// A segment usually begins where a write began, so the start of each
		// piece is tried as a message start too (with strict validation).
		d.lineStart = true
	}
	for len(b) > 0 && !c.skip && !(c.clientDone && dir == c.client) {
		if c.tunnel != nil && dir == c.client {
			c.tunnelBytes = true // after a CONNECT head in the same piece
			break
		}
		n := c.step(dir, b, ts)
		b = b[n:]
	}
}

// step parses the start of b and returns how many bytes it used. It uses at
// least one byte, except when it abandons a message, after which the next
// step resynchronises.
func (c *Conn) step(dir int, b []byte, ts time.Time) int {
	d := &c.sides[dir]
	switch d.phase {
	case phLine:
		return c.readStartLine(dir, b, ts)
	case phFields:
		return c.readField(dir, b, ts)
	case phBody, phChunkData:
		n := len(b)
		if int64(n) > d.remain {
			n = int(d.remain)
		}
		c.keep(d, b[:n])
		d.remain -= int64(n)
		if d.remain == 0 {
			if d.phase == phBody {
				c.finish(dir)
			} else {
				d.phase, d.sawCR = phChunkEnd, false
			}
		}
		return n
	case phChunkEnd:
		switch {
		case b[0] == '\r' && !d.sawCR:
			d.sawCR = true
		case b[0] == '\n':
			d.phase = phChunkSize
		default:
			c.garbage(dir, false)
			return 0
		}
		return 1
	case phChunkSize:
		line, n, done, long := d.takeLine(b, maxChunkLineLen)
		if long {
			c.garbage(dir, done)
			return n
		}
		if !done {
			return n
		}
		size, ok := parseChunkSize(trimCR(line))
		d.part = d.part[:0]
		switch {
		case !ok:
			c.garbage(dir, true)
		case size == 0:
			d.phase, d.headBytes = phTrailer, 0
		default:
			d.phase, d.remain = phChunkData, size
		}
		return n
	case phTrailer:
		line, n, done, long := d.takeLine(b, c.cfg.MaxHeaderBytes-d.headBytes)
		if long {
			c.garbage(dir, done)
			return n
		}
		if !done {
			return n
		}
		d.headBytes += len(line) + 1
		d.part = d.part[:0]
		if len(trimCR(line)) == 0 {
			c.finish(dir)
		}
		return n
	case phClose:
		c.keep(d, b)
		return len(b)
	case phPeek:
		return c.peek(dir, b, ts)
	}
	return len(b)
}

// takeLine returns the next line of b without its LF, and how many bytes of
// b it used. A line split over several calls is gathered in d.part; the
// caller empties d.part once it is done with a returned line. A line longer
// than room bytes is not gathered: long is set, and done says whether its
// end was reached.
func (d *side) takeLine(b []byte, room int) (line []byte, n int, done, long bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		if len(d.part)+len(b) > room {
			d.part = d.part[:0]
			return nil, len(b), false, true
		}
		d.part = append(d.part, b...)
		return nil, len(b), false, false
	}
	if len(d.part)+i > room {
		d.part = d.part[:0]
		return nil, i + 1, true, true
	}
	if len(d.part) == 0 {
		return b[:i], i + 1, true, false // in place: no copy
	}
	d.part = append(d.part, b[:i]...)
	return d.part, i + 1, true, false
}

// roles says which kinds of message dir may carry.
func (c *Conn) roles(dir int) (req, resp bool) {
	if c.client < 0 {
		return true, true
	}
	return c.client == dir, c.client != dir
}

func (c *Conn) readStartLine(dir int, b []byte, ts time.Time) int {
	d := &c.sides[dir]
	if len(d.part) == 0 {
		if d.sync && !d.lineStart {
			// Resynchronising in the middle of a line: skip to the next one.
			c.discarded(dir)
			i := bytes.IndexByte(b, '\n')
			if i < 0 {
				return len(b)
			}
			d.lineStart = true
			return i + 1
		}
		d.start, d.startSeq = ts, c.seq
	}
	if d.fresh {
		// A TLS record (handshake, or application data when the capture
		// started late) is recognised by its first two bytes.
		b0, b1, n := firstTwo(d.part, b)
		if b0 == 0x16 || b0 == 0x17 {
			if n == 1 {
				d.part = append(d.part, b[0])
				return 1
			}
			if b1 == 0x03 {
				c.skipConn(&c.stats.SkippedTLS)
				return len(b)
			}
		}
	}
	line, n, done, long := d.takeLine(b, c.cfg.MaxHeaderBytes)
	if long {
		c.rejectLine(dir, done)
		return n
	}
	if !done {
		req, resp := c.roles(dir)
		if !plausiblePrefix(d.part, req, resp, d.sync && !d.begin) {
			c.rejectLine(dir, false)
		}
		return n
	}
	c.startLine(dir, line)
	return n
}

// firstTwo returns the first two bytes of part followed by b, and how many
// of them exist (0, 1 or 2).
func firstTwo(part, b []byte) (b0, b1 byte, n int) {
	for _, p := range [2][]byte{part, b} {
		for _, x := range p {
			if n == 0 {
				b0 = x
			} else {
				return b0, x, 2
			}
			n++
		}
	}
	return b0, 0, n
}

// startLine handles a complete line where a message may start. line may
// alias d.part; it is not used after d.part is emptied.
func (c *Conn) startLine(dir int, line []byte) {
	d := &c.sides[dir]
	l := trimCR(line)
	hadCR := len(l) < len(line)
	// Where a message start is only a guess (the start of the capture, which
	// is rarely the start of the connection, or after a loss) be picky: the
	// tail of a lost "GET /x HTTP/1.1" line must not pass as method "ET".
	strict := d.sync && !d.begin
	d.fresh = false
	req, resp := c.roles(dir)
	if len(l) == 0 {
		// Empty lines before a message are allowed (RFC 9112 section 2.2).
		d.part = d.part[:0]
		d.lineStart = true
		return
	}
	// At a stream's start, the first line is the only one known to start
	// a message. If it does not, the stream is not HTTP/1 (or not from its
	// start): it is searched quietly, as a capture joined mid-stream is.
	d.begin = false
	if req && bytes.Equal(l, h2Preface) {
		c.skipConn(&c.stats.SkippedHTTP2)
		return
	}
	var m *Message
	if !strict || hadCR {
		if req {
			if method, target, proto, ok := parseRequestLine(l, strict); ok {
				m = newRequest(method, target, proto)
				d.isReq = true
			}
		}
		if m == nil && resp {
			if proto, status, code, ok := parseStatusLine(l, strict); ok {
				m = newMessage()
				m.Proto, m.StatusCode, m.Status = protoString(proto, m), code, m.text(status)
				d.isReq = false
			}
		}
	}
	if m == nil && req && !strict {
		if method, target, proto, ok := refusedRequestLine(l); ok {
			// A request line a server refuses ("GET /a b HTTP/1.1"): a
			// request all the same, which the server answers.
			d.msg = newRequest(method, target, proto)
			d.msg.Time = d.start
			d.isReq, d.tentative = true, false
			d.part = d.part[:0]
			c.garbage(dir, true)
			return
		}
	}
	if m == nil {
		c.rejectLine(dir, true)
		return
	}
	m.Time = d.start
	d.msg = m
	d.body = m.raw[:0]
	d.tentative = strict
	d.sync = false
	d.phase = phFields
	d.headBytes = len(line) + 1
	d.part = d.part[:0]
}

// rejectLine handles a line that cannot start a message. While resyncing
// that is expected; otherwise it is garbage.
func (c *Conn) rejectLine(dir int, lineEnded bool) {
	d := &c.sides[dir]
	d.fresh, d.begin = false, false
	if !d.sync {
		c.garbage(dir, lineEnded)
		return
	}
	d.part = d.part[:0]
	d.lineStart = lineEnded
	c.discarded(dir)
}

// discarded is called when a resynchronising direction throws bytes away.
// If that is the server direction and requests are waiting, the bytes may
// have held the response of one of them (one this parser could not read):
// which response answers which request is no longer certain.
func (c *Conn) discarded(dir int) {
	if len(c.queue) > 0 && c.client >= 0 && dir != c.client {
		c.dropQueue(&c.stats.RequestsDroppedDesync)
	}
}

func (c *Conn) readField(dir int, b []byte, ts time.Time) int {
	d := &c.sides[dir]
	line, n, done, long := d.takeLine(b, c.cfg.MaxHeaderBytes-d.headBytes)
	if long {
		c.badHead(dir, done)
		return n
	}
	if !done {
		return n
	}
	d.headBytes += len(line) + 1
	l := trimCR(line)
	switch {
	case len(l) == 0:
		d.part = d.part[:0]
		c.endOfHead(dir)
	case isOWS(l[0]) && len(d.msg.Headers) > 0:
		// Obsolete line folding (RFC 9112 section 5.2): the line continues
		// the previous field's value.
		h := &d.msg.Headers[len(d.msg.Headers)-1]
		if isFramingField(h.Name) || !validValue(l) {
			// A server that rejects obs-fold (RFC 9112 section 5.2 allows
			// either) would frame this message differently.
			c.badHead(dir, true)
			return n
		}
		if v := bytes.Trim(l, " \t"); len(v) > 0 {
			if h.Value == "" {
				h.Value = string(v)
			} else {
				h.Value += " " + string(v)
			}
		}
		d.part = d.part[:0]
	default:
		h, ok := parseField(l, d.msg)
		if !ok {
			c.badHead(dir, true)
			// The offending line may be where the next message really
			// starts (a message that lost its end), so try it as such.
			d.start, d.startSeq = ts, c.seq
			c.startLine(dir, line)
			return n
		}
		d.msg.Headers = append(d.msg.Headers, h)
		d.part = d.part[:0]
	}
	return n
}

// badHead abandons a head that cannot be parsed. A head found by resync is
// abandoned silently: its start line was only a guess.
func (c *Conn) badHead(dir int, lineEnded bool) {
	d := &c.sides[dir]
	if d.tentative {
		d.resync(lineEnded)
		c.discarded(dir)
		return
	}
	c.garbage(dir, lineEnded)
}

// garbage counts a direction that stopped making sense and makes it resync.
// lineEnded says whether the next byte begins a line.
func (c *Conn) garbage(dir int, lineEnded bool) {
	d := &c.sides[dir]
	c.stats.Garbage.Add(1)
	c.stats.Resyncs.Add(1)
	switch {
	case d.isReq && d.entry != nil:
		c.abandon(d.entry)
	case c.client >= 0 && dir != c.client:
		// Once the server direction is lost, how many responses went by is
		// unknown: no queued request can be paired safely any more.
		c.dropQueue(&c.stats.RequestsDroppedDesync)
	case d.isReq && d.msg != nil:
		// A request whose start line was read but whose head is refused
		// (a bad field name or length, an unknown transfer coding, a head
		// too big). The server refuses it too and still answers it,
		// usually with a 400: it keeps its place in the queue so that this
		// answer does not go to the next request, and is never published.
		c.stats.RejectedRequests.Add(1)
		e := newEntry(d.msg, d.startSeq)
		e.dead = true
		c.push(e)
		if c.client < 0 {
			c.client = dir // the first request of a stream seen from its start
		}
	case c.client >= 0 && dir == c.client:
		// Client bytes that are no request at all: how many answers they
		// get (none, a 400, ...) is unknown.
		c.unaligned, c.respSince, c.unalignedSeq = true, false, c.seq
	}
	d.resync(lineEnded)
}

// endOfHead is called after the empty line that ends a head.
func (c *Conn) endOfHead(dir int) {
	d := &c.sides[dir]
	req, resp := c.roles(dir)
	f := framingOf(d.msg.Headers)
	bad := d.isReq && !req || !d.isReq && !resp || f.badCL && !f.hasTE ||
		d.isReq && f.hasTE && !f.chunked // a request body must end with chunked (RFC 9112 6.3)
	if bad {
		c.badHead(dir, true)
		return
	}
	// Transfer-Encoding in HTTP/1.0 makes the framing faulty (RFC 9112
	// section 6.1); with Content-Length, chunked wins but a server that
	// reads the length sees other messages after it (section 6.3): either
	// way the connection must end after the message.
	te10 := f.hasTE && d.msg.Proto == "HTTP/1.0"
	ambiguous := te10 || f.hasTE && f.hasCL
	if ambiguous && d.tentative {
		c.badHead(dir, true) // only a guess: not worth ending the connection for
		return
	}
	d.tentative = false
	if ambiguous {
		c.stats.AmbiguousFraming.Add(1)
		switch {
		case d.isReq && te10:
			c.garbage(dir, true) // refused, its slot kept: see garbage
			c.queue[len(c.queue)-1].last = true
			c.clientDone = true
			return
		case d.isReq:
			// Read as chunked; the entry stops the connection.
			defer func() {
				if d.entry != nil {
					d.entry.last = true
				}
			}()
		case te10:
			c.stopPairing()
			return
		default:
			d.last = true
		}
	}
	if c.client < 0 {
		c.client = dir
		if !d.isReq {
			c.client = 1 - dir
		}
	}
	d.enc = f.enc
	if d.isReq {
		c.requestHead(dir, f)
	} else {
		c.responseHead(dir, f)
	}
}

func (c *Conn) requestHead(dir int, f framing) {
	d := &c.sides[dir]
	e := newEntry(d.msg, d.startSeq)
	if c.unaligned && !c.aligned() {
		// It may be this request's response, or one to the unreadable
		// bytes before it, that comes next: its slot takes whichever
		// comes, and nothing is published for it.
		e.dead = true
		c.stats.RequestsDroppedUnaligned.Add(1)
	}
	c.push(e)
	d.entry = e
	switch {
	case e.dead:
		d.omit = true // never emitted: its body is of no use
	case c.filter != nil:
		d.apply(e, c.filter.Request(c.client, e.req))
	}
	switch {
	case e.req.Method == "CONNECT" && !e.dead:
		// No body, whatever the fields say: what follows the head is
		// tunnel data, once the server agrees.
		c.tunnel, c.tunnelBytes = e, false
		c.finish(dir)
	case f.chunked:
		d.phase = phChunkSize
	case f.cl > 0:
		c.startBody(d, f.cl)
	default:
		c.finish(dir)
	}
}

// apply makes the message being read on d follow the Filter's verdict on
// its exchange e.
func (d *side) apply(e *entry, v Verdict) {
	switch v {
	case KeepHead:
		d.omit = true
	case Drop:
		e.drop, d.omit = true, true
	}
}

func (c *Conn) responseHead(dir int, f framing) {
	d := &c.sides[dir]
	code := d.msg.StatusCode
	if code < 200 && code != 101 {
		// Interim response (100 Continue, 103 Early Hints): no body, and the
		// final response is still to come for the same request.
		d.next()
		return
	}
	e, method, known := c.bindResponse(d.startSeq)
	d.entry = e
	if e != nil && e == c.tunnel && (code < 200 || code > 299) {
		// Tunnel refused: the client's bytes are HTTP again. Those sent
		// meanwhile were not parsed and may be answered.
		c.tunnel = nil
		if c.tunnelBytes {
			c.sides[c.client].resync(false)
			c.unaligned, c.respSince, c.unalignedSeq = true, false, c.seq
		}
	}
	if c.unaligned && (e == nil && !known || e != nil && e.dead && e.seq > c.unalignedSeq) {
		c.respSince = true
	}
	switch {
	case e == nil || e.dead || e.drop:
		d.omit = true // never emitted: its body is of no use
	case c.filter != nil:
		d.apply(e, c.filter.Response(e.req, d.msg))
	}
	switch {
	case code == 101 || method == "CONNECT" && code/100 == 2:
		// The connection now carries another protocol (or a tunnel).
		c.finish(dir)
		c.skipConn(&c.stats.Upgrades)
	case method == "HEAD" || code == 204 || code == 304:
		c.finish(dir)
	case !known && (f.hasTE || !f.hasCL || f.cl > 0):
		// Whether this response has a body depends on its request's method
		// (HEAD), which is unknown. A wrong guess would take the next
		// response for a body, or a body for the next response, and shift
		// every later pair: look at what follows first.
		d.phase, d.framing = phPeek, f
	default:
		c.frameBody(dir, f)
	}
}

// frameBody starts reading a response body framed by its header fields.
func (c *Conn) frameBody(dir int, f framing) {
	d := &c.sides[dir]
	switch {
	case f.hasTE:
		if f.chunked {
			d.phase = phChunkSize
		} else {
			d.phase = phClose // RFC 9112 6.3: not chunked means read until close
		}
	case f.hasCL:
		if f.cl > 0 {
			c.startBody(d, f.cl)
		} else {
			c.finish(dir)
		}
	default:
		d.phase = phClose
	}
}

// peekLen is how much of what follows an orphan's head decides whether it
// had a body: "HTTP/1.x " starts the next response (the orphan answered a
// HEAD); a body starting so is not worth worrying about.
const peekLen = len("HTTP/1.x ")

// peek gathers the bytes after the head of a response of unknown method and,
// once they decide, replays them as body or as the next message.
func (c *Conn) peek(dir int, b []byte, ts time.Time) int {
	d := &c.sides[dir]
	if len(d.part) == 0 {
		d.peekTime, d.peekSeq = ts, c.seq
	}
	n := min(peekLen-len(d.part), len(b))
	d.part = append(d.part, b[:n]...)
	next := statusPrefix(d.part)
	if next && len(d.part) < peekLen {
		return n // undecided
	}
	var buf [peekLen]byte
	p := buf[:copy(buf[:], d.part)]
	d.part = d.part[:0]
	seq, start, startSeq := c.seq, d.peekTime, d.peekSeq
	if next {
		c.finish(dir)    // no body: what follows is the next response,
		c.seq = startSeq // which started when the peeked bytes arrived
	} else {
		c.frameBody(dir, d.framing)
	}
	for len(p) > 0 && !c.skip {
		p = p[c.step(dir, p, start):]
	}
	c.seq = seq
	return n
}

// startBody prepares a Content-Length body. No room is made ahead for the
// length the head claims: keep grows the body (the message's own buffer,
// perhaps recycled) as bytes arrive, so a connection that announces a body
// and sends little of it (a slow client, a flood of them) holds only what
// it sent, as the Budget counts it.
func (c *Conn) startBody(d *side, n int64) {
	d.phase, d.remain = phBody, n
}

// aligned reports whether the queue is known to match the server's
// responses again after unreadable client bytes, and if so forgets them:
// the server has answered since (a response started after them), it is
// between responses, and every queued request has its response. A client
// that waits for each response, as nearly all do, is aligned again at its
// next request but one; a second answer to the same unreadable bytes is
// the case this cannot see.
func (c *Conn) aligned() bool {
	if !c.respSince || c.client < 0 {
		return false
	}
	if s := &c.sides[1-c.client]; s.phase != phLine || len(s.part) > 0 || s.sync {
		return false
	}
	for _, e := range c.queue {
		if !e.answered {
			return false
		}
	}
	c.unaligned = false
	return true
}

// bindResponse finds what a response starting at seq answers: a queued
// request (e), a request that already left the queue (e nil, its method
// known), or nothing known (counted as an orphan).
func (c *Conn) bindResponse(seq uint64) (e *entry, method string, known bool) {
	if c.owed > 0 {
		c.owed--
		c.stats.LateResponses.Add(1)
		if len(c.owedMethods) == 0 {
			return nil, "", false
		}
		method = c.owedMethods[0]
		c.owedMethods = c.owedMethods[1:]
		return nil, method, true
	}
	for _, e := range c.queue {
		if e.answered {
			continue
		}
		// A response cannot start before its request did: this one answers
		// a request that was never seen.
		if e.seq < seq {
			e.answered = true
			return e, e.req.Method, true
		}
		break
	}
	c.stats.OrphanResponses.Add(1)
	return nil, "", false
}

// owe records that a request left the queue before its response came. The
// count stays exact whatever happens (losing it would shift every later
// pair); the methods are kept only while they are a prefix of the owed
// requests and few enough.
func (c *Conn) owe(e *entry) {
	if len(c.owedMethods) == c.owed && c.owed < c.cfg.MaxPending {
		c.owedMethods = append(c.owedMethods, e.req.Method)
	}
	c.owed++
}

// keep appends body bytes, copying them, up to MaxBodyBytes.
func (c *Conn) keep(d *side, p []byte) {
	if d.omit {
		d.omitted = d.omitted || len(p) > 0
		return
	}
	if room := c.cfg.MaxBodyBytes - len(d.body); len(p) > room {
		p = p[:room]
		d.cut = true
	}
	if b := c.cfg.Budget; b != nil && len(p) > 0 {
		got := b.take(int64(len(p)))
		if got < int64(len(p)) {
			p = p[:got]
			if !d.cut {
				c.stats.BodyBudgetCuts.Add(1)
			}
			d.cut = true
		}
		d.reserved += got
		c.retained += got
	}
	if need := len(d.body) + len(p); need > cap(d.body) {
		// Double, as far as MaxBodyBytes: append alone grows large slices
		// by a quarter, a copy each time.
		d.body = slices.Grow(d.body, min(max(need, 2*cap(d.body)), c.cfg.MaxBodyBytes)-len(d.body))
	}
	d.body = append(d.body, p...)
}

// settle makes the budget agree with what the connection really holds:
// bodies in queued messages and in messages being parsed. Bodies that
// left (emitted, dropped, abandoned at a resync) are given back here, in
// one place, whichever way they left.
func (c *Conn) settle() {
	b := c.cfg.Budget
	if b == nil {
		return
	}
	var n int64
	for _, e := range c.queue {
		n += e.req.reserved
		if e.resp != nil {
			n += e.resp.reserved
		}
	}
	for i := range c.sides {
		n += c.sides[i].reserved
		if m := c.sides[i].msg; m != nil {
			n += m.reserved
		}
	}
	b.give(c.retained - n)
	c.retained = n
}

// finish completes the message of dir: decodes the body and pairs.
func (c *Conn) finish(dir int) {
	d := &c.sides[dir]
	m, e, isReq, last := d.msg, d.entry, d.isReq, d.last
	m.raw = d.body // the buffer, grown, goes back to the pool with m
	m.Body, m.BodyTruncated = c.decodedBody(d, m)
	m.BodyOmitted = d.omitted
	m.End = c.now
	m.reserved = d.reserved
	d.next()
	if isReq {
		if e != nil && e.last {
			c.clientDone = true // bytes after it are what servers disagree on
		}
		c.requestDone(e)
	} else {
		last = last || e != nil && e.last // read first: responseDone may recycle e
		c.responseDone(e, m)
		if last {
			c.stopPairing()
		}
	}
}

// stopPairing ends the parsing of a connection whose framing servers and
// clients may read differently: no later pair could be trusted.
func (c *Conn) stopPairing() {
	if c.skip {
		return
	}
	c.dropQueue(&c.stats.RequestsDroppedDesync)
	c.skip = true
	c.release()
}

// decodedBody turns the raw body of d into what Message.Body holds.
func (c *Conn) decodedBody(d *side, m *Message) ([]byte, bool) {
	body, trunc := d.body, d.cut
	if trunc {
		c.stats.BodyTruncated.Add(1)
	}
	if len(body) > 0 && c.cfg.Decompress && (d.enc == encGzip || d.enc == encFlate) {
		out, cut, err := decodeBody(m.dec[:0], &m.rd, d.enc, body, c.cfg.MaxBodyBytes)
		m.dec = out
		if err != nil || d.cut {
			c.stats.DecodeErrors.Add(1)
			trunc = true
		}
		if cut {
			c.stats.BodyTruncated.Add(1)
			trunc = true
		}
		body = out
	}
	if trunc {
		body = trimPartialRune(body)
	}
	if len(body) == 0 {
		return nil, trunc
	}
	if !utf8.Valid(body) {
		// The analyzer reads bodies as text: binary content is of no use to
		// it and would only inflate the record.
		c.stats.BinaryBodies.Add(1)
		return nil, trunc
	}
	return body, trunc
}

func (c *Conn) requestDone(e *entry) {
	e.done = true
	e.doneAt = c.now
	if e.resp != nil && c.remove(e) {
		c.emitPair(e)
	}
}

func (c *Conn) responseDone(e *entry, m *Message) {
	if e == nil {
		return // orphan, already counted
	}
	if e.dead {
		c.remove(e)
		c.stats.OrphanResponses.Add(1)
		return
	}
	e.resp = m
	if e.done && c.remove(e) {
		c.emitPair(e)
	}
	// Otherwise the request body is still arriving (an early response):
	// the pair is emitted when it is complete.
}

func (c *Conn) emitPair(e *entry) {
	c.stats.Pairs.Add(1)
	if !e.drop {
		c.ex = Exchange{ClientDir: c.client, Request: e.req, Response: e.resp}
		c.emit(&c.ex)
		c.ex = Exchange{}
	}
	c.settle()
	// e has left the queue and both sides are past its messages: nothing
	// refers to them any more.
	if c.tunnel == e {
		c.tunnel = nil
	}
	recycle(e.req)
	recycle(e.resp)
	recycleEntry(e)
}

// pending emits or drops a request that will get no response.
func (c *Conn) pending(e *entry) {
	if e.drop {
		c.settle()
		return
	}
	if c.cfg.EmitPending {
		c.stats.PendingEmitted.Add(1)
		c.ex = Exchange{ClientDir: c.client, Request: e.req}
		c.emit(&c.ex)
		c.ex = Exchange{}
	} else {
		c.stats.PendingDropped.Add(1)
	}
	c.settle()
}

// push queues a request, making room first if the queue is full.
func (c *Conn) push(e *entry) {
	if len(c.queue) >= c.cfg.MaxPending {
		for i, old := range c.queue {
			if old.answered {
				continue // its response is being read
			}
			c.removeAt(i)
			c.stats.QueueOverflow.Add(1)
			c.flushEntry(old)
			c.owe(old) // its response will still come, and must not pair with a later request
			break
		}
	}
	c.queue = append(c.queue, e)
}

// flushEntry disposes of a request that leaves the queue without response.
func (c *Conn) flushEntry(e *entry) {
	switch {
	case e.dead:
	case e.done:
		c.pending(e)
	default:
		c.stats.Incomplete.Add(1)
	}
}

// abandon gives up a request whose body cannot be completed. Its place in
// the queue stays until its response comes, unless that already happened.
func (c *Conn) abandon(e *entry) {
	e.dead = true
	if e.resp != nil {
		c.remove(e)
	}
}

func (c *Conn) remove(e *entry) bool {
	for i, q := range c.queue {
		if q == e {
			c.removeAt(i)
			return true
		}
	}
	return false
}

func (c *Conn) removeAt(i int) {
	copy(c.queue[i:], c.queue[i+1:])
	c.queue[len(c.queue)-1] = nil
	c.queue = c.queue[:len(c.queue)-1]
}

// dropQueue forgets every queued request, counting those that were real.
func (c *Conn) dropQueue(counter *atomic.Uint64) {
	n := 0
	for _, e := range c.queue {
		if !e.dead {
			n++
		}
	}
	counter.Add(uint64(n))
	clear(c.queue)
	c.queue = c.queue[:0]
	c.owed, c.owedMethods = 0, c.owedMethods[:0]
}

// skipConn stops parsing the connection for good.
func (c *Conn) skipConn(counter *atomic.Uint64) {
	counter.Add(1)
	c.skip = true
	for _, e := range c.queue {
		c.flushEntry(e)
	}
	c.release()
}

// release lets go of everything the connection holds but its small
// buffers, which Reset reuses.
func (c *Conn) release() {
	clear(c.queue)
	c.queue = c.queue[:0]
	c.owed, c.owedMethods = 0, c.owedMethods[:0]
	for i := range c.sides {
		c.sides[i].next()
	}
	c.settle()
}

// Gap reports that n bytes (-1: unknown; 0 is ignored) of direction dir were lost. Every
// message in progress is abandoned, the queue is dropped and both directions
// resynchronise: after a loss, which response answers which request is no
// longer known.
func (c *Conn) Gap(dir int, n int, ts time.Time) {
	if c.skip || c.closed || dir&^1 != 0 || n == 0 {
		return
	}
	c.dropQueue(&c.stats.RequestsDroppedGap)
	c.tunnel = nil
	for i := range c.sides {
		d := &c.sides[i]
		// What follows the gap may start a message; nothing says it does not.
		d.resync(true)
		c.stats.Resyncs.Add(1)
	}
}

// End reports a FIN in direction dir: it completes a close-delimited body;
// any other message in progress in that direction is discarded.
func (c *Conn) End(dir int, ts time.Time) {
	if c.skip || c.closed || dir&^1 != 0 {
		return
	}
	c.now = ts
	d := &c.sides[dir]
	switch {
	case d.phase == phClose, d.phase == phPeek:
		c.finish(dir)
	case d.phase == phLine, d.tentative:
		// Nothing started, or only a guess.
	default:
		c.stats.Incomplete.Add(1)
		if d.entry != nil {
			if d.isReq {
				c.abandon(d.entry)
			} else {
				// The request stays unanswered: pending, in time.
				d.entry.answered = false
			}
		}
	}
	d.resync(true)
}

// Close ends the connection: close-delimited bodies complete, requests
// without a response are emitted or dropped as pending (in order), requests
// cut short are counted. The Conn does nothing more until Reset.
func (c *Conn) Close(ts time.Time) {
	if c.closed {
		return
	}
	if !c.skip {
		// Server first, so that its close-delimited response can still pair
		// with a request that is complete.
		server := 1
		if c.client == 1 {
			server = 0
		}
		c.End(server, ts)
		c.End(1-server, ts)
		for _, e := range c.queue {
			c.flushEntry(e)
		}
	}
	c.release()
	c.closed = true
}

// Expire emits (or drops) the requests that have waited for a response
// longer than PendingTimeout at capture time now, oldest first.
func (c *Conn) Expire(now time.Time) {
	if c.skip || c.closed {
		return
	}
	defer c.settle()
	for len(c.queue) > 0 {
		e := c.queue[0]
		// A response is due once the request is complete: a slow upload
		// is not late while it is still arriving.
		if e.answered || !e.done && !e.dead || e.done && now.Sub(e.doneAt) < c.cfg.PendingTimeout || !e.done && now.Sub(e.req.Time) < c.cfg.PendingTimeout {
			return
		}
		c.removeAt(0)
		if !e.dead {
			c.pending(e)
		}
		c.owe(e) // its response may still come: it must not pair with the next request
	}
}
