// Package flow rebuilds TCP byte streams from mirrored segments. Packets
// are sharded by a direction-independent hash of (VNI, 4-tuple) to a fixed
// pool of workers; each worker owns its connections, so there is no
// goroutine per connection and no lock on the packet path. Out-of-order
// data is buffered up to a per-connection and a total cap; holes that do
// not fill within the reorder window are declared lost to the Handler.
package flow

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/apitap/apitap/internal/decode"
)

// Config bounds the reassembler. The zero value gives the defaults.
type Config struct {
	// Workers is the number of reassembly goroutines. Default GOMAXPROCS.
	Workers int
	// MaxConns is the number of connections tracked at once; segments of
	// further new connections are dropped and counted. Default 262144.
	MaxConns int
	// MaxConnBufferBytes caps the out-of-order bytes held for one
	// connection, counting the buffers that hold them (2 KiB or 9 KiB each)
	// so that the cap bounds memory. Default 256 KiB.
	MaxConnBufferBytes int
	// MaxBufferBytes caps the out-of-order bytes held in total, counted
	// the same way. Default 256 MiB.
	MaxBufferBytes int64
	// ReorderWindow is how long a hole may wait for its bytes before they
	// are declared lost. Default 500ms.
	ReorderWindow time.Duration
	// IdleTimeout closes connections without packets for this long.
	// Default 2m.
	IdleTimeout time.Duration
	// EvictIdle: when the table is full (MaxConns) or the heap is over
	// MaxHeapLive, a new connection takes the place of the least recently
	// seen one if that one has been idle for this long (capture time);
	// otherwise the new one is refused. Default 10s; negative: never evict,
	// always refuse.
	EvictIdle time.Duration
	// MaxHeapLive, when positive, is the live heap (as measured by the
	// last garbage collection) above which new connections are shed as
	// when the table is full, so that memory, not only the connection
	// count, bounds the table. 0: no such check.
	MaxHeapLive int64
	// SweepInterval is how often idle connections and stale holes are
	// looked for, by the capture clock. Default 1s.
	SweepInterval time.Duration
	// Block makes Input.Add wait for a busy worker instead of dropping the
	// packet. Right for replaying files, wrong for live capture.
	Block bool
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 262144
	}
	if c.MaxConnBufferBytes <= 0 {
		c.MaxConnBufferBytes = 256 << 10
	}
	if c.MaxBufferBytes <= 0 {
		c.MaxBufferBytes = 256 << 20
	}
	if c.ReorderWindow <= 0 {
		c.ReorderWindow = 500 * time.Millisecond
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.EvictIdle == 0 {
		c.EvictIdle = 10 * time.Second
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = time.Second
	}
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Workers < 0 || c.Workers > 1024 {
		errs = append(errs, fmt.Errorf("flow: workers %d out of range 0-1024", c.Workers))
	}
	if c.MaxConnBufferBytes < 0 || c.MaxBufferBytes < 0 || c.MaxConns < 0 || c.MaxHeapLive < 0 {
		errs = append(errs, errors.New("flow: buffer and connection limits must not be negative"))
	}
	if c.MaxBufferBytes > 0 && c.MaxConnBufferBytes > 0 && int64(c.MaxConnBufferBytes) > c.MaxBufferBytes {
		errs = append(errs, fmt.Errorf("flow: per-connection buffer %d exceeds total buffer %d", c.MaxConnBufferBytes, c.MaxBufferBytes))
	}
	if c.ReorderWindow < 0 || c.IdleTimeout < 0 {
		errs = append(errs, errors.New("flow: timeouts must not be negative"))
	}
	return errors.Join(errs...)
}

const (
	batchItems = 128
	batchArena = 256 << 10
	batchesPer = 8 // batches in flight per worker and input
)

type item struct {
	p  decode.Packet
	ts time.Time
}

// batch carries packets from an Input to one worker; payloads are copied
// into its arena so the reader's buffer can be reused at once.
type batch struct {
	items []item
	arena []byte
	home  chan *batch
}

// Engine runs the workers. Create it with New, feed it through Inputs,
// and Close it once every Input is done.
type Engine struct {
	cfg     Config
	stats   *Stats
	workers []*worker
	in      []chan *batch
	tick    []chan time.Time
	wg      sync.WaitGroup
}

// New starts the workers. newHandler is called on the worker goroutines.
func New(cfg Config, stats *Stats, newHandler NewHandler) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	e := &Engine{cfg: cfg, stats: stats}
	for i := 0; i < cfg.Workers; i++ {
		w := newWorker(&e.cfg, stats, newHandler, cfg.Workers)
		in := make(chan *batch, batchesPer)
		tick := make(chan time.Time, 1)
		e.workers = append(e.workers, w)
		e.in = append(e.in, in)
		e.tick = append(e.tick, tick)
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			w.run(in, tick)
		}()
	}
	return e, nil
}

func (w *worker) run(in <-chan *batch, tick <-chan time.Time) {
	for {
		select {
		case b, ok := <-in:
			if !ok {
				w.closeAll()
				return
			}
			for i := range b.items {
				w.packet(&b.items[i].p, b.items[i].ts)
			}
			b.items = b.items[:0]
			b.arena = b.arena[:0]
			b.home <- b // never blocks: home has room for every batch it owns
		case now := <-tick:
			w.advance(now)
		}
	}
}

// Tick advances every worker's clock to now: live capture calls it
// periodically so that idle connections expire without new packets.
func (e *Engine) Tick(now time.Time) {
	for _, t := range e.tick {
		select {
		case t <- now:
		default:
		}
	}
}

// Close waits for the workers to drain their queues and closes every open
// connection. Inputs must not be used afterwards.
func (e *Engine) Close() {
	for _, in := range e.in {
		close(in)
	}
	e.wg.Wait()
}

// Input is one reader's door into the engine. It is not safe for
// concurrent use: give each reading goroutine its own.
type Input struct {
	e         *Engine
	cur       []*batch
	free      chan *batch
	allocated int
}

// NewInput returns an Input for one reading goroutine.
func (e *Engine) NewInput() *Input {
	n := len(e.workers)
	return &Input{e: e, cur: make([]*batch, n), free: make(chan *batch, n*batchesPer)}
}

// Add copies p into the batch of p's worker. It reports false when the
// packet was dropped because the workers are behind (never with Block).
func (in *Input) Add(p *decode.Packet, ts time.Time) bool {
	wi := int(shard(p) % uint32(len(in.cur)))
	b := in.cur[wi]
	if b != nil && (len(b.items) == cap(b.items) || len(b.arena)+len(p.Payload) > cap(b.arena)) {
		in.send(wi)
		b = nil
	}
	if b == nil {
		if b = in.get(); b == nil {
			in.e.stats.QueueDrops.Add(1)
			return false
		}
		in.cur[wi] = b
	}
	off := len(b.arena)
	b.arena = append(b.arena, p.Payload...)
	b.items = append(b.items, item{p: *p, ts: ts})
	b.items[len(b.items)-1].p.Payload = b.arena[off:len(b.arena):len(b.arena)]
	return true
}

// Flush hands every partly filled batch to its worker.
func (in *Input) Flush() {
	for wi, b := range in.cur {
		if b != nil && len(b.items) > 0 {
			in.send(wi)
		}
	}
}

func (in *Input) send(wi int) {
	b := in.cur[wi]
	in.cur[wi] = nil
	if in.e.cfg.Block {
		in.e.in[wi] <- b
		return
	}
	select {
	case in.e.in[wi] <- b:
	default:
		in.e.stats.QueueDrops.Add(uint64(len(b.items)))
		b.items = b.items[:0]
		b.arena = b.arena[:0]
		in.free <- b
	}
}

func (in *Input) get() *batch {
	select {
	case b := <-in.free:
		return b
	default:
	}
	if in.allocated < cap(in.free) {
		in.allocated++
		return &batch{items: make([]item, 0, batchItems), arena: make([]byte, 0, batchArena), home: in.free}
	}
	if in.e.cfg.Block {
		return <-in.free
	}
	return nil
}

// shard hashes (VNI, 4-tuple) so that both directions of a connection
// land on the same worker.
func shard(p *decode.Packet) uint32 {
	h := hashEndpoint(p.Src, p.SrcPort) + hashEndpoint(p.Dst, p.DstPort)
	h ^= p.VNI * 0x9e3779b1
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	return h
}

func hashEndpoint(a netip.Addr, port uint16) uint32 {
	b := a.As16()
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	h = (h ^ uint32(port)) * 16777619
	return (h ^ uint32(port>>8)) * 16777619
}
