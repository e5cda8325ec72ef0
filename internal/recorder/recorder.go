// Package recorder turns each reassembled TCP connection into HTTP
// exchanges and each exchange into one published record. It is the glue
// between the reassembler (flow), the parser (http1), the record format
// (record) and whatever publishes the records.
package recorder

import (
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apitap/apitap/internal/bufpool"
	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
	"github.com/apitap/apitap/internal/vnicount"
)

// Publisher takes ownership of key and value: the key follows the value in
// one buffer from bufpool.Get, which the publisher may bufpool.Put (the
// value) once done with both. It reports false when it
// dropped the record (and counted why). last is the capture time of the
// exchange's last packet (the response's, or the request's when pending):
// the start of the record's delivery latency.
type Publisher interface {
	Publish(key, value []byte, last time.Time) bool
}

// Observer is told of every record the publisher accepted: the per-VNI
// counters and the API inventory watch the records through it. Workers call
// Observe concurrently, once per record, so it must be cheap; the strings in
// an Observation are the exchange's and must be copied if kept.
type Observer interface {
	Observe(o Observation)
}

// Observation is what an Observer learns of one published record.
type Observation struct {
	VNI     uint32
	Host    string         // the request's Host header, "" when it had none
	Server  netip.AddrPort // the side that answered (or was asked)
	Method  string
	Target  string    // the request-target as sent
	Status  int       // the response's status code; 0 when Pending
	Pending bool      // published without a response
	Bytes   int       // size of the encoded record (the Kafka message value)
	Time    time.Time // capture time of the request's first byte
}

// Config says what goes into each record.
type Config struct {
	// AccountID is akto_account_id. Default record.DefaultAccountID.
	AccountID string
	// Source is record.SourceMirroring or record.SourcePcap.
	Source string
	// Redact lists header names whose values are masked.
	Redact []string
	// MaxRecordBytes is the largest record published (the broker's message
	// limit); bodies are cut to fit. Default 1,000,000.
	MaxRecordBytes int
	// HTTP configures the parser.
	HTTP http1.Config
	// Observer, when set, is told of every record published.
	Observer Observer
	// Volume says which connections and exchanges are recorded. The zero
	// value records all.
	Volume Volume
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Source != record.SourceMirroring && c.Source != record.SourcePcap {
		errs = append(errs, errors.New("recorder: source must be MIRRORING or PCAP"))
	}
	if c.MaxRecordBytes < 0 {
		errs = append(errs, errors.New("recorder: negative record size limit"))
	}
	if c.MaxRecordBytes > 0 && c.MaxRecordBytes < 4096 {
		errs = append(errs, errors.New("recorder: record size limit below 4096 bytes leaves no room for headers"))
	}
	for _, name := range c.Redact {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, errors.New("recorder: empty header name in redaction list"))
		}
	}
	if err := c.HTTP.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Volume.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Stats counts records. Safe for concurrent use.
type Stats struct {
	Records  atomic.Uint64 // published (handed to the publisher and accepted)
	Pending  atomic.Uint64 // of which without a response
	Cut      atomic.Uint64 // records whose bodies were cut to fit MaxRecordBytes
	TooLarge atomic.Uint64 // records dropped: too large even with empty bodies
	Refused  atomic.Uint64 // records the publisher dropped

	// Volume control (Config.Volume), one counter per reason.
	SampledOut     atomic.Uint64 // connections not recorded (sampling): never parsed
	FilteredMethod atomic.Uint64 // exchanges dropped by method
	FilteredHost   atomic.Uint64 // exchanges dropped by host
	FilteredPath   atomic.Uint64 // exchanges dropped by path
	FilteredStatus atomic.Uint64 // exchanges dropped by response status
	RateLimited    atomic.Uint64 // exchanges dropped by the per-VNI rate limit
	BodiesOmitted  atomic.Uint64 // bodies left out for their content type (the records are kept)
}

// Each calls fn with every counter.
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("records", s.Records.Load())
	fn("records_pending", s.Pending.Load())
	fn("records_cut", s.Cut.Load())
	fn("records_too_large", s.TooLarge.Load())
	fn("records_refused", s.Refused.Load())
	fn("conns_sampled_out", s.SampledOut.Load())
	fn("records_filtered_method", s.FilteredMethod.Load())
	fn("records_filtered_host", s.FilteredHost.Load())
	fn("records_filtered_path", s.FilteredPath.Load())
	fn("records_filtered_status", s.FilteredStatus.Load())
	fn("records_rate_limited", s.RateLimited.Load())
	fn("bodies_omitted", s.BodiesOmitted.Load())
}

// Recorder makes the per-connection handlers. Its methods are safe for
// concurrent use by the reassembly workers.
type Recorder struct {
	cfg       Config
	opts      record.Options
	pub       Publisher
	stats     *Stats
	httpStats *http1.Stats

	sampler sampler
	rules   rules
	limiter *limiter           // nil without a rate limit
	limited *vnicount.Counters // records dropped by the rate limit, per VNI
}

// New returns a Recorder publishing to pub.
func New(cfg Config, pub Publisher, stats *Stats, httpStats *http1.Stats) (*Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.AccountID == "" {
		cfg.AccountID = record.DefaultAccountID
	}
	if cfg.MaxRecordBytes == 0 {
		cfg.MaxRecordBytes = 1_000_000
	}
	r := &Recorder{cfg: cfg, pub: pub, stats: stats, httpStats: httpStats}
	r.opts = record.Options{Redact: cfg.Redact, MaxBytes: cfg.MaxRecordBytes}
	r.sampler = newSampler(cfg.Volume.SampleOut)
	r.rules = newRules(cfg.Volume)
	r.limiter = newLimiter(cfg.Volume)
	var err error
	if r.limited, err = vnicount.New(vnicount.Config{MaxVNIs: cfg.Volume.MaxVNIs}); err != nil {
		return nil, err
	}
	return r, nil
}

// EachRateLimited calls fn with the records the rate limit dropped, per VNI
// (at most Volume.MaxVNIs VNIs, the rest together as other).
func (r *Recorder) EachRateLimited(fn func(vni uint32, other bool, dropped uint64)) {
	r.limited.Each(func(vni uint32, other bool, n vnicount.Counts) { fn(vni, other, n.Records) })
}

// NewHandler is a flow.NewHandler: one HTTP parser per connection, or, for
// a connection sampled out, a handler that takes no bytes (the worker then
// only counts them).
func (r *Recorder) NewHandler(id flow.ConnID) flow.Handler {
	if !r.sampler.keep(id) {
		r.stats.SampledOut.Add(1)
		return skipped{}
	}
	return http1.NewConn(&r.cfg.HTTP, r.httpStats, func(ex *http1.Exchange) { r.emit(id, ex) })
}

func (r *Recorder) emit(id flow.ConnID, ex *http1.Exchange) {
	client, server := id.A, id.B
	if ex.ClientDir == 1 {
		client, server = id.B, id.A
	}
	req := ex.Request
	if !r.admit(id, server, ex) {
		return
	}
	rec := record.Record{
		Method:         req.Method,
		Path:           req.Target,
		Proto:          req.Proto,
		RequestHeaders: req.Headers,
		RequestPayload: req.Body,
		ClientIP:       client.Addr(),
		ServerIP:       server.Addr(),
		Time:           unixSeconds(req.Time),
		AccountID:      r.cfg.AccountID,
		VNI:            id.VNI,
		Source:         r.cfg.Source,
	}
	if resp := ex.Response; resp != nil {
		rec.ResponseHeaders = resp.Headers
		rec.ResponsePayload = resp.Body
		rec.StatusCode = resp.StatusCode
		rec.Status = resp.Status
	} else {
		rec.Pending = true
	}
	rec.RequestHeaders, rec.RequestPayload = r.omitBody(rec.RequestHeaders, rec.RequestPayload)
	rec.ResponseHeaders, rec.ResponsePayload = r.omitBody(rec.ResponseHeaders, rec.ResponsePayload)
	size := 512 + len(req.Target) + len(req.Body) + headerSize(req.Headers)
	if ex.Response != nil {
		size += len(ex.Response.Body) + headerSize(ex.Response.Headers)
	}
	// The key goes after the value in the same buffer (96 bytes hold any
	// key), so that the publisher releases both with bufpool.Put(value).
	buf := bufpool.Get(min(size+size/8, r.cfg.MaxRecordBytes+1024) + 96)[:0]
	value, cut := record.Encode(buf, &rec, &r.opts)
	if len(value) > r.cfg.MaxRecordBytes {
		r.stats.TooLarge.Add(1)
		bufpool.Put(value)
		return
	}
	if cut {
		r.stats.Cut.Add(1)
	}
	key := record.AppendKey(value[len(value):], id.VNI, client, server)
	last := req.End
	if ex.Response != nil {
		last = ex.Response.End
	}
	if !r.pub.Publish(key, value, last) {
		r.stats.Refused.Add(1)
		return
	}
	r.stats.Records.Add(1)
	if rec.Pending {
		r.stats.Pending.Add(1)
	}
	if r.cfg.Observer != nil {
		r.cfg.Observer.Observe(Observation{
			VNI: id.VNI, Host: hostOf(req.Headers), Server: server, Method: req.Method, Target: req.Target,
			Status: rec.StatusCode, Pending: rec.Pending, Bytes: len(value), Time: req.Time,
		})
	}
}

// admit applies the volume rules to an exchange and counts what it drops.
func (r *Recorder) admit(id flow.ConnID, server netip.AddrPort, ex *http1.Exchange) bool {
	req := ex.Request
	var host string
	if r.rules.hostRules() {
		if host = HostOf(hostOf(req.Headers)); host == "" {
			host = server.Addr().Unmap().String()
		}
	}
	v := r.rules.request(req.Method, host, req.Target)
	if v == keep && ex.Response != nil {
		v = r.rules.status(ex.Response.StatusCode)
	}
	switch v {
	case dropMethod:
		r.stats.FilteredMethod.Add(1)
		return false
	case dropHost:
		r.stats.FilteredHost.Add(1)
		return false
	case dropPath:
		r.stats.FilteredPath.Add(1)
		return false
	case dropStatus:
		r.stats.FilteredStatus.Add(1)
		return false
	}
	if r.limiter != nil {
		now := req.Time
		if now.IsZero() {
			now = time.Now()
		}
		if !r.limiter.allow(id.VNI, now) {
			r.stats.RateLimited.Add(1)
			r.limited.Add(id.VNI, false, 0)
			return false
		}
	}
	return true
}

// omitBody leaves out a body of a content type in Volume.DropBodyTypes and
// adds BodyOmittedHeader to a copy of the headers (the parser's slice is
// not written to).
func (r *Recorder) omitBody(hs []record.Header, body []byte) ([]record.Header, []byte) {
	if len(body) == 0 {
		return hs, body
	}
	mt, drop := r.rules.dropBody(headerValue(hs, "content-type"))
	if !drop {
		return hs, body
	}
	r.stats.BodiesOmitted.Add(1)
	out := make([]record.Header, len(hs), len(hs)+1)
	copy(out, hs)
	return append(out, record.Header{Name: BodyOmittedHeader, Value: mt}), nil
}

// skipped is the handler of a connection sampled out.
type skipped struct{}

func (skipped) Data(int, []byte, time.Time) {}
func (skipped) Gap(int, int, time.Time)     {}
func (skipped) End(int, time.Time)          {}
func (skipped) Close(time.Time)             {}
func (skipped) Expire(time.Time)            {}
func (skipped) Skipping() bool              { return true }

// headerValue is the first value of the named header (lower case), "" when
// there is none.
func headerValue(hs []record.Header, name string) string {
	for _, h := range hs {
		if len(h.Name) == len(name) && strings.EqualFold(h.Name, name) {
			return strings.TrimSpace(h.Value)
		}
	}
	return ""
}

// hostOf is the value of the Host header, "" when there is none.
func hostOf(hs []record.Header) string {
	for _, h := range hs {
		if len(h.Name) == 4 && strings.EqualFold(h.Name, "host") {
			return strings.TrimSpace(h.Value)
		}
	}
	return ""
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func headerSize(hs []record.Header) int {
	n := 2
	for _, h := range hs {
		n += len(h.Name) + len(h.Value) + 8
	}
	return n
}
