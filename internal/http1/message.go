package http1

import (
	"bytes"
	"strings"
	"sync"
	"unsafe"

	"github.com/apitap/apitap/internal/record"
)

// Messages and queue entries are recycled once their exchange was emitted,
// with their buffers, so that parsing a pair allocates nothing in the
// steady state. A sync.Pool (not a free list per connection) holds them:
// idle connections then keep no spare buffers, and the runtime may drop
// pooled ones under memory pressure.
var (
	messages = sync.Pool{New: func() any { return new(Message) }}
	entries  = sync.Pool{New: func() any { return new(entry) }}
)

// Buffers larger than these are not kept when a Message is recycled, so
// that one large message does not pin its memory in the pool.
const (
	maxPooledHead    = 4 << 10
	maxPooledBody    = 128 << 10
	maxPooledHeaders = 64
)

func newMessage() *Message { return messages.Get().(*Message) }

// recycle gives m back to the pool. Nothing may use m, or the strings and
// bytes it handed out, afterwards.
func recycle(m *Message) {
	if m == nil {
		return
	}
	head, raw, dec, hs := m.head[:0], m.raw[:0], m.dec[:0], m.Headers
	if cap(head) > maxPooledHead {
		head = nil
	}
	if cap(raw) > maxPooledBody {
		raw = nil
	}
	if cap(dec) > maxPooledBody {
		dec = nil
	}
	if cap(hs) > maxPooledHeaders {
		hs = nil
	}
	clear(hs)                                                     // drop the strings
	*m = Message{head: head, raw: raw, dec: dec, Headers: hs[:0]} // rd too: it must not keep raw
	messages.Put(m)
}

func newEntry(req *Message, seq uint64) *entry {
	e := entries.Get().(*entry)
	e.req, e.seq = req, seq
	return e
}

func recycleEntry(e *entry) {
	*e = entry{}
	entries.Put(e)
}

// text copies b into the message's own buffer and returns it as a string
// that shares that buffer: the string is valid until the Message is
// recycled, which is what makes an Exchange valid only during the emit
// call. Appending may move the buffer; strings made before keep pointing
// at the old one, which nothing writes to any more.
func (m *Message) text(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	off := len(m.head)
	m.head = append(m.head, b...)
	return unsafe.String(&m.head[off], len(b))
}

// Clone returns a deep copy of m that stays valid after the emit call.
func (m *Message) Clone() *Message {
	if m == nil {
		return nil
	}
	c := &Message{
		Method: strings.Clone(m.Method), Target: strings.Clone(m.Target), Proto: strings.Clone(m.Proto),
		StatusCode: m.StatusCode, Status: strings.Clone(m.Status),
		Body: bytes.Clone(m.Body), BodyTruncated: m.BodyTruncated, Time: m.Time, End: m.End,
	}
	if m.Headers != nil {
		c.Headers = make([]record.Header, len(m.Headers))
		for i, h := range m.Headers {
			c.Headers[i] = record.Header{Name: strings.Clone(h.Name), Value: strings.Clone(h.Value)}
		}
	}
	return c
}

// Clone returns a deep copy of x that stays valid after the emit call.
func (x *Exchange) Clone() *Exchange {
	return &Exchange{ClientDir: x.ClientDir, Request: x.Request.Clone(), Response: x.Response.Clone()}
}
