package flow

import (
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// segBufSize holds the largest segment a mirror delivers (8500 bytes after
// the VXLAN header) with room to spare; smallBufSize holds a segment of a
// standard 1500-byte MTU. Buffers count against the caps by their capacity,
// the memory they really pin.
const (
	segBufSize   = 9216
	smallBufSize = 2048
)

// worker owns a share of the connections. It is used by one goroutine.
type worker struct {
	cfg        *Config
	stats      *Stats
	newHandler NewHandler
	conns      map[key]*conn
	list       []*conn // the same connections, for sweeping in parts
	cursor     int     // where the next sweep starts in list
	oldest     *conn   // least recently seen connection (evicted first)
	newest     *conn   // most recently seen connection
	heap       heapWatch
	maxConns   int
	maxBuf     int64 // out-of-order bytes this worker may hold
	buffered   int64
	free       [][]byte // segment buffers of segBufSize ready for reuse
	freeSmall  [][]byte // and of smallBufSize
	clock      time.Time
	lastSweep  time.Time
}

func newWorker(cfg *Config, stats *Stats, nh NewHandler, share int) *worker {
	return &worker{
		cfg:        cfg,
		stats:      stats,
		newHandler: nh,
		conns:      make(map[key]*conn),
		maxConns:   max(1, cfg.MaxConns/share),
		maxBuf:     max(int64(segBufSize), cfg.MaxBufferBytes/int64(share)),
	}
}

// packet feeds one decoded segment captured at ts.
func (w *worker) packet(p *decode.Packet, ts time.Time) {
	w.stats.Packets.Add(1)
	w.stats.PayloadBytes.Add(uint64(len(p.Payload)))
	w.advance(ts)
	k := makeKey(p)
	c := w.conns[k]
	if c != nil && p.Flags&(decode.SYN|decode.ACK) == decode.SYN && w.isNewSYN(c, p) {
		// The 4-tuple was reused for a new connection before we saw the old
		// one end (lost FIN, short TIME_WAIT).
		w.stats.ConnsReused.Add(1)
		w.close(k, c, ts)
		c = nil
	}
	if c == nil {
		if p.Flags&decode.RST != 0 {
			return
		}
		if len(p.Payload)+p.Missing == 0 && p.Flags&(decode.SYN|decode.FIN) == 0 {
			// A bare ACK (the last one of a closed connection, a keep-alive)
			// has nothing to reassemble: a connection opened for it would
			// only hold a table slot until it expires.
			return
		}
		if !w.admit(ts) {
			return
		}
		c = &conn{key: k, idx: len(w.list), flipped: p.Src != k.lo || p.SrcPort != k.lp}
		w.conns[k] = c
		w.list = append(w.list, c)
		w.stats.opened()
	}
	c.lastSeen = ts.UnixNano()
	w.touch(c)
	dir := c.dirOf(p.Src, p.SrcPort)
	if p.Flags&decode.RST != 0 {
		w.stats.ConnsClosedRST.Add(1)
		w.close(k, c, ts)
		return
	}
	d := &c.dirs[dir]
	if p.Flags&decode.SYN != 0 {
		// A retransmitted SYN must not rewind a stream that has moved on.
		if !d.synSeen {
			d.synSeen, d.isn = true, p.Seq
			d.start(p.Seq + 1)
			d.atStart = !d.begun
		}
		// A SYN-ACK names the other side's first byte: enough to start it
		// when its SYN was lost or is late.
		if o := &c.dirs[1-dir]; p.Flags&decode.ACK != 0 && !o.started {
			o.start(p.Ack)
			o.atStart = true
		}
		return
	}
	n := len(p.Payload) + p.Missing
	if c.h == nil && (n > 0 || p.Flags&decode.FIN != 0) {
		c.h = w.newHandler(c.id())
	}
	if n > 0 {
		if !d.started {
			// First seen mid-stream: the parser finds the next message start.
			d.start(p.Seq)
		}
		w.segment(c, dir, p.Seq, p.Payload, p.Missing, p.Ack, p.Flags&decode.ACK != 0, ts)
	}
	if p.Flags&decode.FIN != 0 && !d.finSeen {
		d.finSeen = true
		d.finSeq = p.Seq + uint32(n)
		d.finTs = ts.UnixNano()
		if !d.started {
			d.start(d.finSeq)
		}
	}
	if len(d.ooo) > 0 && ts.Sub(d.ooo[0].ts) > w.cfg.ReorderWindow {
		w.forceGap(c, dir, ts)
	}
	w.releaseHeld(c, 0, ts)
	w.releaseHeld(c, 1, ts)
	// Content released for the other direction may complete its FIN too.
	if !w.finish(k, c, dir, ts) {
		w.finish(k, c, 1-dir, ts)
	}
}

// finish delivers End once dir's data up to its FIN is through, declaring
// lost what is still missing before the FIN once the reorder window has
// passed, and closes c when both directions have ended. It reports whether
// c was closed.
func (w *worker) finish(k key, c *conn, dir int, ts time.Time) bool {
	d := &c.dirs[dir]
	if !d.finSeen || d.ended || len(d.ooo) > 0 {
		return false
	}
	if n := seqDiff(d.finSeq, d.next); n > 0 {
		if ts.UnixNano()-d.finTs <= int64(w.cfg.ReorderWindow) {
			return false
		}
		w.skipTo(c, dir, d.finSeq, int(n), ts)
	}
	if len(d.held) > 0 {
		return false
	}
	d.ended = true
	if !c.skipping && c.h != nil {
		c.h.End(dir, ts)
	}
	if c.dirs[1-dir].ended {
		w.stats.ConnsClosedFIN.Add(1)
		w.close(k, c, ts)
		return true
	}
	return false
}

// isNewSYN tells a SYN that opens a new connection on c's 4-tuple from a
// retransmission of the SYN that opened c.
func (w *worker) isNewSYN(c *conn, p *decode.Packet) bool {
	d := &c.dirs[c.dirOf(p.Src, p.SrcPort)]
	if d.synSeen {
		return p.Seq != d.isn
	}
	return d.started && d.next != p.Seq+1
}

// segment places payload (and missing bytes cut from its end) at seq.
func (w *worker) segment(c *conn, dir int, seq uint32, payload []byte, missing int, ack uint32, hasAck bool, ts time.Time) {
	d := &c.dirs[dir]
	diff := seqDiff(seq, d.next)
	if diff < 0 {
		skip := int(-int64(diff))
		if skip >= len(payload)+missing {
			w.stats.Duplicates.Add(1)
			return
		}
		if skip >= len(payload) {
			missing -= skip - len(payload)
			payload = nil
		} else {
			payload = payload[skip:]
		}
		diff = 0
	}
	if diff == 0 {
		w.deliver(c, dir, payload, missing, ack, hasAck, ts)
		w.drain(c, dir, ts)
		return
	}
	if int64(diff) > int64(w.cfg.MaxConnBufferBytes)*4 {
		// Far beyond anything we could buffer: the hole is lost for sure.
		w.flushHoles(c, dir, ts)
		if seqDiff(seq, d.next) <= 0 {
			// The buffered segments reached into this one.
			w.segment(c, dir, seq, payload, missing, ack, hasAck, ts)
			return
		}
		w.skipTo(c, dir, seq, -1, ts)
		w.deliver(c, dir, payload, missing, ack, hasAck, ts)
		return
	}
	w.stats.OutOfOrder.Add(1)
	if len(payload) == 0 {
		return // only missing bytes ahead of a hole: the hole will be declared anyway
	}
	room := w.makeRoom(c, dir, bufCap(len(payload)), ts)
	if seqDiff(seq, d.next) <= 0 {
		// Making room declared the hole and the stream caught up.
		w.segment(c, dir, seq, payload, missing, ack, hasAck, ts)
		return
	}
	if !room {
		// It cannot be buffered (nothing is buffered for c any more): give
		// up on the hole before it rather than on the bytes in hand.
		w.skipTo(c, dir, seq, int(seqDiff(seq, d.next)), ts)
		w.deliver(c, dir, payload, missing, ack, hasAck, ts)
		return
	}
	w.insert(d, segment{seq: seq, missing: missing, ack: ack, hasAck: hasAck, ts: ts}, payload)
}

// makeRoom frees space for a buffer of capacity n for c's direction dir,
// first by giving up on c's own holes, then on other connections' holes.
func (w *worker) makeRoom(c *conn, dir, n int, ts time.Time) bool {
	busy := c.busy
	c.busy = true
	defer func() { c.busy = busy }()
	for c.bufferedBytes()+n > w.cfg.MaxConnBufferBytes || w.buffered+int64(n) > w.maxBuf {
		w.stats.BufferOverflows.Add(1)
		switch {
		case len(c.dirs[dir].ooo) > 0:
			w.forceGap(c, dir, ts)
		case len(c.dirs[1-dir].ooo) > 0:
			w.flushHoles(c, 1-dir, ts)
		case c.bufferedBytes()+n > w.cfg.MaxConnBufferBytes:
			return false // one segment larger than the per-connection cap
		case !w.evictOne(c):
			return false
		}
	}
	return true
}

// evictOne frees buffer space by declaring the holes of another
// connection's direction; it returns false when there is nothing to free.
func (w *worker) evictOne(except *conn) bool {
	for _, o := range w.conns {
		if o == except || o.busy {
			continue
		}
		for dir := range o.dirs {
			if len(o.dirs[dir].ooo) > 0 {
				o.busy = true
				w.flushHoles(o, dir, w.clock)
				o.busy = false
				return true
			}
		}
	}
	return false
}

func (c *conn) bufferedBytes() int {
	n := 0
	for i := range c.dirs {
		for _, s := range c.dirs[i].ooo {
			n += cap(s.data)
		}
		for _, h := range c.dirs[i].held {
			n += cap(h.data)
		}
	}
	return n
}

// insert keeps the out-of-order list sorted by sequence number.
func (w *worker) insert(d *half, s segment, payload []byte) {
	buf := w.getBuf(len(payload))
	buf = append(buf, payload...)
	s.data = buf
	i := len(d.ooo)
	for i > 0 && seqDiff(d.ooo[i-1].seq, s.seq) > 0 {
		i--
	}
	d.ooo = append(d.ooo, segment{})
	copy(d.ooo[i+1:], d.ooo[i:])
	d.ooo[i] = s
	w.buffered += int64(cap(buf))
	w.stats.BufferedBytes.Add(int64(cap(buf)))
}

// deliver accepts the next in-order content of dir: payload, then missing
// bytes cut from its end.
func (w *worker) deliver(c *conn, dir int, payload []byte, missing int, ack uint32, hasAck bool, ts time.Time) {
	d := &c.dirs[dir]
	if len(payload) > 0 {
		d.next += uint32(len(payload))
		w.emit(c, dir, pending{data: payload, end: d.next, ack: ack, hasAck: hasAck, ts: ts})
	}
	if missing > 0 {
		w.stats.TruncatedSegs.Add(1)
		w.skipTo(c, dir, d.next+uint32(missing), missing, ts)
	}
}

// skipTo declares the bytes of dir from next up to to lost (n of them, or
// -1 when unknown) and resumes reassembly at to.
func (w *worker) skipTo(c *conn, dir int, to uint32, n int, ts time.Time) {
	if n == 0 {
		return
	}
	w.stats.Gaps.Add(1)
	if n > 0 {
		w.stats.GapBytes.Add(uint64(n))
	}
	c.dirs[dir].next = to
	w.emit(c, dir, pending{gap: n, end: to, ts: ts})
}

// emit hands in-order content to the Handler, unless it acknowledges bytes
// of the other direction that the Handler has not been given yet: then it
// waits (copied) until those arrive or the reorder window passes.
func (w *worker) emit(c *conn, dir int, p pending) {
	d := &c.dirs[dir]
	if o := &c.dirs[1-dir]; p.hasAck && !o.started && !c.skipping {
		// First sight of the other side (a mid-stream start): the bytes
		// this content acknowledges were sent before the capture began,
		// and arriving late they must not be taken for new ones.
		o.start(p.ack)
	}
	if c.forcing || (len(d.held) == 0 && !c.waits(dir, &p)) {
		w.handOver(c, dir, &p)
		if !c.forcing {
			w.releaseHeld(c, 1-dir, p.ts)
		}
		return
	}
	if p.data != nil {
		n := bufCap(len(p.data))
		busy := c.busy
		c.busy = true
		for !w.hasRoom(c, n) && w.evictOne(c) {
		}
		c.busy = busy
		if !w.hasRoom(c, n) {
			// No room to wait: give up waiting, declaring what was waited
			// for lost, so that order is kept and memory bounded.
			w.stats.BufferOverflows.Add(1)
			w.forceRelease(c, dir)
			w.abandon(c, dir, &p)
			w.handOver(c, dir, &p)
			w.releaseHeld(c, 1-dir, p.ts)
			return
		}
		buf := w.getBuf(len(p.data))
		p.data = append(buf, p.data...)
		w.buffered += int64(cap(buf))
		w.stats.BufferedBytes.Add(int64(cap(buf)))
	}
	w.stats.Held.Add(1)
	d.held = append(d.held, p)
}

func (w *worker) hasRoom(c *conn, n int) bool {
	return c.bufferedBytes()+n <= w.cfg.MaxConnBufferBytes && w.buffered+int64(n) <= w.maxBuf
}

// waits reports whether content of dir acknowledging p.ack must wait for
// the other direction.
func (c *conn) waits(dir int, p *pending) bool {
	o := &c.dirs[1-dir]
	if !p.hasAck || c.skipping || !o.started {
		return false
	}
	pos := o.out
	if o.finSeen && pos == o.finSeq {
		pos++ // the FIN takes one sequence number
	}
	return seqDiff(p.ack, pos) > 0
}

// releaseHeld hands over the content of dir that no longer waits (or has
// waited longer than the reorder window by now), then does the same for
// the other direction, which may have been waiting for it.
func (w *worker) releaseHeld(c *conn, dir int, now time.Time) {
	d := &c.dirs[dir]
	moved := false
	for len(d.held) > 0 {
		if c.waits(dir, &d.held[0]) && now.Sub(d.held[0].ts) <= w.cfg.ReorderWindow {
			break
		}
		p := d.popHeld()
		w.abandon(c, dir, &p) // a no-op unless p still waits
		w.handOver(c, dir, &p)
		if p.data != nil {
			w.release(p.data)
		}
		moved = true
	}
	if moved {
		w.releaseHeld(c, 1-dir, now)
	}
}

// forceRelease hands over all held content of dir, giving up what each
// piece waits for.
func (w *worker) forceRelease(c *conn, dir int) {
	d := &c.dirs[dir]
	for len(d.held) > 0 {
		p := d.popHeld()
		w.abandon(c, dir, &p)
		w.handOver(c, dir, &p)
		if p.data != nil {
			w.release(p.data)
		}
	}
}

func (d *half) popHeld() pending {
	p := d.held[0]
	copy(d.held, d.held[1:])
	d.held[len(d.held)-1] = pending{}
	d.held = d.held[:len(d.held)-1]
	return p
}

// abandon stops p waiting: the other direction's bytes up to what p
// acknowledges are handed over if we have them and declared lost if not,
// so the parser sees a gap (and drops its outstanding requests) rather
// than a response before its request. Bytes arriving later for that range
// are old and ignored.
func (w *worker) abandon(c *conn, dir int, p *pending) {
	if !c.waits(dir, p) {
		return
	}
	w.stats.HeldTimeouts.Add(1)
	o := 1 - dir
	od := &c.dirs[o]
	// Only the other direction's bytes before what p acknowledges go now:
	// what comes after them was sent after p and must still follow it.
	c.forcing = true
	for len(od.held) > 0 && seqDiff(od.out, p.ack) < 0 {
		q := od.popHeld()
		w.handOver(c, o, &q)
		if q.data != nil {
			w.release(q.data)
		}
	}
	for len(od.held) == 0 && seqDiff(od.next, p.ack) < 0 {
		if len(od.ooo) == 0 || seqDiff(od.ooo[0].seq, p.ack) >= 0 {
			w.skipTo(c, o, p.ack, int(seqDiff(p.ack, od.next)), p.ts)
			break
		}
		if n := seqDiff(od.ooo[0].seq, od.next); n > 0 {
			w.skipTo(c, o, od.ooo[0].seq, int(n), p.ts)
		}
		w.drainOne(c, o)
	}
	c.forcing = false
}

// handOver gives content to the Handler.
func (w *worker) handOver(c *conn, dir int, p *pending) {
	d := &c.dirs[dir]
	if p.gap != 0 {
		d.lost, d.lostEnd = true, p.end
	}
	data, gap := p.data, p.gap // p.data stays the caller's to release
	if o := &c.dirs[1-dir]; len(data) > 0 && p.hasAck && o.lost && seqDiff(p.ack, o.lostEnd) < 0 {
		// This content was sent before its sender had received all of
		// the other direction's lost bytes (its ACK does not cover them):
		// some of them may answer it, yet the loss has gone to the parser
		// first. A request whose response was lost would be queued after
		// the loss and take the next response: the parser is told this
		// content is lost too.
		w.stats.LateAcrossGap.Add(1)
		data, gap = nil, len(data)+max(gap, 0)
	}
	d.out = p.end
	if c.skipping {
		w.stats.SkippedBytes.Add(uint64(len(data)))
		return
	}
	if c.h == nil {
		return // no content came yet (made in packet): a gap tells a parser nothing
	}
	if !d.begun {
		d.begun = true
		if s, ok := c.h.(Starter); ok && d.atStart && len(data) > 0 {
			s.Start(dir)
		}
	}
	if len(data) > 0 {
		c.h.Data(dir, data, p.ts)
		c.skipping = c.h.Skipping()
	}
	if gap != 0 && !c.skipping {
		c.h.Gap(dir, gap, p.ts)
	}
}

// drain delivers buffered segments that the stream has caught up with.
func (w *worker) drain(c *conn, dir int, ts time.Time) {
	for w.drainOne(c, dir) {
	}
}

// drainOne delivers the first buffered segment if the stream has reached
// it, and reports whether it did.
func (w *worker) drainOne(c *conn, dir int) bool {
	d := &c.dirs[dir]
	if len(d.ooo) == 0 || seqDiff(d.ooo[0].seq, d.next) > 0 {
		return false
	}
	s := d.ooo[0]
	copy(d.ooo, d.ooo[1:])
	d.ooo = d.ooo[:len(d.ooo)-1]
	payload, missing := s.data, s.missing
	if skip := int(seqDiff(d.next, s.seq)); skip > 0 {
		if skip >= len(payload)+missing {
			w.stats.Duplicates.Add(1)
			payload, missing = nil, 0
		} else if skip >= len(payload) {
			missing -= skip - len(payload)
			payload = nil
		} else {
			payload = payload[skip:]
		}
	}
	w.deliver(c, dir, payload, missing, s.ack, s.hasAck, s.ts)
	w.release(s.data)
	return true
}

// forceGap gives up on the first hole of dir: the bytes up to the first
// buffered segment are declared lost and delivery resumes after them.
func (w *worker) forceGap(c *conn, dir int, ts time.Time) {
	d := &c.dirs[dir]
	if len(d.ooo) == 0 {
		return
	}
	w.skipTo(c, dir, d.ooo[0].seq, int(seqDiff(d.ooo[0].seq, d.next)), ts)
	w.drain(c, dir, ts)
}

// flushHoles gives up on every hole of dir.
func (w *worker) flushHoles(c *conn, dir int, ts time.Time) {
	for len(c.dirs[dir].ooo) > 0 {
		w.forceGap(c, dir, ts)
	}
}

// close delivers what is left, closes the handler and forgets c.
func (w *worker) close(k key, c *conn, ts time.Time) {
	for dir := range c.dirs {
		w.flushHoles(c, dir, ts)
		if d := &c.dirs[dir]; d.finSeen && !d.ended {
			if n := seqDiff(d.finSeq, d.next); n > 0 {
				w.skipTo(c, dir, d.finSeq, int(n), ts)
			}
		}
	}
	// Nothing more will come: what waits for the other direction goes now.
	never := ts.Add(w.cfg.ReorderWindow + 1)
	w.releaseHeld(c, 0, never)
	w.releaseHeld(c, 1, never)
	for dir := range c.dirs {
		if d := &c.dirs[dir]; d.finSeen && !d.ended {
			d.ended = true
			if !c.skipping && c.h != nil {
				c.h.End(dir, ts)
			}
		}
	}
	if c.h != nil {
		c.h.Close(ts)
	}
	w.unlink(c)
	delete(w.conns, k)
	last := w.list[len(w.list)-1]
	w.list[c.idx] = last
	last.idx = c.idx
	w.list[len(w.list)-1] = nil
	w.list = w.list[:len(w.list)-1]
	w.stats.OpenConns.Add(-1)
}

// admit makes room for a new connection. When the table is full, or the
// live heap is over Config.MaxHeapLive, the least recently seen connection
// is closed to make room if it has been idle for Config.EvictIdle;
// otherwise the new connection's segment is dropped. Either way whole
// connections are shed, never parts of a stream, and each is counted by
// its reason.
func (w *worker) admit(ts time.Time) bool {
	full := len(w.conns) >= w.maxConns
	short := !full && w.heap.over(w.cfg.MaxHeapLive)
	if !full && !short {
		return true
	}
	if o := w.oldest; o != nil && w.cfg.EvictIdle > 0 && ts.UnixNano()-o.lastSeen >= int64(w.cfg.EvictIdle) {
		if full {
			w.stats.ConnsEvictedIdle.Add(1)
		} else {
			w.stats.ConnsEvictedMemory.Add(1)
		}
		w.close(o.key, o, ts)
		return true
	}
	if full {
		w.stats.ConnTableFull.Add(1)
	} else {
		w.stats.ConnsRefusedMemory.Add(1)
	}
	return false
}

// touch makes c the most recently seen connection.
func (w *worker) touch(c *conn) {
	if w.newest == c {
		return
	}
	w.unlink(c)
	c.older = w.newest
	if w.newest != nil {
		w.newest.newer = c
	}
	w.newest = c
	if w.oldest == nil {
		w.oldest = c
	}
}

// unlink takes c out of the recency list.
func (w *worker) unlink(c *conn) {
	if c.older != nil {
		c.older.newer = c.newer
	} else if w.oldest == c {
		w.oldest = c.newer
	}
	if c.newer != nil {
		c.newer.older = c.older
	} else if w.newest == c {
		w.newest = c.older
	}
	c.older, c.newer = nil, nil
}

// sweepMin is how many connections a sweep looks at, at least; a larger
// table is swept in parts (an eighth at a time), so that a sweep never
// holds the worker, and the packets queued behind it, for long.
const sweepMin = 4096

// advance moves the worker's capture clock and, once per SweepInterval,
// sweeps part of the table for idle connections, stale holes, content
// waiting too long and requests without responses.
func (w *worker) advance(now time.Time) {
	if now.After(w.clock) {
		w.clock = now
	}
	if w.clock.Sub(w.lastSweep) < w.cfg.SweepInterval {
		return
	}
	w.lastSweep = w.clock
	budget := max(sweepMin, len(w.list)/8)
	for i := 0; i < budget && len(w.list) > 0; i++ {
		if w.cursor >= len(w.list) {
			w.cursor = 0
		}
		c := w.list[w.cursor]
		if !w.sweep(c) {
			w.cursor++
		}
	}
}

// sweep looks at one connection; it reports whether c was closed (and so
// removed from the list, another connection taking its place).
func (w *worker) sweep(c *conn) bool {
	if w.clock.UnixNano()-c.lastSeen > int64(w.cfg.IdleTimeout) {
		w.stats.ConnsExpired.Add(1)
		w.close(c.key, c, w.clock)
		return true
	}
	for dir := range c.dirs {
		if o := c.dirs[dir].ooo; len(o) > 0 && w.clock.Sub(o[0].ts) > w.cfg.ReorderWindow {
			w.flushHoles(c, dir, w.clock)
		}
	}
	w.releaseHeld(c, 0, w.clock)
	w.releaseHeld(c, 1, w.clock)
	if w.finish(c.key, c, 0, w.clock) || w.finish(c.key, c, 1, w.clock) {
		return true
	}
	if !c.skipping && c.h != nil {
		c.h.Expire(w.clock)
	}
	return false
}

// closeAll ends every connection (shutdown, end of a capture file).
func (w *worker) closeAll() {
	for k, c := range w.conns {
		w.stats.ConnsFlushed.Add(1)
		w.close(k, c, w.clock)
	}
}

// bufCap is the capacity of the buffer getBuf returns for n bytes.
func bufCap(n int) int {
	switch {
	case n <= smallBufSize:
		return smallBufSize
	case n <= segBufSize:
		return segBufSize
	}
	return n
}

func (w *worker) getBuf(n int) []byte {
	free := &w.free
	if n <= smallBufSize {
		free = &w.freeSmall
	}
	if c := bufCap(n); c <= segBufSize && len(*free) > 0 {
		b := (*free)[len(*free)-1]
		*free = (*free)[:len(*free)-1]
		return b[:0]
	}
	return make([]byte, 0, bufCap(n))
}

func (w *worker) release(b []byte) {
	w.buffered -= int64(cap(b))
	w.stats.BufferedBytes.Add(-int64(cap(b)))
	// Keep enough buffers to refill the worker's share without allocating,
	// and no more.
	if int64(len(w.free))*segBufSize+int64(len(w.freeSmall))*smallBufSize >= w.maxBuf {
		return
	}
	switch cap(b) {
	case segBufSize:
		w.free = append(w.free, b)
	case smallBufSize:
		w.freeSmall = append(w.freeSmall, b)
	}
}
