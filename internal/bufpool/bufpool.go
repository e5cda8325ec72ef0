// Package bufpool keeps byte slices for reuse, in size classes of powers of
// two, so that encoding a record does not allocate once the pool is warm.
//
// Ownership is explicit: whoever Gets a buffer owns it until it Puts it
// back, exactly once, and must not touch it afterwards (not even through a
// sub-slice). In the sniffer a record's key and value share one buffer, and
// the Kafka sink's Release callback (or, without a sink, the line writer's
// caller) Puts it once every consumer is done with it.
//
// Buffers above the pool's largest class are allocated and left to the
// garbage collector, so that a rare 1 MB record does not pin a 1 MB buffer
// for the life of the process. Pooled buffers are held by sync.Pools, which
// the garbage collector empties when they go unused.
package bufpool

import (
	"fmt"
	"math/bits"
	"sync"
	"unsafe"
)

// Defaults of the package-level pool (Get, Put).
const (
	DefaultMinSize = 512
	DefaultMaxSize = 256 << 10
)

// Default is the pool Get and Put use.
var Default = mustNew(DefaultMinSize, DefaultMaxSize)

// Get returns a slice of length n from the Default pool.
func Get(n int) []byte { return Default.Get(n) }

// Put hands b back to the Default pool.
func Put(b []byte) { Default.Put(b) }

// Pool hands out byte slices in size classes minSize, 2*minSize, ...,
// maxSize. Safe for concurrent use.
type Pool struct {
	minShift, maxShift int
	classes            []sync.Pool // classes[i] holds buffers of capacity minSize<<i
}

// New returns a pool of classes from minSize to maxSize bytes, both powers
// of two, minSize at most maxSize.
func New(minSize, maxSize int) (*Pool, error) {
	if minSize <= 0 || minSize&(minSize-1) != 0 || maxSize&(maxSize-1) != 0 || maxSize < minSize {
		return nil, fmt.Errorf("bufpool: size classes from %d to %d bytes: want powers of two, the first at most the last", minSize, maxSize)
	}
	p := &Pool{minShift: bits.TrailingZeros(uint(minSize)), maxShift: bits.TrailingZeros(uint(maxSize))}
	p.classes = make([]sync.Pool, p.maxShift-p.minShift+1)
	return p, nil
}

func mustNew(minSize, maxSize int) *Pool {
	p, err := New(minSize, maxSize)
	if err != nil {
		panic(err)
	}
	return p
}

// MaxSize is the capacity of the largest pooled buffer.
func (p *Pool) MaxSize() int { return 1 << p.maxShift }

// Get returns a slice of length n (n >= 0) whose capacity is n rounded up to
// a size class, or exactly n above the largest class. Its content is
// whatever the previous owner left.
func (p *Pool) Get(n int) []byte {
	c, ok := p.classFor(n)
	if !ok {
		return make([]byte, n)
	}
	size := 1 << (c + p.minShift)
	if ptr, _ := p.classes[c].Get().(*byte); ptr != nil {
		return unsafe.Slice(ptr, size)[:n]
	}
	return make([]byte, n, size)
}

// Put hands b back to the pool; the caller must not use b, or any slice of
// its array, afterwards. Buffers smaller than the smallest class or larger
// than the largest are dropped; others go to the largest class their
// capacity covers, so that a buffer that grew by append is still reused.
func (p *Pool) Put(b []byte) {
	n := cap(b)
	if n < 1<<p.minShift || n > 1<<p.maxShift {
		return
	}
	c := bits.Len(uint(n)) - 1 - p.minShift // floor(log2(n)) - minShift
	// The pool keeps the array's first byte only: a pointer fits an
	// interface without allocating, where a slice header would not. Get
	// rebuilds the slice with the class's capacity, which b's covers.
	p.classes[c].Put(unsafe.SliceData(b[:1]))
}

// classFor returns the smallest class holding n bytes, false above the
// largest.
func (p *Pool) classFor(n int) (int, bool) {
	if n > 1<<p.maxShift {
		return 0, false
	}
	if n <= 1<<p.minShift {
		return 0, true
	}
	return bits.Len(uint(n-1)) - p.minShift, true
}
