// Package kafkatest starts a real single-node Apache Kafka broker (KRaft
// mode, broker and controller in one JVM) for tests, from the jars that
// scripts/test-deps.sh caches, and reads topics back with kcat, a client
// nobody in this project wrote.
//
// A Broker is started by Start and stopped by Stop (also registered with
// t.Cleanup); its data directory is removed on Stop. The broker's stdout
// and stderr go to a log file that is printed when the test fails.
package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Config says how to start a broker. The zero value works: a broker on
// 127.0.0.1:9092 (controller on 127.0.0.1:9093) in the current network
// namespace.
type Config struct {
	// Addr is the host:port of the PLAINTEXT listener. Default 127.0.0.1:9092.
	Addr string
	// ControllerAddr is the host:port of the KRaft controller listener.
	// Default: Addr's host, port+1.
	ControllerAddr string
	// Netns, when set, is the network namespace (ip netns name) the broker
	// and every kcat call run in.
	Netns string
	// LibsDir holds the broker's jars. Default: $APITAP_KAFKA_LIBS, else
	// ${APITAP_CACHE:-$HOME/.cache/apitap}/kafka-<version>/libs with the
	// version read from tests/kafka/pom.xml.
	LibsDir string
	// Java is the java binary. Default: $JAVA_HOME/bin/java, else java on PATH.
	Java string
	// Partitions is num.partitions for auto-created topics. Default 1.
	Partitions int
	// StartTimeout bounds the wait for the broker to serve. Default 90s.
	StartTimeout time.Duration
	// ExtraProperties are appended to server.properties.
	ExtraProperties map[string]string
	// SASLSSL, when set, adds a SASL_SSL listener. Default none.
	SASLSSL *SASLSSL
	// RdkafkaDir holds the librdkafka.so.1 that kcat loads to talk SASL
	// (see scripts/test-deps.sh: Debian's fails SCRAM against Kafka 4).
	// Default: $APITAP_LIBRDKAFKA, else the newest
	// ${APITAP_CACHE:-$HOME/.cache/apitap}/librdkafka-<version>.
	RdkafkaDir string
}

// SASLSSL is a listener with TLS and SASL/SCRAM-SHA-512, as production
// brokers serve clients (Amazon MSK's port 9096). The PLAINTEXT listener
// stays: the controller, inter-broker traffic and the readiness checks of
// this package use it.
type SASLSSL struct {
	// Addr is the listener's host:port. Required.
	Addr string
	// CertFile is the broker's PEM certificate (and chain), KeyFile its
	// unencrypted PKCS#8 PEM key (see CA.Issue). Required.
	CertFile, KeyFile string
	// Users are the SCRAM-SHA-512 users and their passwords, created when
	// the storage is formatted. At least one: the first by name checks the
	// listener at start.
	Users map[string]string
}

// Broker is a running broker.
type Broker struct {
	// Addr is the bootstrap address of the PLAINTEXT listener.
	Addr string
	// SASLSSLAddr is the bootstrap address of the SASL_SSL listener, empty
	// without one.
	SASLSSLAddr string
	// LogPath is the file that receives the broker's stdout and stderr.
	LogPath string

	cfg     Config
	dir     string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stopped bool
	tb      testing.TB
}

// Start formats a fresh KRaft storage directory and starts the broker,
// waiting until it serves metadata and a topic can be created. It fails tb
// on error and registers Stop with tb.Cleanup.
func Start(tb testing.TB, cfg Config) *Broker {
	tb.Helper()
	b, err := start(tb, cfg)
	if err != nil {
		tb.Fatalf("starting kafka broker: %v", err)
	}
	return b
}

func start(tb testing.TB, cfg Config) (*Broker, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:9092"
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("addr %q: %w", cfg.Addr, err)
	}
	if cfg.ControllerAddr == "" {
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("addr %q: %w", cfg.Addr, err)
		}
		cfg.ControllerAddr = net.JoinHostPort(host, strconv.Itoa(p+1))
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 90 * time.Second
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if cfg.LibsDir == "" {
		cfg.LibsDir, err = DefaultLibsDir(root)
		if err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.LibsDir)); err != nil {
		return nil, fmt.Errorf("kafka jars not found (%v): run scripts/test-deps.sh first", err)
	}
	if cfg.Java == "" {
		cfg.Java = "java"
		if jh := os.Getenv("JAVA_HOME"); jh != "" {
			cfg.Java = filepath.Join(jh, "bin", "java")
		}
	}
	if _, err := exec.LookPath(cfg.Java); err != nil {
		return nil, fmt.Errorf("java: %v: run scripts/test-deps.sh first", err)
	}
	if _, err := exec.LookPath("kcat"); err != nil {
		return nil, fmt.Errorf("kcat: %v: run scripts/test-deps.sh first", err)
	}

	dir, err := os.MkdirTemp("", "apitap-kafka-")
	if err != nil {
		return nil, err
	}
	if s := cfg.SASLSSL; s != nil {
		if s.Addr == "" || s.CertFile == "" || s.KeyFile == "" || len(s.Users) == 0 {
			return nil, errors.New("SASLSSL needs Addr, CertFile, KeyFile and at least one user")
		}
		if cfg.RdkafkaDir == "" {
			if cfg.RdkafkaDir, err = defaultRdkafkaDir(); err != nil {
				return nil, err
			}
		}
		if _, err := os.Stat(filepath.Join(cfg.RdkafkaDir, "librdkafka.so.1")); err != nil {
			return nil, fmt.Errorf("librdkafka for kcat over SASL not found (%v): run scripts/test-deps.sh first", err)
		}
	}
	b := &Broker{
		Addr:    cfg.Addr,
		LogPath: filepath.Join(dir, "broker.log"),
		cfg:     cfg,
		dir:     dir,
		done:    make(chan struct{}),
		tb:      tb,
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			b.dumpLog()
		}
		if err := b.Stop(); err != nil {
			tb.Logf("stopping kafka broker: %v", err)
		}
	})

	props := map[string]string{
		"process.roles":                                    "broker,controller",
		"node.id":                                          "1",
		"listeners":                                        "PLAINTEXT://" + cfg.Addr + ",CONTROLLER://" + cfg.ControllerAddr,
		"advertised.listeners":                             "PLAINTEXT://" + cfg.Addr,
		"controller.listener.names":                        "CONTROLLER",
		"inter.broker.listener.name":                       "PLAINTEXT",
		"listener.security.protocol.map":                   "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.quorum.voters":                         "1@" + cfg.ControllerAddr,
		"log.dirs":                                         filepath.Join(dir, "data"),
		"num.partitions":                                   strconv.Itoa(cfg.Partitions),
		"auto.create.topics.enable":                        "true",
		"offsets.topic.replication.factor":                 "1",
		"offsets.topic.num.partitions":                     "1",
		"transaction.state.log.replication.factor":         "1",
		"transaction.state.log.min.isr":                    "1",
		"transaction.state.log.num.partitions":             "1",
		"share.coordinator.state.topic.replication.factor": "1",
		"share.coordinator.state.topic.min.isr":            "1",
		"group.initial.rebalance.delay.ms":                 "0",
		"num.network.threads":                              "2",
		"num.io.threads":                                   "2",
		"background.threads":                               "2",
		"log.flush.interval.ms":                            "1000",
		"message.max.bytes":                                "10485760",
	}
	var formatArgs []string
	if s := cfg.SASLSSL; s != nil {
		b.SASLSSLAddr = s.Addr
		// Kafka's PEM key store is one file: the key, then the chain.
		keystore := filepath.Join(dir, "keystore.pem")
		if err := concatFiles(keystore, s.KeyFile, s.CertFile); err != nil {
			return nil, err
		}
		props["listeners"] = "PLAINTEXT://" + cfg.Addr + ",SASL_SSL://" + s.Addr + ",CONTROLLER://" + cfg.ControllerAddr
		props["advertised.listeners"] = "PLAINTEXT://" + cfg.Addr + ",SASL_SSL://" + s.Addr
		props["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
		props["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
		props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
		props["listener.name.sasl_ssl.ssl.keystore.type"] = "PEM"
		props["listener.name.sasl_ssl.ssl.keystore.location"] = keystore
		for _, u := range slices.Sorted(maps.Keys(s.Users)) {
			cred, err := scramCredential(u, s.Users[u])
			if err != nil {
				return nil, err
			}
			formatArgs = append(formatArgs, "--add-scram", cred)
		}
	}
	for k, v := range cfg.ExtraProperties {
		props[k] = v
	}
	var sp strings.Builder
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&sp, "%s=%s\n", k, props[k])
	}
	propsPath := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsPath, []byte(sp.String()), 0o644); err != nil {
		return nil, err
	}

	logf, err := os.Create(b.LogPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child keeps its own descriptor

	jvm := []string{
		"-Xmx512m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Xshare:auto", "-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=" + filepath.Join(root, "tests", "kafka", "log4j2.properties"),
		"-Dkafka.logs.dir=" + dir,
		"-cp", filepath.Join(cfg.LibsDir, "*"),
	}

	// Format the storage directory with a random cluster id.
	clusterID := randomClusterID()
	format := b.command(cfg.Java, append(append([]string{}, jvm...),
		append([]string{"kafka.tools.StorageTool", "format", "-t", clusterID, "-c", propsPath}, formatArgs...)...)...)
	format.Stdout, format.Stderr = logf, logf
	if err := format.Run(); err != nil {
		return nil, fmt.Errorf("formatting storage: %v\n%s", err, readTail(b.LogPath, 4000))
	}

	cmd := b.command(cfg.Java, append(append([]string{}, jvm...), "kafka.Kafka", propsPath)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting java: %v", err)
	}
	b.cmd = cmd
	go func() {
		b.waitErr = cmd.Wait()
		close(b.done)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), cfg.StartTimeout)
	defer cancel()
	if err := b.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("%v\nbroker log:\n%s", err, readTail(b.LogPath, 8000))
	}
	tb.Logf("kafka broker on %s (netns %q) ready in %v", cfg.Addr, cfg.Netns, time.Since(started).Round(time.Millisecond))
	return b, nil
}

// waitReady polls until the broker answers a metadata request and accepts
// a message to a probe topic (which proves topic auto-creation works).
func (b *Broker) waitReady(ctx context.Context) error {
	var last error
	for {
		select {
		case <-b.done:
			return fmt.Errorf("broker exited during start: %v", b.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("broker not ready: %v (last: %v)", ctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
		if _, err := b.kcat(ctx, 10*time.Second, nil, "-L", "-b", b.Addr, "-m", "3"); err != nil {
			last = err
			continue
		}
		if err := b.Produce(ctx, "__apitap_probe", "probe", "ready"); err != nil {
			last = err
			continue
		}
		if s := b.cfg.SASLSSL; s != nil {
			// Checks the TLS set-up and the SCRAM credentials, without
			// trusting the certificate: kcat's name checks are not the point.
			u := slices.Sorted(maps.Keys(s.Users))[0]
			c := Client{Addr: b.SASLSSLAddr, Props: map[string]string{
				"security.protocol": "SASL_SSL", "sasl.mechanisms": "SCRAM-SHA-512",
				"sasl.username": u, "sasl.password": s.Users[u],
				"enable.ssl.certificate.verification": "false",
			}}
			if _, err := b.kcatAs(ctx, 10*time.Second, nil, c, "-L", "-m", "3"); err != nil {
				last = err
				continue
			}
		}
		return nil
	}
}

// CreateTopic makes sure topic exists by asking for its metadata with
// auto-creation allowed (librdkafka's producer does that), then waiting
// until it has a leader.
func (b *Broker) CreateTopic(ctx context.Context, topic string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		out, err := b.kcat(ctx, 10*time.Second, nil, "-P", "-L", "-b", b.Addr, "-t", topic, "-J", "-m", "3")
		if err == nil {
			var md struct {
				Topics []struct {
					Topic      string `json:"topic"`
					Err        string `json:"err"`
					Partitions []struct {
						Leader int `json:"leader"`
					} `json:"partitions"`
				} `json:"topics"`
			}
			if jerr := json.Unmarshal(out, &md); jerr == nil {
				for _, t := range md.Topics {
					if t.Topic == topic && t.Err == "" && len(t.Partitions) > 0 && t.Partitions[0].Leader >= 0 {
						return nil
					}
				}
				last = fmt.Errorf("topic %s not ready: %s", topic, bytes.TrimSpace(out))
			} else {
				last = jerr
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	return fmt.Errorf("creating topic %s: %v", topic, last)
}

// Client is how kcat connects to the broker. The zero value uses the
// PLAINTEXT listener.
type Client struct {
	// Addr is the bootstrap address. Default: the PLAINTEXT listener.
	Addr string
	// Props are librdkafka properties, given to kcat with -X.
	Props map[string]string
}

// SASLSSLClient is a Client of the SASL_SSL listener that authenticates
// with SCRAM-SHA-512 and trusts only the CA certificates in caFile.
func (b *Broker) SASLSSLClient(user, password, caFile string) Client {
	return Client{Addr: b.SASLSSLAddr, Props: map[string]string{
		"security.protocol": "SASL_SSL",
		"sasl.mechanisms":   "SCRAM-SHA-512",
		"sasl.username":     user,
		"sasl.password":     password,
		"ssl.ca.location":   caFile,
	}}
}

// Produce writes one message with the given key to topic.
func (b *Broker) Produce(ctx context.Context, topic, key, value string) error {
	return b.ProduceAs(ctx, Client{}, topic, key, value)
}

// ProduceAs is Produce through the listener and credentials of c.
func (b *Broker) ProduceAs(ctx context.Context, c Client, topic, key, value string) error {
	_, err := b.kcatAs(ctx, 15*time.Second, strings.NewReader(value+"\n"), c,
		"-P", "-t", topic, "-k", key, "-X", "message.timeout.ms=10000")
	return err
}

// Message is one message as kcat -J prints it.
type Message struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TsType    string   `json:"tstype"`
	Ts        int64    `json:"ts"`
	Broker    int32    `json:"broker"`
	Key       *string  `json:"key"`
	Payload   *string  `json:"payload"`
	Headers   []string `json:"headers,omitempty"`
}

// Consume reads topic from the beginning to its current end with
// `kcat -C -e -o beginning -J` and returns every message.
func (b *Broker) Consume(ctx context.Context, topic string) ([]Message, error) {
	return b.ConsumeAs(ctx, Client{}, topic)
}

// ConsumeAs is Consume through the listener and credentials of c.
func (b *Broker) ConsumeAs(ctx context.Context, c Client, topic string) ([]Message, error) {
	out, err := b.kcatAs(ctx, 60*time.Second, nil, c,
		"-C", "-t", topic, "-e", "-o", "beginning", "-J", "-q", "-X", "fetch.message.max.bytes=10485760")
	if err != nil {
		return nil, err
	}
	var msgs []Message
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			return msgs, fmt.Errorf("kcat output line %q: %v", truncate(string(line), 200), err)
		}
		msgs = append(msgs, m)
	}
	return msgs, sc.Err()
}

// Stop kills the broker (SIGTERM, then SIGKILL after 10s) and removes its
// data directory. Safe to call more than once.
func (b *Broker) Stop() error {
	if b.stopped {
		return nil
	}
	b.stopped = true
	var err error
	if b.cmd != nil && b.cmd.Process != nil {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
			err = errors.New("broker did not stop within 10s of SIGTERM; killed")
		}
	}
	if rerr := os.RemoveAll(b.dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func (b *Broker) dumpLog() {
	b.tb.Logf("kafka broker log (%s):\n%s", b.LogPath, readTail(b.LogPath, 16000))
}

// command builds a command that runs in the broker's network namespace.
func (b *Broker) command(name string, args ...string) *exec.Cmd {
	return b.commandContext(context.Background(), name, args...)
}

func (b *Broker) commandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	if b.cfg.Netns != "" {
		return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", b.cfg.Netns, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// kcatAs runs kcat with args and the -b and -X arguments of c (b.Addr
// when c.Addr is empty). Clients that use SASL get the newer librdkafka.
func (b *Broker) kcatAs(ctx context.Context, timeout time.Duration, stdin *strings.Reader, c Client, args ...string) ([]byte, error) {
	if c.Addr == "" {
		c.Addr = b.Addr
	}
	args = append(args, "-b", c.Addr)
	for _, k := range slices.Sorted(maps.Keys(c.Props)) {
		args = append(args, "-X", k+"="+c.Props[k])
	}
	var env []string
	if c.Props["sasl.mechanisms"] != "" {
		env = append(os.Environ(), "LD_LIBRARY_PATH="+b.cfg.RdkafkaDir)
	}
	return b.run(ctx, timeout, stdin, env, args...)
}

func (b *Broker) kcat(ctx context.Context, timeout time.Duration, stdin *strings.Reader, args ...string) ([]byte, error) {
	return b.run(ctx, timeout, stdin, nil, args...)
}

// run runs kcat with args, and with env as its environment unless nil.
func (b *Broker) run(ctx context.Context, timeout time.Duration, stdin *strings.Reader, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := b.commandContext(ctx, "kcat", args...)
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("kcat %s: %v: %s", strings.Join(args, " "), err, truncate(stderr.String(), 2000))
	}
	return stdout.Bytes(), nil
}

// DefaultLibsDir returns where scripts/test-deps.sh caches the broker jars.
func DefaultLibsDir(root string) (string, error) {
	if d := os.Getenv("APITAP_KAFKA_LIBS"); d != "" {
		return d, nil
	}
	v, err := Version(root)
	if err != nil {
		return "", err
	}
	cache := os.Getenv("APITAP_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "apitap")
	}
	return filepath.Join(cache, "kafka-"+v, "libs"), nil
}

// defaultRdkafkaDir returns where scripts/test-deps.sh puts librdkafka:
// $APITAP_LIBRDKAFKA, else the newest librdkafka-<version> in the cache.
func defaultRdkafkaDir() (string, error) {
	if d := os.Getenv("APITAP_LIBRDKAFKA"); d != "" {
		return d, nil
	}
	cache := os.Getenv("APITAP_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache", "apitap")
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "librdkafka-*"))
	if len(dirs) == 0 {
		return "", fmt.Errorf("no librdkafka-* in %s: run scripts/test-deps.sh first", cache)
	}
	slices.SortFunc(dirs, func(a, b string) int { return compareVersions(filepath.Base(a), filepath.Base(b)) })
	return dirs[len(dirs)-1], nil
}

// compareVersions orders names that end in dotted version numbers.
func compareVersions(a, b string) int {
	num := func(s string) []int {
		_, v, _ := strings.Cut(s, "-")
		var n []int
		for _, f := range strings.Split(v, ".") {
			i, _ := strconv.Atoi(f)
			n = append(n, i)
		}
		return n
	}
	return slices.Compare(num(a), num(b))
}

var versionRE = regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`)

// Version returns the Kafka version that tests/kafka/pom.xml fetches.
func Version(root string) (string, error) {
	pom, err := os.ReadFile(filepath.Join(root, "tests", "kafka", "pom.xml"))
	if err != nil {
		return "", err
	}
	m := versionRE.FindSubmatch(pom)
	if m == nil {
		return "", errors.New("tests/kafka/pom.xml: no <kafka.version>")
	}
	return string(m[1]), nil
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "tests", "kafka", "pom.xml")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tests/kafka/pom.xml not found above the working directory")
		}
		dir = parent
	}
}

// randomClusterID returns a KRaft cluster id: 16 random bytes, URL-safe
// base64 without padding (what `kafka-storage random-uuid` prints).
func randomClusterID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return base64.RawURLEncoding.EncodeToString(u[:])
}

// scramIterations is the SCRAM-SHA-512 iteration count of the users the
// storage tool creates (Kafka's minimum, 4096, would do as well).
const scramIterations = 8192

// scramCredential is the storage tool's --add-scram value for a
// SCRAM-SHA-512 user. It gives the salted password (RFC 5802's Hi) rather
// than the password, so that no password reaches the tool's parser of
// comma-separated key=value lists: tests want passwords with odd characters.
func scramCredential(user, password string) (string, error) {
	if strings.ContainsAny(user, `",=[]`) {
		return "", fmt.Errorf("SCRAM user name %q: no quotes, commas, '=' or brackets", user)
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha512.New, password, salt, scramIterations, sha512.Size)
	if err != nil {
		return "", fmt.Errorf("salting the SCRAM password of %s: %w", user, err)
	}
	return fmt.Sprintf(`SCRAM-SHA-512=[name=%s,iterations=%d,salt="%s",saltedpassword="%s"]`, user, scramIterations,
		base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(salted)), nil
}

// concatFiles writes the contents of srcs, in order, to dst.
func concatFiles(dst string, srcs ...string) error {
	var all []byte
	for _, src := range srcs {
		b, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("reading %s: %w", src, err)
		}
		all = append(all, b...)
	}
	if err := os.WriteFile(dst, all, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}

func readTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", path, err)
	}
	if len(b) > n {
		return "...\n" + string(b[len(b)-n:])
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
