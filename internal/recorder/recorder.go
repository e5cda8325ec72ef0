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
// value) once done with both. It reports false when it dropped the record
// (and counted why). last is the capture time of the
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
	h := &connRules{r: r, id: id}
	c := http1.NewConn(&r.cfg.HTTP, r.httpStats, h.emit)
	c.SetFilter(h)
	return c
}

// connRules is what the recorder knows of one connection: it applies the
// volume rules as the parser reads each head (http1.Filter), so that an
// exchange left out costs no body copy or decoding, and encodes the rest.
type connRules struct {
	r  *Recorder
	id flow.ConnID
}

func (h *connRules) endpoints(clientDir int) (client, server netip.AddrPort) {
	if clientDir == 1 {
		return h.id.B, h.id.A
	}
	return h.id.A, h.id.B
}

// Request applies the method, host and path rules, and the body content
// types, to a request head.
func (h *connRules) Request(clientDir int, req *http1.Message) http1.Verdict {
	r := h.r
	var host string
	if r.rules.hostRules() {
		if host = HostOf(hostOf(req.Headers)); host == "" {
			_, server := h.endpoints(clientDir)
			host = server.Addr().Unmap().String()
		}
	}
	switch r.rules.request(req.Method, host, req.Target) {
	case dropMethod:
		r.stats.FilteredMethod.Add(1)
		return http1.Drop
	case dropHost:
		r.stats.FilteredHost.Add(1)
		return http1.Drop
	case dropPath:
		r.stats.FilteredPath.Add(1)
		return http1.Drop
	}
	return r.bodyVerdict(req)
}

// Response applies the status rule, the rate limit and the body content
// types to a response head.
func (h *connRules) Response(req, resp *http1.Message) http1.Verdict {
	r := h.r
	if r.rules.status(resp.StatusCode) == dropStatus {
		r.stats.FilteredStatus.Add(1)
		return http1.Drop
	}
	if !r.allow(h.id.VNI, req.Time) {
		return http1.Drop
	}
	return r.bodyVerdict(resp)
}

// bodyVerdict keeps only the head of a message whose body is of a content
// type in Volume.DropBodyTypes.
func (r *Recorder) bodyVerdict(m *http1.Message) http1.Verdict {
	if _, drop := r.rules.dropBody(headerValue(m.Headers, "content-type")); drop {
		return http1.KeepHead
	}
	return http1.Keep
}

// allow applies the per-VNI rate limit, counting what it drops.
func (r *Recorder) allow(vni uint32, now time.Time) bool {
	if r.limiter == nil {
		return true
	}
	if now.IsZero() {
		now = time.Now()
	}
	if !r.limiter.allow(vni, now) {
		r.stats.RateLimited.Add(1)
		r.limited.Add(vni, false, 0)
		return false
	}
	return true
}

// emit encodes and publishes an exchange the rules kept.
func (h *connRules) emit(ex *http1.Exchange) {
	r, id := h.r, h.id
	client, server := h.endpoints(ex.ClientDir)
	req := ex.Request
	if ex.Response == nil && !r.allow(id.VNI, req.Time) {
		return // pending: the rate limit had no response head to act on
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
	last := req.End
	rec.RequestHeaders = r.markOmitted(req)
	if resp := ex.Response; resp != nil {
		rec.ResponseHeaders = r.markOmitted(resp)
		rec.ResponsePayload = resp.Body
		rec.StatusCode = resp.StatusCode
		rec.Status = resp.Status
		last = resp.End
	} else {
		rec.Pending = true
	}
	size := 512 + len(req.Target) + len(req.Body) + headerSize(req.Headers)
	if ex.Response != nil {
		size += len(ex.Response.Body) + headerSize(ex.Response.Headers)
	}
	// The key goes after the value in the same buffer (96 bytes hold any
	// key), so that the publisher releases both with bufpool.Put(value).
	value, cut := record.Encode(bufpool.Get(min(size+size/8, r.cfg.MaxRecordBytes+1024) + 96)[:0], &rec, &r.opts)
	if len(value) > r.cfg.MaxRecordBytes {
		r.stats.TooLarge.Add(1)
		bufpool.Put(value)
		return
	}
	if cut {
		r.stats.Cut.Add(1)
	}
	key := record.AppendKey(value[len(value):], id.VNI, client, server)
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

// markOmitted returns the headers of m, with BodyOmittedHeader added to a
// copy (the parser's slice is not written to) when its body was left out
// for its content type.
func (r *Recorder) markOmitted(m *http1.Message) []record.Header {
	if !m.BodyOmitted {
		return m.Headers
	}
	mt, _ := r.rules.dropBody(headerValue(m.Headers, "content-type"))
	r.stats.BodiesOmitted.Add(1)
	out := make([]record.Header, len(m.Headers), len(m.Headers)+1)
	copy(out, m.Headers)
	return append(out, record.Header{Name: BodyOmittedHeader, Value: mt})
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
