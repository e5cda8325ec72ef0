package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/apiinventory"
	"github.com/apitap/apitap/internal/capture"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/kafkasink"
	"github.com/apitap/apitap/internal/recorder"
	"github.com/apitap/apitap/internal/vnicount"
)

// options is everything the command line sets. Each package validates its
// own part; main only checks how the parts fit together.
type options struct {
	intakeWait    bool // live: readers wait for the workers (-intake-wait)
	pcap          string
	kafka         string // "embedded", "none" or a broker list
	embeddedAddr  string
	mskIAM        bool // -kafka-sasl AWS_MSK_IAM: signed with the AWS credentials of the host
	embeddedBytes int64
	out           string
	healthAddr    string
	adminAddr     string
	shutdown      time.Duration
	logLevel      string
	logFormat     string
	redact        string
	pendingPolicy string
	// Volume control (recorder.Volume): lists as given on the command line.
	sampleRate                                             float64
	includeHosts, excludeHosts, includePaths, excludePaths string
	methods, excludeStatus, dropBodyTypes                  string
	// cpuProfile: write a CPU profile of the whole run to this file.
	cpuProfile string
	// checkConfig: print the effective settings and exit (-check-config).
	checkConfig bool
	// printInventory: after a replay, print the API inventory on stdout.
	printInventory bool
	// inventoryOff: -inventory-max-endpoints 0 keeps no inventory.
	inventoryOff bool
	// memoryLimit is -memory-limit: the budget the memory limits not set
	// explicitly are derived from (sniffer/memory.go).
	memoryLimit int64
	bodyMemory  int64
	evictIdle   time.Duration
	// effective are the settings after flags and environment, one
	// ENV=value line per flag, secrets masked.
	effective []string

	live      capture.LiveConfig
	flow      flow.Config
	recorder  recorder.Config
	kafkaCfg  kafkasink.Config
	vnis      vnicount.Config
	inventory apiinventory.Config
}

// bytesFlag accepts sizes such as 1048576, 64KiB, 1MiB or 2GiB.
type bytesFlag struct{ p *int64 }

func (b bytesFlag) String() string {
	if b.p == nil {
		return "0"
	}
	return formatBytes(*b.p)
}

func (b bytesFlag) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b.p = v
	return nil
}

func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	var v int64
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || v < 0 || fmt.Sprint(v) != s {
		return 0, fmt.Errorf("invalid size %q (want a number of bytes, optionally with KiB, MiB or GiB)", s)
	}
	return v * mult, nil
}

func formatBytes(v int64) string {
	switch {
	case v != 0 && v%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", v>>30)
	case v != 0 && v%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", v>>20)
	case v != 0 && v%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", v>>10)
	}
	return fmt.Sprint(v)
}

// envName is the environment variable that sets a flag.
func envName(flagName string) string { return contract.SnifferEnv(flagName) }

// parseFlags fills options from args, with SNIFFER_<FLAG> environment
// variables as fallbacks: a flag on the command line wins.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sniffer", flag.ContinueOnError)
	fs.SetOutput(stderr)

	fs.BoolVar(&o.checkConfig, "check-config", false, "check the flags and SNIFFER_* environment, print the effective setting of every flag and exit (0 when valid, 2 when not)")
	fs.StringVar(&o.pcap, "pcap", "", "replay this pcap or pcapng file instead of listening, then exit")
	fs.StringVar(&o.kafka, "kafka", "embedded", `where records go: "embedded" (an in-process broker), "none" (only -out), or bootstrap brokers "host:port,host:port"`)
	fs.StringVar(&o.embeddedAddr, "embedded-addr", "127.0.0.1:9092", "listen address of the in-process broker (-kafka embedded, live mode)")
	o.embeddedBytes = 64 << 20
	fs.Var(bytesFlag{&o.embeddedBytes}, "embedded-max-bytes", "records the in-process broker keeps in live mode (the newest; older ones are dropped)")
	fs.StringVar(&o.out, "out", "", `also write each record as a JSON line to this file; "-" is standard output`)
	fs.StringVar(&o.healthAddr, "health-addr", ":8081", "TCP address answering the load balancer's health check; empty to disable")
	fs.StringVar(&o.adminAddr, "admin-addr", ":9090", "HTTP address serving /healthz, /readyz, /metrics and /inventory; empty to disable")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 20*time.Second, "on SIGTERM, time allowed to flush connections and the Kafka queue")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.IntVar(&o.vnis.MaxVNIs, "max-vnis", vnicount.DefaultMaxVNIs, "VNIs counted separately on /metrics (records, pairs, bytes per VNI); records of later VNIs are counted as vni=\"other\"")
	fs.IntVar(&o.inventory.MaxEndpoints, "inventory-max-endpoints", apiinventory.DefaultMaxEndpoints, "endpoints (VNI, host, method, path template) kept for /inventory; records of further endpoints are counted as dropped; 0 keeps no inventory")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file, closed at exit; for benchmarks")
	fs.BoolVar(&o.printInventory, "print-inventory", false, "with -pcap: print the API inventory (the /inventory JSON) on standard output after the replay")

	// Capture.
	fs.StringVar(&o.live.Addr, "listen", ":4789", "UDP address receiving VXLAN-encapsulated mirrored packets")
	fs.IntVar(&o.live.Sockets, "sockets", 2, "number of SO_REUSEPORT sockets (one reader goroutine each)")
	rcvbuf := int64(64 << 20)
	fs.Var(bytesFlag{&rcvbuf}, "rcvbuf", "SO_RCVBUF asked for each socket (the kernel may cap it at net.core.rmem_max)")
	fs.DurationVar(&o.live.FlushInterval, "flush-interval", 5*time.Millisecond, "longest time a received packet waits before reassembly")
	fs.IntVar(&o.live.ReadBatch, "read-batch", capture.DefaultReadBatch, fmt.Sprintf("datagrams read per system call (recvmmsg), 1 to %d; each socket holds this many 64 KiB buffers", capture.MaxReadBatch))
	fs.BoolVar(&o.intakeWait, "intake-wait", true, "live: the socket readers wait for the reassembly workers, so that a burst waits in the socket buffer (-rcvbuf) and what overflows it is counted by the kernel (apitap_sniffer_capture_kernel_drops_total); false: packets a busy worker cannot take are dropped at once (flow_queue_drops)")

	// Memory.
	o.memoryLimit = defaultMemLimit
	fs.Var(bytesFlag{&o.memoryLimit}, contract.SnifferFlagMemoryLimit, "memory the process keeps to: the runtime's memory limit (unless GOMEMLIMIT is set), new connections shed once the live heap passes 5/8 of it, and the defaults of -max-conns, -total-buffer, -max-body-memory and -kafka-queue-bytes derived from it")
	o.evictIdle, _ = time.ParseDuration(defaultEvictIdle)
	fs.DurationVar(&o.evictIdle, "evict-idle", o.evictIdle, "when -max-conns or the memory limit is reached, a new connection takes the place of the least recently seen one if that one has been idle this long; 0: never, new connections are refused")
	derived := deriveMemoryDefaults(defaultMemLimit)

	// Reassembly.
	fs.IntVar(&o.flow.Workers, "workers", 0, "reassembly workers (0: GOMAXPROCS)")
	fs.IntVar(&o.flow.MaxConns, "max-conns", derived.MaxConns, "TCP connections tracked at once; beyond, the least recently seen is evicted if idle for -evict-idle, or the new one is dropped, counted either way (default: 1 per 4 KiB of -memory-limit)")
	connBuf := int64(256 << 10)
	fs.Var(bytesFlag{&connBuf}, "conn-buffer", "out-of-order bytes buffered per connection")
	o.flow.MaxBufferBytes = derived.TotalBuffer
	fs.Var(bytesFlag{&o.flow.MaxBufferBytes}, "total-buffer", "out-of-order bytes buffered in total (default: -memory-limit / 8)")
	fs.DurationVar(&o.flow.ReorderWindow, "reorder-window", 500*time.Millisecond, "how long a hole in a TCP stream waits for its bytes before they count as lost")
	fs.DurationVar(&o.flow.IdleTimeout, "idle-timeout", 2*time.Minute, "connections without packets for this long are closed")

	// HTTP and records.
	maxBody := int64(1 << 20)
	fs.Var(bytesFlag{&maxBody}, "max-body", "body bytes kept per message after decoding; the rest is cut and counted")
	o.bodyMemory = derived.BodyMemory
	fs.Var(bytesFlag{&o.bodyMemory}, "max-body-memory", "body bytes held by all connections together (requests awaiting responses, messages being read); beyond, bodies are cut and counted (default: -memory-limit / 8)")
	maxHeader := int64(64 << 10)
	fs.Var(bytesFlag{&maxHeader}, "max-header", "largest request or status line plus headers")
	fs.IntVar(&o.recorder.HTTP.MaxPending, "max-pending", 64, "requests awaiting a response per connection")
	fs.DurationVar(&o.recorder.HTTP.PendingTimeout, "pending-timeout", 30*time.Second, "a request without a response after this long is pending")
	fs.StringVar(&o.pendingPolicy, "pending", "emit", `what to do with pending requests: "emit" (is_pending "true") or "drop"`)
	fs.BoolVar(&o.recorder.HTTP.Decompress, "decompress", true, "decode gzip and deflate bodies (under -max-body)")
	fs.StringVar(&o.recorder.AccountID, "account-id", "1000000", "akto_account_id of every record")
	fs.StringVar(&o.redact, "redact-headers", "", `comma-separated header names whose values are replaced by "****", e.g. "authorization,cookie,set-cookie"`)

	// Volume control (README "Volume control").
	fs.Float64Var(&o.sampleRate, contract.SnifferFlagSampleRate, 1, "share of connections recorded, 0 to 1, decided by a hash of the VNI and both endpoints (the same for both directions); the others are not parsed")
	fs.StringVar(&o.includeHosts, contract.SnifferFlagIncludeHosts, "", `comma-separated globs ('*' matches any characters): only requests whose Host (without port, any case) matches one are recorded, e.g. "*.example.com"`)
	fs.StringVar(&o.excludeHosts, contract.SnifferFlagExcludeHosts, "", "comma-separated globs: requests whose Host matches one are not recorded")
	fs.StringVar(&o.includePaths, contract.SnifferFlagIncludePaths, "", `comma-separated globs over the path without query: only matching requests are recorded, e.g. "/api/*"`)
	fs.StringVar(&o.excludePaths, contract.SnifferFlagExcludePaths, "", `comma-separated globs over the path without query: matching requests are not recorded, e.g. "/health*,/metrics"`)
	fs.StringVar(&o.methods, contract.SnifferFlagMethods, "", `comma-separated methods: only these are recorded, e.g. "GET,POST"`)
	fs.StringVar(&o.excludeStatus, contract.SnifferFlagExcludeStatus, "", `comma-separated status classes or codes not recorded, e.g. "4xx,5xx" or "404"`)
	fs.StringVar(&o.dropBodyTypes, contract.SnifferFlagDropBodyTypes, strings.Join(recorder.DefaultDropBodyTypes, ","), `comma-separated media type globs whose bodies are left out of the record (which says so in the header `+recorder.BodyOmittedHeader+`); "none" keeps all bodies`)
	fs.Float64Var(&o.recorder.Volume.VNIRateLimit, contract.SnifferFlagVNIRateLimit, 0, "records per second (of capture time) each VNI may publish; beyond, records are dropped and counted per VNI; 0: no limit")
	fs.IntVar(&o.recorder.Volume.VNIRateBurst, contract.SnifferFlagVNIRateBurst, 0, "records a VNI may publish at once above -vni-rate-limit (0: the rate rounded up)")

	// Kafka.
	fs.StringVar(&o.kafkaCfg.Topic, contract.SnifferFlagTopic, contract.DefaultTopic, "Kafka topic of the records")
	fs.DurationVar(&o.kafkaCfg.Linger, "kafka-linger", 10*time.Millisecond, "time a batch waits to fill")
	fs.IntVar(&o.kafkaCfg.BatchSize, "kafka-batch-size", 100, "messages per batch (kafka-go allocates this many slots per partition batch; -kafka-batch-bytes bounds batches too)")
	o.kafkaCfg.BatchBytes = 1 << 20
	fs.Var(bytesFlag{&o.kafkaCfg.BatchBytes}, "kafka-batch-bytes", "bytes per batch")
	fs.StringVar(&o.kafkaCfg.Compression, "kafka-compression", "lz4", "lz4, snappy, gzip, zstd or none")
	fs.StringVar(&o.kafkaCfg.RequiredAcks, "kafka-acks", "all", "all, one or none")
	fs.IntVar(&o.kafkaCfg.MaxMessageBytes, "kafka-max-message-bytes", 1000000, "the broker's message.max.bytes: larger records have their bodies cut to fit")
	fs.IntVar(&o.kafkaCfg.QueueSize, "kafka-queue", 10000, "records held for Kafka; beyond, new records are dropped and counted")
	o.kafkaCfg.QueueBytes = derived.KafkaQueueBytes
	fs.Var(bytesFlag{&o.kafkaCfg.QueueBytes}, "kafka-queue-bytes", "bytes held for Kafka (default: -memory-limit / 4)")
	fs.DurationVar(&o.kafkaCfg.WriteTimeout, "kafka-write-timeout", 10*time.Second, "timeout of one produce request")
	fs.BoolVar(&o.kafkaCfg.TLS, "kafka-tls", false, "connect to the brokers with TLS")
	fs.StringVar(&o.kafkaCfg.TLSCAFile, "kafka-tls-ca", "", "PEM file of CAs to trust (default: system pool)")
	fs.StringVar(&o.kafkaCfg.TLSCertFile, "kafka-tls-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&o.kafkaCfg.TLSKeyFile, "kafka-tls-key", "", "PEM key of -kafka-tls-cert")
	fs.BoolVar(&o.kafkaCfg.TLSInsecureSkipVerify, "kafka-tls-insecure", false, "do not verify the broker's certificate (tests only)")
	fs.StringVar(&o.kafkaCfg.SASLMechanism, "kafka-sasl", "", "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or AWS_MSK_IAM (Amazon MSK IAM with the instance role; needs -kafka-tls)")
	fs.StringVar(&o.kafkaCfg.SASLUsername, "kafka-username", "", "SASL user name")
	fs.StringVar(&o.kafkaCfg.SASLPassword, "kafka-password", "", "SASL password (prefer the environment variable SNIFFER_KAFKA_PASSWORD)")

	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sniffer [flags]\n\n"+
			"Receives AWS Traffic Mirroring packets (VXLAN on UDP 4789), pairs HTTP/1.x\n"+
			"requests with responses and publishes one Akto record per pair to Kafka.\n"+
			"Every flag can also be set with the environment variable shown; a flag on\n"+
			"the command line wins.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			if _, ok := f.Value.(bytesFlag); ok {
				name = "size"
			}
			fmt.Fprintf(stderr, "  -%s %s\t(env %s)\n    \t%s", f.Name, name, envName(f.Name), usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(stderr, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}

	var envErrs []error
	explicit := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			explicit[f.Name] = true
			if err := f.Value.Set(v); err != nil {
				envErrs = append(envErrs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(envErrs...); err != nil {
		return nil, err
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if l, ok := budgetFromGOMEMLIMIT(getenv("GOMEMLIMIT")); ok && !explicit[contract.SnifferFlagMemoryLimit] {
		// The operator's runtime limit wins (applyMemoryLimit): the limits
		// derived from the budget follow it too, or together they could
		// exceed it.
		o.memoryLimit = l
	}
	// The memory limits not set explicitly follow -memory-limit.
	derived = deriveMemoryDefaults(o.memoryLimit)
	if !explicit["max-conns"] {
		o.flow.MaxConns = derived.MaxConns
	}
	if !explicit["total-buffer"] {
		o.flow.MaxBufferBytes = derived.TotalBuffer
	}
	if !explicit["max-body-memory"] {
		o.bodyMemory = derived.BodyMemory
	}
	if !explicit["kafka-queue-bytes"] {
		o.kafkaCfg.QueueBytes = derived.KafkaQueueBytes
	}
	o.flow.EvictIdle = o.evictIdle
	if o.evictIdle == 0 {
		o.flow.EvictIdle = -1 // flow: negative is never
	}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "check-config" {
			return
		}
		v := f.Value.String()
		if f.Name == contract.SnifferFlagPassword && v != "" {
			v = "****"
		}
		o.effective = append(o.effective, envName(f.Name)+"="+v)
	})

	o.live.ReadBuffer = int(rcvbuf)
	o.flow.MaxConnBufferBytes = int(connBuf)
	o.recorder.HTTP.MaxBodyBytes = int(maxBody)
	o.recorder.HTTP.MaxHeaderBytes = int(maxHeader)
	if o.bodyMemory > 0 {
		o.recorder.HTTP.Budget = http1.NewBudget(o.bodyMemory)
	}
	o.recorder.MaxRecordBytes = o.kafkaCfg.MaxMessageBytes
	if o.redact != "" {
		for _, name := range strings.Split(o.redact, ",") {
			o.recorder.Redact = append(o.recorder.Redact, strings.TrimSpace(name))
		}
	}
	v := &o.recorder.Volume
	v.SampleOut = 1 - o.sampleRate
	v.IncludeHosts, v.ExcludeHosts = splitList(o.includeHosts), splitList(o.excludeHosts)
	v.IncludePaths, v.ExcludePaths = splitList(o.includePaths), splitList(o.excludePaths)
	v.Methods, v.ExcludeStatus = splitList(o.methods), splitList(o.excludeStatus)
	if !strings.EqualFold(strings.TrimSpace(o.dropBodyTypes), "none") {
		v.DropBodyTypes = splitList(o.dropBodyTypes)
	}
	v.MaxVNIs = o.vnis.MaxVNIs
	return o, o.validate()
}

// splitList splits a comma-separated flag, dropping spaces and empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (o *options) replay() bool { return o.pcap != "" }

func (o *options) brokers() []string {
	var bs []string
	for _, b := range strings.Split(o.kafka, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bs = append(bs, b)
		}
	}
	return bs
}

// validate checks how the options fit together; each package's Validate
// checks its own part.
func (o *options) validate() error {
	var errs []error
	switch o.pendingPolicy {
	case "emit":
		o.recorder.HTTP.EmitPending = true
	case "drop":
		o.recorder.HTTP.EmitPending = false
	default:
		errs = append(errs, fmt.Errorf("-pending %q: want emit or drop", o.pendingPolicy))
	}
	switch o.logFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("-log-format %q: want text or json", o.logFormat))
	}
	if o.kafka == "none" && o.out == "" {
		errs = append(errs, errors.New("-kafka none needs -out FILE or -out - : records would go nowhere"))
	}
	if o.kafka != "none" && o.kafka != "embedded" {
		for _, b := range o.brokers() {
			if !strings.Contains(b, ":") {
				errs = append(errs, fmt.Errorf("-kafka: broker %q has no port (want host:port)", b))
			}
		}
		if len(o.brokers()) == 0 {
			errs = append(errs, errors.New("-kafka: no brokers given"))
		}
	}
	if strings.EqualFold(o.kafkaCfg.SASLMechanism, "AWS_MSK_IAM") {
		o.mskIAM = true
		o.kafkaCfg.SASLMechanism = "" // the sink takes the mechanism itself (newSniffer)
		if !o.kafkaCfg.TLS {
			errs = append(errs, errors.New("-kafka-sasl AWS_MSK_IAM needs -kafka-tls (MSK serves IAM on its TLS port 9098)"))
		}
	}
	if o.printInventory && !o.replay() {
		errs = append(errs, errors.New("-print-inventory needs -pcap (live, the inventory is on the admin address: GET /inventory)"))
	}
	if o.inventory.MaxEndpoints == 0 {
		o.inventoryOff = true
		if o.printInventory {
			errs = append(errs, errors.New("-print-inventory needs an inventory: -inventory-max-endpoints is 0"))
		}
	}
	if !(o.sampleRate >= 0 && o.sampleRate <= 1) {
		errs = append(errs, fmt.Errorf("-sample-rate %v: want 0 to 1", o.sampleRate))
	}
	if err := validateMemoryLimit(o.memoryLimit); err != nil {
		errs = append(errs, err)
	}
	if o.evictIdle < 0 {
		errs = append(errs, fmt.Errorf("-evict-idle %v: want 0 (never) or more", o.evictIdle))
	}
	if o.live.ReadBatch < 1 || o.live.ReadBatch > capture.MaxReadBatch {
		// 0 would mean the default to capture.LiveConfig: refuse it here.
		errs = append(errs, fmt.Errorf("-read-batch %d: want 1 to %d", o.live.ReadBatch, capture.MaxReadBatch))
	}
	if o.shutdown <= 0 {
		errs = append(errs, errors.New("-shutdown-timeout must be positive"))
	}
	o.recorder.Source = "MIRRORING"
	o.flow.Block = o.intakeWait
	if o.replay() {
		o.recorder.Source = "PCAP"
		o.flow.Block = true
		o.kafkaCfg.Block = true
	}
	if !o.replay() {
		errs = append(errs, o.live.Validate())
	}
	errs = append(errs, o.flow.Validate(), o.recorder.Validate(), o.vnis.Validate(), o.inventory.Validate())
	return errors.Join(errs...)
}
