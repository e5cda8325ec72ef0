package kafkasink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/apitap/apitap/internal/contract"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Defaults applied to zero fields of Config.
const (
	DefaultTopic           = contract.DefaultTopic
	DefaultLinger          = 10 * time.Millisecond
	DefaultBatchSize       = 100
	DefaultBatchBytes      = 1 << 20
	DefaultCompression     = "lz4"
	DefaultRequiredAcks    = "all"
	DefaultMaxMessageBytes = 1000000
	DefaultQueueSize       = 10000
	DefaultQueueBytes      = 64 << 20
	DefaultWriteTimeout    = 10 * time.Second
	DefaultMaxAttempts     = 10
	DefaultProbeInterval   = 5 * time.Second
)

// RecordOverhead is the room the sink keeps for Kafka's record-batch framing
// (61-byte batch header, per-record varints, compression framing). A message
// is accepted only when len(key)+len(value) is at most
// min(BatchBytes, MaxMessageBytes) - RecordOverhead; see Sink.MaxPayload.
const RecordOverhead = 512

// minMessageBytes is the smallest MaxMessageBytes and BatchBytes accepted.
const minMessageBytes = 2 * RecordOverhead

// Config configures a Sink. The zero value works once Brokers is set: every
// zero field takes the default documented on it. A Config is read by New and
// not kept; changing it afterwards has no effect.
type Config struct {
	// Brokers are the bootstrap brokers, "host:port" each. Required.
	Brokers []string

	// Topic receives every record. Default "akto.api.logs".
	Topic string

	// Linger is how long the writer waits to fill a batch (kafka-go's
	// BatchTimeout). Default 10ms; kafka-go's own default of 1s is a known
	// pitfall.
	Linger time.Duration

	// BatchSize is the most messages in one produce batch per partition.
	// Default 100: kafka-go allocates a slice of BatchSize messages for
	// every partition batch, and BatchBytes bounds a batch anyway.
	BatchSize int

	// BatchBytes is the most bytes in one produce batch per partition.
	// Default 1 MiB. It is capped at MaxMessageBytes so that a batch never
	// exceeds the broker's limit. Minimum 1024.
	BatchBytes int64

	// Compression is the codec of produced batches: "lz4", "snappy", "gzip",
	// "zstd" or "none". Default "lz4".
	Compression string

	// RequiredAcks is how many replicas must acknowledge a write: "all"
	// (default), "one" or "none". It is always set explicitly on the kafka-go
	// Writer, whose zero value means none. With "none" a message counts as
	// delivered once it is sent.
	RequiredAcks string

	// MaxMessageBytes is the broker's message.max.bytes (or the topic's
	// max.message.bytes). Default 1000000. Messages whose key plus value
	// exceed min(BatchBytes, MaxMessageBytes) - RecordOverhead are dropped by
	// Publish and counted as dropped_too_large, so one oversized record never
	// fails the batch of its neighbours. The record encoder upstream cuts
	// bodies to fit. Minimum 1024.
	MaxMessageBytes int

	// QueueSize bounds, in messages, what the sink holds: messages waiting to
	// be handed to the writer plus those the writer has not completed.
	// Default 10000.
	QueueSize int

	// QueueBytes bounds the same messages by the sum of their key and value
	// lengths. Default 64 MiB. A single message is always accepted into an
	// empty queue, whatever its size.
	QueueBytes int64

	// Block makes Publish wait for room instead of dropping when the queue is
	// full (replay mode). Default false: drop and count.
	Block bool

	// TLS turns on TLS to the brokers. Default false. The TLS* fields below
	// apply only when it is on, and setting one of them without TLS is an
	// error.
	TLS bool
	// TLSCAFile is a PEM bundle of CAs to trust instead of the system pool.
	// Default: the system pool.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key, for
	// mutual TLS. Both or neither. Default: no client certificate.
	TLSCertFile, TLSKeyFile string
	// TLSInsecureSkipVerify skips verification of the broker's certificate.
	// Default false. For tests only.
	TLSInsecureSkipVerify bool
	// TLSServerName overrides the name checked against the broker's
	// certificate. Default: the host of the broker address.
	TLSServerName string

	// SASLMechanism is "" (no SASL, default), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512" (case does not matter). It needs SASLUsername.
	SASLMechanism string
	// SASLUsername and SASLPassword are the SASL credentials. Default empty.
	SASLUsername, SASLPassword string

	// Mechanism, when set, is the SASL mechanism used, overriding
	// SASLMechanism and the credentials (e.g. AWS MSK IAM). Default nil.
	Mechanism sasl.Mechanism

	// WriteTimeout bounds one produce request, and one metadata lookup, to
	// the broker. Default 10s.
	WriteTimeout time.Duration

	// MaxAttempts is how many times a batch is tried before its messages are
	// counted as failed. Default 10 (kafka-go's), with a backoff between
	// 100ms and 1s.
	MaxAttempts int

	// ProbeInterval is how often, while no write completes, the sink checks
	// that a broker answers (an ApiVersions request) for Ready. Default 5s.
	ProbeInterval time.Duration

	// Release, when set, is called once for every message given to Publish,
	// accepted or dropped, once the sink and the writer are done with its
	// bytes, so that the caller can reuse them (e.g. return them to a pool).
	// It is called from Publish and from the sink's and kafka-go's
	// goroutines, concurrently, and must not block.
	// Messages still inside the writer when Close gives up are released only
	// if the writer completes them later. Default nil: buffers are left to
	// the garbage collector.
	Release func(key, value []byte)

	// Logger receives the sink's logs (start, write errors rate-limited to one
	// line per 10s, recovery). Default slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy of c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.Linger == 0 {
		c.Linger = DefaultLinger
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = DefaultBatchBytes
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.RequiredAcks == "" {
		c.RequiredAcks = DefaultRequiredAcks
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueBytes == 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = DefaultProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports every problem with c, joined. Zero fields are valid: they
// take their defaults.
func (c *Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("kafka: "+format, args...)) }

	if len(d.Brokers) == 0 {
		bad("no brokers configured")
	}
	for _, b := range d.Brokers {
		if strings.TrimSpace(b) == "" {
			bad("empty broker address in %q", d.Brokers)
			break
		}
	}
	if _, err := compressionCodec(d.Compression); err != nil {
		errs = append(errs, err)
	}
	if _, err := requiredAcks(d.RequiredAcks); err != nil {
		errs = append(errs, err)
	}
	if d.Mechanism == nil {
		switch m := strings.ToUpper(d.SASLMechanism); m {
		case "":
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			if d.SASLUsername == "" {
				bad("SASL mechanism %s needs a username", m)
			}
		default:
			bad("unknown SASL mechanism %q (want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", d.SASLMechanism)
		}
	}
	if !d.TLS && (d.TLSCAFile != "" || d.TLSCertFile != "" || d.TLSKeyFile != "" || d.TLSServerName != "" || d.TLSInsecureSkipVerify) {
		bad("TLS options set but TLS is off")
	}
	if (d.TLSCertFile == "") != (d.TLSKeyFile == "") {
		bad("TLS client certificate needs both a cert file and a key file")
	}
	if d.Linger < 0 {
		bad("negative linger %v", d.Linger)
	}
	if d.WriteTimeout < 0 {
		bad("negative write timeout %v", d.WriteTimeout)
	}
	if d.ProbeInterval < 0 {
		bad("negative probe interval %v", d.ProbeInterval)
	}
	if d.BatchSize < 0 {
		bad("negative batch size %d", d.BatchSize)
	}
	if d.BatchBytes < minMessageBytes {
		bad("batch bytes %d below the minimum %d", d.BatchBytes, minMessageBytes)
	}
	if d.MaxMessageBytes < minMessageBytes {
		bad("max message bytes %d below the minimum %d", d.MaxMessageBytes, minMessageBytes)
	}
	if d.QueueSize < 0 {
		bad("negative queue size %d", d.QueueSize)
	}
	if d.QueueBytes < 0 {
		bad("negative queue bytes %d", d.QueueBytes)
	}
	if d.MaxAttempts < 0 {
		bad("negative max attempts %d", d.MaxAttempts)
	}
	return errors.Join(errs...)
}

func compressionCodec(name string) (kafka.Compression, error) {
	switch strings.ToLower(name) {
	case "lz4":
		return kafka.Lz4, nil
	case "snappy":
		return kafka.Snappy, nil
	case "gzip":
		return kafka.Gzip, nil
	case "zstd":
		return kafka.Zstd, nil
	case "none":
		return 0, nil
	}
	return 0, fmt.Errorf("kafka: unknown compression %q (want lz4, snappy, gzip, zstd, none)", name)
}

func requiredAcks(name string) (kafka.RequiredAcks, error) {
	switch strings.ToLower(name) {
	case "all":
		return kafka.RequireAll, nil
	case "one":
		return kafka.RequireOne, nil
	case "none":
		return kafka.RequireNone, nil
	}
	return 0, fmt.Errorf("kafka: unknown required acks %q (want all, one, none)", name)
}

// saslMechanism returns the mechanism c asks for, nil for none. c has its
// defaults applied and is valid.
func (c *Config) saslMechanism() (sasl.Mechanism, error) {
	if c.Mechanism != nil {
		return c.Mechanism, nil
	}
	switch strings.ToUpper(c.SASLMechanism) {
	case "PLAIN":
		return plain.Mechanism{Username: c.SASLUsername, Password: c.SASLPassword}, nil
	case "SCRAM-SHA-256":
		m, err := scram.Mechanism(scram.SHA256, c.SASLUsername, c.SASLPassword)
		if err != nil {
			return nil, fmt.Errorf("kafka: setting up SCRAM-SHA-256: %w", err)
		}
		return m, nil
	case "SCRAM-SHA-512":
		m, err := scram.Mechanism(scram.SHA512, c.SASLUsername, c.SASLPassword)
		if err != nil {
			return nil, fmt.Errorf("kafka: setting up SCRAM-SHA-512: %w", err)
		}
		return m, nil
	}
	return nil, nil
}

// tlsConfig loads the TLS files c names, nil when TLS is off. c has its
// defaults applied and is valid.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: reading TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: reading TLS CA file %s: no PEM certificates found", c.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: loading TLS client certificate %s: %w", c.TLSCertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
