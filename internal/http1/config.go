package http1

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Defaults used for zero Config fields.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxPending     = 64
	DefaultPendingTimeout = 30 * time.Second
)

// Config bounds what one Conn keeps. The zero value is usable: every zero
// field means its default. It is copied by NewConn and Reset, so changing it
// afterwards has no effect on existing connections.
type Config struct {
	// Budget, when set, bounds the body bytes held by all the Conns that
	// share it (requests waiting for responses, messages being read):
	// beyond it bodies are cut and counted. MaxBodyBytes bounds one body;
	// the Budget bounds them all, whatever the number of connections.
	Budget *Budget

	// MaxBodyBytes is how many bytes of each body are kept, after transfer
	// and content decoding. Longer bodies are cut, marked BodyTruncated and
	// counted. Default 1 MiB.
	MaxBodyBytes int

	// MaxHeaderBytes bounds a start line plus its header fields (and a chunked
	// body's trailer). A longer head is treated as garbage: counted, and the
	// direction resynchronises. Default 64 KiB.
	MaxHeaderBytes int

	// MaxPending is how many requests may wait for their responses on one
	// connection. Beyond it the oldest one is emitted as pending (or dropped,
	// see EmitPending) and counted. Default 64.
	MaxPending int

	// PendingTimeout is how long, on the capture clock, a request may wait for
	// its response before Expire emits it as pending. Default 30s.
	PendingTimeout time.Duration

	// EmitPending chooses what happens to a request that never got a
	// response: true emits it with Response == nil, false drops it (counted).
	// The zero value is false; the sniffer's main sets it to true by default.
	EmitPending bool

	// Decompress decodes bodies with Content-Encoding gzip, x-gzip or deflate
	// (zlib-wrapped or raw), never producing more than MaxBodyBytes. The zero
	// value is false; the sniffer's main sets it to true by default.
	Decompress bool
}

// Validate reports settings that cannot work. Zero values are valid: they
// mean the defaults.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("http1: MaxBodyBytes is %d: want 0 (default %d) or more", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, fmt.Errorf("http1: MaxHeaderBytes is %d: want 0 (default %d) or more", c.MaxHeaderBytes, DefaultMaxHeaderBytes))
	}
	if c.MaxPending < 0 {
		errs = append(errs, fmt.Errorf("http1: MaxPending is %d: want 0 (default %d) or more", c.MaxPending, DefaultMaxPending))
	}
	if c.PendingTimeout < 0 {
		errs = append(errs, fmt.Errorf("http1: PendingTimeout is %v: want 0 (default %v) or more", c.PendingTimeout, DefaultPendingTimeout))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy with zero (or invalid negative) fields set to
// their defaults, so that a Conn never has to check them again.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.PendingTimeout <= 0 {
		c.PendingTimeout = DefaultPendingTimeout
	}
	return c
}

// Budget is memory for bodies shared by many Conns. Safe for concurrent use.
type Budget struct {
	max  int64
	used atomic.Int64
}

// NewBudget returns a Budget of max bytes.
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// Used is how many bytes are held now.
func (b *Budget) Used() int64 { return b.used.Load() }

// take reserves up to n bytes and returns how many it got.
func (b *Budget) take(n int64) int64 {
	for {
		used := b.used.Load()
		got := min(n, b.max-used)
		if got <= 0 {
			return 0
		}
		if b.used.CompareAndSwap(used, used+got) {
			return got
		}
	}
}

func (b *Budget) give(n int64) {
	if n != 0 {
		b.used.Add(-n)
	}
}
