// Package vnicount counts the sniffer's records, request/response pairs and
// record bytes per VXLAN network id (one VNI per mirrored load balancer,
// docs/contracts.md §2), for the per-VNI metrics named in internal/contract.
//
// The label set is bounded: the first MaxVNIs VNIs seen get their own
// counters, every later one is counted under "other". The table is a fixed
// array, filled once per VNI with a compare-and-swap and never emptied, so
// Add takes no lock and allocates nothing: reassembly workers count
// concurrently without waiting on one another.
package vnicount

import (
	"fmt"
	"math/bits"
	"sync/atomic"
)

// DefaultMaxVNIs is Config.MaxVNIs when it is zero.
const DefaultMaxVNIs = 256

// LimitMaxVNIs is the largest MaxVNIs accepted: each VNI is three time
// series on /metrics, and a deployment mirrors far fewer load balancers.
const LimitMaxVNIs = 1 << 16

// Config bounds the Counters. The zero value works.
type Config struct {
	// MaxVNIs is how many VNIs get their own counters; later ones are
	// counted together as "other". Default DefaultMaxVNIs, at most
	// LimitMaxVNIs.
	MaxVNIs int
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.MaxVNIs < 0 || c.MaxVNIs > LimitMaxVNIs {
		return fmt.Errorf("vnicount: VNI limit %d outside 0 (the default, %d) to %d", c.MaxVNIs, DefaultMaxVNIs, LimitMaxVNIs)
	}
	return nil
}

// Counts are one VNI's counters.
type Counts struct {
	Records uint64 // records published
	Pairs   uint64 // of which a request with its response
	Bytes   uint64 // encoded size of the records
}

type counters struct {
	records, pairs, bytes atomic.Uint64
}

func (c *counters) add(pair bool, n int) {
	c.records.Add(1)
	if pair {
		c.pairs.Add(1)
	}
	c.bytes.Add(uint64(n))
}

func (c *counters) load() Counts {
	return Counts{Records: c.records.Load(), Pairs: c.pairs.Load(), Bytes: c.bytes.Load()}
}

type slot struct {
	key atomic.Uint64 // VNI+1; 0 while the slot is free
	c   counters
}

// Counters counts per VNI. Its methods are safe for concurrent use.
type Counters struct {
	slots []slot // a power of two, at least twice MaxVNIs: probes stay short
	shift uint
	max   int64
	used  atomic.Int64 // slots taken or reserved
	other counters
}

// New returns zeroed Counters.
func New(cfg Config) (*Counters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxVNIs == 0 {
		cfg.MaxVNIs = DefaultMaxVNIs
	}
	size := 1 << bits.Len(uint(2*cfg.MaxVNIs-1))
	return &Counters{
		slots: make([]slot, size),
		shift: uint(64 - bits.TrailingZeros(uint(size))),
		max:   int64(cfg.MaxVNIs),
	}, nil
}

// Add counts one record of n bytes on vni; pair says it is a request with
// its response.
func (c *Counters) Add(vni uint32, pair bool, n int) {
	c.find(vni).add(pair, n)
}

// find returns vni's counters, taking a free slot for a VNI not seen
// before while fewer than max are taken, else the "other" counters.
// Open addressing with linear probing: slots only go from free to taken,
// so a VNI's slot always comes before the first free slot of its probe
// sequence, and two workers adding the same new VNI meet in one slot.
func (c *Counters) find(vni uint32) *counters {
	want := uint64(vni) + 1
	mask := uint64(len(c.slots) - 1)
	h := (want * 0x9E3779B97F4A7C15) >> c.shift
	reserved := false
	for i := uint64(0); i <= mask; i++ {
		s := &c.slots[(h+i)&mask]
		k := s.key.Load()
		if k == 0 {
			if !reserved {
				if c.used.Add(1) > c.max {
					c.used.Add(-1)
					return &c.other
				}
				reserved = true
			}
			if s.key.CompareAndSwap(0, want) {
				return &s.c
			}
			k = s.key.Load() // another worker took the slot first
		}
		if k == want {
			if reserved {
				c.used.Add(-1)
			}
			return &s.c
		}
	}
	if reserved {
		c.used.Add(-1)
	}
	return &c.other
}

// Each calls fn with every VNI that has counts, then, when any record went
// there, with the "other" counters (other true). The order of VNIs is not
// defined.
func (c *Counters) Each(fn func(vni uint32, other bool, counts Counts)) {
	for i := range c.slots {
		s := &c.slots[i]
		if k := s.key.Load(); k != 0 {
			fn(uint32(k-1), false, s.c.load())
		}
	}
	if o := c.other.load(); o.Records > 0 {
		fn(0, true, o)
	}
}
