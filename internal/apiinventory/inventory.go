package apiinventory

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on the parts of an endpoint's key, so that one entry's size is
// bounded whatever the traffic sends.
const (
	// MaxHostBytes bounds a host (a DNS name is at most 253 bytes, plus a
	// port). Longer hosts are cut.
	MaxHostBytes = 262
	// MaxMethodBytes bounds a method (the HTTP parser accepts 24).
	MaxMethodBytes = 32
)

// DefaultMaxEndpoints is Config.MaxEndpoints when it is zero.
const DefaultMaxEndpoints = 10_000

// Config bounds an Inventory. The zero value works.
type Config struct {
	// MaxEndpoints is how many endpoints (VNI, host, method, template) are
	// kept. Records of further endpoints are only counted (Stats.Dropped).
	// An entry costs about 200 bytes plus its key (at most ~560 bytes), so
	// the default 10,000 holds at most ~8 MB. Default DefaultMaxEndpoints.
	MaxEndpoints int
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	if c.MaxEndpoints < 0 {
		return errors.New("apiinventory: negative endpoint limit")
	}
	return nil
}

// Observation is one published record, as the inventory sees it. Its
// strings are copied when kept: they may be borrowed.
type Observation struct {
	VNI uint32
	// Host is the request's Host header; when empty, Server stands in.
	Host   string
	Server netip.AddrPort
	Method string
	Target string // the request-target as sent: templated by Add
	// Status is the response's status code, 0 for a request published
	// without a response (pending).
	Status int
	Time   time.Time // capture time of the request
}

// Status classes counted per endpoint.
const (
	class1xx = iota
	class2xx
	class3xx
	class4xx
	class5xx
	classNone  // no response (pending)
	classOther // a status code outside 100-599
	numClasses
)

var classNames = [numClasses]string{"1xx", "2xx", "3xx", "4xx", "5xx", "none", "other"}

func classOf(status int) int {
	switch {
	case status == 0:
		return classNone
	case status >= 100 && status < 600:
		return status/100 - 1
	}
	return classOther
}

// shards spread the entries over independent locks so that reassembly
// workers adding records do not wait on one another.
const shards = 64

// Inventory is the set of endpoints seen. Its methods are safe for
// concurrent use; Add allocates only when it keeps a new endpoint.
type Inventory struct {
	max     int64
	seed    maphash.Seed
	kept    atomic.Int64
	dropped atomic.Uint64
	shards  [shards]shard
}

type shard struct {
	mu sync.Mutex
	m  map[string]*entry // made on the shard's first endpoint
	_  [48]byte          // keep shards' locks on separate cache lines
}

// entry is one endpoint. vni, host, method and path are parsed from the
// map key once, when the entry is made, and share its memory.
type entry struct {
	vni                uint32
	host, method, path string
	counts             [numClasses]uint64
	first, last        int64 // unix nanoseconds, capture time
}

// New returns an empty Inventory.
func New(cfg Config) (*Inventory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxEndpoints == 0 {
		cfg.MaxEndpoints = DefaultMaxEndpoints
	}
	return &Inventory{max: int64(cfg.MaxEndpoints), seed: maphash.MakeSeed()}, nil
}

// maxKey is the longest key: VNI, method, host and template with a
// separator after each of the first three.
const maxKey = 4 + MaxMethodBytes + 1 + MaxHostBytes + 1 + MaxTemplateBytes + 8

// Add counts one record.
func (inv *Inventory) Add(o Observation) {
	var buf [maxKey]byte
	key := appendKey(buf[:0], &o)
	sh := &inv.shards[maphash.Bytes(inv.seed, key)%shards]
	t := o.Time.UnixNano()
	if o.Time.IsZero() {
		t = 0
	}
	class := classOf(o.Status)

	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m[string(key)]
	if e == nil {
		if inv.kept.Add(1) > inv.max {
			inv.kept.Add(-1)
			inv.dropped.Add(1)
			return
		}
		k := string(key)
		e = newEntry(k, t)
		if sh.m == nil {
			sh.m = map[string]*entry{}
		}
		sh.m[k] = e
	}
	e.counts[class]++
	if t != 0 && (e.first == 0 || t < e.first) {
		e.first = t
	}
	if t > e.last {
		e.last = t
	}
}

// appendKey writes the VNI (4 bytes), then method, host and template, each
// cut and escaped to printable ASCII and followed by a 0 byte (the last
// excepted).
func appendKey(b []byte, o *Observation) []byte {
	b = binary.BigEndian.AppendUint32(b, o.VNI)
	b = appendCut(b, o.Method, MaxMethodBytes, false)
	b = append(b, 0)
	if o.Host != "" {
		b = appendHost(b, o.Host)
	} else if o.Server.IsValid() {
		var ab [64]byte
		b = appendHost(b, string(o.Server.AppendTo(ab[:0])))
	}
	b = append(b, 0)
	return AppendTemplate(b, o.Target)
}

// appendHost appends a host in lower case (host names are case-insensitive).
func appendHost(b []byte, host string) []byte { return appendCut(b, host, MaxHostBytes, true) }

// appendCut appends s escaped like a template segment, at most max bytes,
// in lower case when fold is set.
func appendCut(b []byte, s string, max int, fold bool) []byte {
	start := len(b)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f {
			if len(b)-start+3 > max {
				break
			}
		} else if len(b)-start+1 > max {
			break
		}
		if fold {
			c = lower(c)
		}
		b = appendByte(b, c)
	}
	return b
}

// newEntry parses a key made by appendKey. The entry's strings share the
// key's memory.
func newEntry(key string, t int64) *entry {
	vni := uint32(key[0])<<24 | uint32(key[1])<<16 | uint32(key[2])<<8 | uint32(key[3])
	e := &entry{vni: vni, first: t, last: t}
	rest := key[4:]
	var parts [3]string
	for i := range 2 {
		j := 0
		for rest[j] != 0 {
			j++
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[2] = rest
	e.method, e.host, e.path = parts[0], parts[1], parts[2]
	return e
}

// Stats are the inventory's own counters.
type Stats struct {
	Endpoints int64  // endpoints kept now
	Dropped   uint64 // records of endpoints not kept because MaxEndpoints were kept
}

// Stats returns the counters.
func (inv *Inventory) Stats() Stats {
	return Stats{Endpoints: inv.kept.Load(), Dropped: inv.dropped.Load()}
}

// Endpoint is one endpoint in a Snapshot.
type Endpoint struct {
	VNI    uint32 `json:"vni"`
	Host   string `json:"host"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Count  uint64 `json:"count"`
	// Status counts the records by status class: "1xx" to "5xx", "none"
	// for requests published without a response, "other" for codes
	// outside 100-599. Classes never seen are left out.
	Status    map[string]uint64 `json:"status"`
	FirstSeen time.Time         `json:"first_seen"`
	LastSeen  time.Time         `json:"last_seen"`
}

// Snapshot is the inventory at one moment: what /inventory answers.
type Snapshot struct {
	MaxEndpoints int64      `json:"max_endpoints"`
	Dropped      uint64     `json:"dropped"`
	Endpoints    []Endpoint `json:"endpoints"`
}

// Snapshot copies the inventory, sorted by VNI, host, method and path.
// Each shard is locked in turn, so the copy is consistent per endpoint,
// not across endpoints.
func (inv *Inventory) Snapshot() Snapshot {
	s := Snapshot{MaxEndpoints: inv.max, Dropped: inv.dropped.Load(), Endpoints: make([]Endpoint, 0, inv.kept.Load())}
	for i := range inv.shards {
		sh := &inv.shards[i]
		sh.mu.Lock()
		for _, e := range sh.m {
			ep := Endpoint{VNI: e.vni, Host: e.host, Method: e.method, Path: e.path,
				Status: map[string]uint64{}, FirstSeen: unixTime(e.first), LastSeen: unixTime(e.last)}
			for c, n := range e.counts {
				if n > 0 {
					ep.Status[classNames[c]] = n
					ep.Count += n
				}
			}
			s.Endpoints = append(s.Endpoints, ep)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(s.Endpoints, func(a, b Endpoint) int {
		return cmp.Or(cmp.Compare(a.VNI, b.VNI), cmp.Compare(a.Host, b.Host),
			cmp.Compare(a.Method, b.Method), cmp.Compare(a.Path, b.Path))
	})
	return s
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// WriteJSON writes the snapshot as one JSON document, one endpoint per
// line so that a person can read it too.
func (s Snapshot) WriteJSON(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\"max_endpoints\":%d,\"dropped\":%d,\"endpoints\":[", s.MaxEndpoints, s.Dropped)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, e := range s.Endpoints {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n  ")
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("encoding endpoint %s %s: %w", e.Method, e.Path, err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	b.WriteString("\n]}\n")
	_, err := w.Write(b.Bytes())
	return err
}
