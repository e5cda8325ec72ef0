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

	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
)

// Publisher takes ownership of key and value. It reports false when it
// dropped the record (and counted why).
type Publisher interface {
	Publish(key, value []byte) bool
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
	return errors.Join(errs...)
}

// Stats counts records. Safe for concurrent use.
type Stats struct {
	Records  atomic.Uint64 // published (handed to the publisher and accepted)
	Pending  atomic.Uint64 // of which without a response
	Cut      atomic.Uint64 // records whose bodies were cut to fit MaxRecordBytes
	TooLarge atomic.Uint64 // records dropped: too large even with empty bodies
	Refused  atomic.Uint64 // records the publisher dropped
}

// Each calls fn with every counter.
func (s *Stats) Each(fn func(name string, v uint64)) {
	fn("records", s.Records.Load())
	fn("records_pending", s.Pending.Load())
	fn("records_cut", s.Cut.Load())
	fn("records_too_large", s.TooLarge.Load())
	fn("records_refused", s.Refused.Load())
}

// Recorder makes the per-connection handlers. Its methods are safe for
// concurrent use by the reassembly workers.
type Recorder struct {
	cfg       Config
	opts      record.Options
	pub       Publisher
	stats     *Stats
	httpStats *http1.Stats
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
	return r, nil
}

// NewHandler is a flow.NewHandler: one HTTP parser per connection.
func (r *Recorder) NewHandler(id flow.ConnID) flow.Handler {
	return http1.NewConn(&r.cfg.HTTP, r.httpStats, func(ex *http1.Exchange) { r.emit(id, ex) })
}

func (r *Recorder) emit(id flow.ConnID, ex *http1.Exchange) {
	client, server := id.A, id.B
	if ex.ClientDir == 1 {
		client, server = id.B, id.A
	}
	req := ex.Request
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
	size := 512 + len(req.Target) + len(req.Body) + headerSize(req.Headers)
	if ex.Response != nil {
		size += len(ex.Response.Body) + headerSize(ex.Response.Headers)
	}
	value, cut := record.Encode(make([]byte, 0, min(size+size/8, r.cfg.MaxRecordBytes+1024)), &rec, &r.opts)
	if len(value) > r.cfg.MaxRecordBytes {
		r.stats.TooLarge.Add(1)
		return
	}
	if cut {
		r.stats.Cut.Add(1)
	}
	key := record.AppendKey(make([]byte, 0, 96), id.VNI, client, server)
	if !r.pub.Publish(key, value) {
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
