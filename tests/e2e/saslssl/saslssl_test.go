package saslssl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apitap/apitap/infra/stack"
	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/tests/kafkatest"
	"github.com/apitap/apitap/tests/testkit"
)

// Addresses: the broker's namespace and the sniffer's, joined by a veth.
const (
	brokerIP   = "198.18.7.1"
	snifferIP  = "198.18.7.2"
	scramUser  = "apitap-sniffer"
	secretARN  = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:apitap/kafka-AbCdEf"
	saslSSLAdr = brokerIP + ":9096" // Amazon MSK's SASL/SCRAM port
)

// password holds characters that systemd's quoting must carry: a double
// quote, a backslash, a dollar and a space.
const password = `s3cr"et\pa$s word`

func TestSnifferSASLSSL(t *testing.T) {
	testkit.RequireRoot(t)
	testkit.RequireTools(t, "ip", "kcat", "java", "python3")
	start := time.Now()
	dir := t.TempDir()
	bins, err := testkit.Build(dir, "./sniffer")
	if err != nil {
		t.Fatal(err)
	}
	sniffer := bins[0]

	brk, snf := namespaces(t)
	ca, err := kafkatest.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := kafkatest.NewCA(dir, "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(dir, "broker", net.ParseIP(brokerIP))
	if err != nil {
		t.Fatal(err)
	}
	b := kafkatest.Start(t, kafkatest.Config{
		Addr:    brokerIP + ":9092",
		Netns:   brk,
		SASLSSL: &kafkatest.SASLSSL{Addr: saslSSLAdr, CertFile: cert, KeyFile: key, Users: map[string]string{scramUser: password}},
	})

	t.Run("records", func(t *testing.T) {
		env := stackEnv(t, dir, ca.CertFile, password)
		if got := env[contract.SnifferEnv(contract.SnifferFlagPassword)]; got != password {
			t.Fatalf("the environment file gives the password %q, want %q", got, password)
		}
		checkConfig(t, sniffer, env)
		p := startSniffer(t, dir, snf, sniffer, env)
		waitReady(t, snf, p, http.StatusOK, "", time.Minute)

		want := replayRecords(t, sniffer)
		sendDemo(t, brk)
		client := b.SASLSSLClient(scramUser, password, ca.CertFile)
		topic := env[contract.SnifferEnv(contract.SnifferFlagTopic)]
		var got []string
		deadline := time.Now().Add(90 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			msgs, err := b.ConsumeAs(ctx, client, topic)
			cancel()
			if err != nil {
				t.Fatalf("reading %s over SASL_SSL: %v", topic, err)
			}
			got = records(t, msgs)
			if len(got) >= len(want) || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("records read back over SASL_SSL (%d) differ from the replay of the capture (%d):\ngot  %q\nwant %q", len(got), len(want), got, want)
		} else {
			t.Logf("%d records read back with kcat over SASL_SSL, as the capture's replay gives", len(got))
		}
		if code := p.stop(t); code != 0 {
			t.Errorf("sniffer exited %d after SIGTERM", code)
		}
	})

	// A sniffer that cannot use the broker keeps running and says why, in
	// its log and in /readyz.
	for _, tc := range []struct {
		name, password, caFile string
		want                   []string // in /readyz and in the log
	}{
		{"wrong password", password + "x", ca.CertFile, []string{"SASL authentication failed", saslSSLAdr}},
		{"untrusted certificate", password, otherCA.CertFile, []string{"TLS certificate", "x509: certificate signed by unknown authority", saslSSLAdr}},
		{"no CA file", password, "", []string{"TLS certificate", "x509: certificate signed by unknown authority", saslSSLAdr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := stackEnv(t, dir, tc.caFile, tc.password)
			p := startSniffer(t, dir, snf, sniffer, env)
			body := waitReady(t, snf, p, http.StatusServiceUnavailable, tc.want[0], time.Minute)
			// Another probe interval (5s): still running, still not ready.
			time.Sleep(6 * time.Second)
			select {
			case <-p.done:
				t.Fatalf("sniffer exited (%v):\n%s", p.err, p.output())
			default:
			}
			body = waitReady(t, snf, p, http.StatusServiceUnavailable, tc.want[0], time.Second)
			log := p.output()
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("/readyz does not say %q: %s", w, body)
				}
				if !strings.Contains(log, w) {
					t.Errorf("the log does not say %q:\n%s", w, log)
				}
			}
			t.Logf("/readyz: 503 %s", strings.TrimSpace(body))
			if code := p.stop(t); code != 0 {
				t.Errorf("sniffer exited %d after SIGTERM", code)
			}
		})
	}
	t.Logf("whole test: %v", time.Since(start).Round(time.Millisecond))
}

// namespaces creates the broker's and the sniffer's network namespaces,
// joined by a veth, and removes them on cleanup.
func namespaces(t *testing.T) (brk, snf string) {
	t.Helper()
	base := fmt.Sprintf("apitap-saslssl-%d-", os.Getpid())
	brk, snf = base+"brk", base+"snf"
	for _, ns := range []string{brk, snf} {
		_ = exec.Command("ip", "netns", "del", ns).Run() // left by a killed run of this process id
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			for _, f := range strings.Fields(string(out)) {
				var pid int
				if _, err := fmt.Sscan(f, &pid); err == nil && pid > 1 {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", ns, err, out)
			}
		})
	}
	// Jumbo frames: VXLAN around full-size frames stays one datagram.
	ipCmd(t, "link", "add", "eth0", "netns", brk, "mtu", "9000", "type", "veth", "peer", "name", "eth0", "netns", snf, "mtu", "9000")
	ipCmd(t, "-n", brk, "addr", "add", brokerIP+"/24", "dev", "eth0")
	ipCmd(t, "-n", snf, "addr", "add", snifferIP+"/24", "dev", "eth0")
	for _, ns := range []string{brk, snf} {
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
		ipCmd(t, "-n", ns, "link", "set", "eth0", "up")
	}
	return brk, snf
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// stackEnv writes /etc/apitap/sniffer.env as the stack's user data does for
// kafkaTls true and kafkaAuth scram-sha-512 (the secret from the test
// instead of Secrets Manager) and reads it back as systemd does.
func stackEnv(t *testing.T, dir, caFile, password string) map[string]string {
	t.Helper()
	cfg := stack.Config{
		Account:          "123456789012",
		Region:           "eu-west-1",
		VPCID:            "vpc-0123456789abcdef0",
		VPCCIDRs:         []string{"10.0.0.0/16"},
		Subnets:          map[string]string{"subnet-0123456789abcdef0": "eu-west-1a", "subnet-0123456789abcdef1": "eu-west-1b"},
		LoadBalancerARNs: []string{"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/web/0123456789abcdef"},
		KafkaBrokers:     []string{saslSSLAdr},
		KafkaTLS:         true,
		KafkaAuth:        stack.KafkaAuthSCRAMSHA512,
		KafkaSecretARN:   secretARN,
	}.WithDefaults()
	if caFile != "" {
		cfg.SnifferEnv = map[string]string{contract.SnifferEnv("kafka-tls-ca"): caFile}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the stack refuses the configuration: %v", err)
	}
	content := strings.Join(cfg.SnifferEnvLines(), "\n") + "\n"

	secret, err := json.Marshal(map[string]string{"username": scramUser, "password": password})
	if err != nil {
		t.Fatal(err)
	}
	py := exec.Command("python3", "-c", stack.SecretToEnv)
	py.Stdin = bytes.NewReader(secret)
	out, err := py.Output()
	if err != nil {
		t.Fatalf("python3 -c stack.SecretToEnv: %v", err)
	}
	content += string(out)
	path := filepath.Join(dir, "sniffer.env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env, err := parseEnvFile(content)
	if err != nil {
		t.Fatalf("reading %s as systemd would: %v\n%s", path, err, content)
	}
	return env
}

// environ is the sniffer's environment: this process's without any
// SNIFFER_* variable, plus env.
func environ(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SNIFFER_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// checkConfig checks that the sniffer reads the file's settings as meant.
func checkConfig(t *testing.T, sniffer string, env map[string]string) {
	t.Helper()
	cmd := exec.Command(sniffer, "-check-config")
	cmd.Env = environ(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sniffer -check-config: %v\n%s", err, out)
	}
	for _, w := range []string{
		"SNIFFER_KAFKA=" + saslSSLAdr, "SNIFFER_KAFKA_TLS=true", "SNIFFER_KAFKA_SASL=SCRAM-SHA-512",
		"SNIFFER_KAFKA_USERNAME=" + scramUser, "SNIFFER_KAFKA_PASSWORD=****",
	} {
		if !strings.Contains(string(out), w+"\n") {
			t.Errorf("sniffer -check-config does not print %s:\n%s", w, out)
		}
	}
}

// proc is the sniffer, running in a namespace.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startSniffer(t *testing.T, dir, ns, sniffer string, env map[string]string) *proc {
	t.Helper()
	p := &proc{log: filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	// As systemd's ExecStart: no arguments, the settings come from the
	// environment.
	p.cmd = exec.Command("ip", "netns", "exec", ns, sniffer)
	p.cmd.Env = environ(env)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting the sniffer: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("sniffer log:\n%s", p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// stop sends SIGTERM and returns the exit code (-1: killed after 30s).
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return -1
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		return -1
	}
	return 0
}

// waitReady polls the sniffer's /readyz (the admin address the stack sets,
// 127.0.0.1:9090 in its namespace) until it answers code with a body that
// holds contains, and returns the body.
func waitReady(t *testing.T, ns string, p *proc, code int, contains string, timeout time.Duration) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := testkit.InNetns(ns, func() (err error) {
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-p.done:
			t.Fatalf("sniffer exited (%v):\n%s", p.err, p.output())
		default:
		}
		resp, err := client.Get("http://127.0.0.1:9090/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == code && strings.Contains(string(body), contains) {
				return string(body)
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer %d with %q within %v; last: %s\nsniffer log:\n%s", code, contains, timeout, last, p.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sendDemo sends the VXLAN datagrams of testdata/demo.pcap (a capture of
// the mirror path) from the broker's namespace to the sniffer's UDP 4789,
// as a load balancer forwards AWS Traffic Mirroring.
func sendDemo(t *testing.T, ns string) {
	t.Helper()
	payloads, err := vxlanPayloads(filepath.Join(testkit.RepoRoot(t), "testdata", "demo.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	var conn *net.UDPConn
	if err := testkit.InNetns(ns, func() (err error) {
		conn, err = net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(snifferIP), Port: stack.VXLANPort})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, p := range payloads {
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("sending VXLAN to the sniffer: %v", err)
		}
		time.Sleep(200 * time.Microsecond) // no burst beyond what a socket buffer holds
	}
	t.Logf("sent %d VXLAN datagrams of testdata/demo.pcap", len(payloads))
}

// vxlanPayloads returns the UDP payloads to port 4789 of the Ethernet/IPv4
// frames of a classic little-endian pcap file.
func vxlanPayloads(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading capture %s: %w", path, err)
	}
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(data[20:]) != 1 {
		return nil, fmt.Errorf("reading capture %s: not a little-endian Ethernet pcap file", path)
	}
	var out [][]byte
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		frame := data[off+16 : min(off+16+n, len(data))]
		off += 16 + n
		if len(frame) < 14+20+8 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
			continue
		}
		ip := frame[14:]
		ihl := int(ip[0]&0x0f) * 4
		if ip[9] != 17 || len(ip) < ihl+8 {
			continue
		}
		udp := ip[ihl:]
		if binary.BigEndian.Uint16(udp[2:]) != stack.VXLANPort {
			continue
		}
		out = append(out, udp[8:binary.BigEndian.Uint16(udp[4:])])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("reading capture %s: no VXLAN datagrams", path)
	}
	return out, nil
}

// replayRecords is what the sniffer makes of testdata/demo.pcap in replay
// mode, each record as "METHOD path status", sorted.
func replayRecords(t *testing.T, sniffer string) []string {
	t.Helper()
	cmd := exec.Command(sniffer, "-pcap", filepath.Join(testkit.RepoRoot(t), "testdata", "demo.pcap"),
		"-kafka", "none", "-out", "-", "-admin-addr", "", "-health-addr", "", "-log-level", "warn")
	cmd.Env = environ(nil)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sniffer -pcap testdata/demo.pcap: %v", err)
	}
	var recs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if line := sc.Bytes(); len(bytes.TrimSpace(line)) > 0 {
			recs = append(recs, summary(t, line))
		}
	}
	slices.Sort(recs)
	return recs
}

func records(t *testing.T, msgs []kafkatest.Message) []string {
	t.Helper()
	var recs []string
	for _, m := range msgs {
		if m.Payload == nil {
			t.Errorf("message at offset %d has no payload", m.Offset)
			continue
		}
		recs = append(recs, summary(t, []byte(*m.Payload)))
	}
	return recs
}

// summary checks a record's shape (docs/contracts.md §1) and returns
// "METHOD path status".
func summary(t *testing.T, b []byte) string {
	t.Helper()
	r, err := testkit.ParseRecord(b)
	if err != nil {
		t.Errorf("record: %v\n%.500s", err, b)
	}
	return r.Method + " " + r.Path + " " + r.StatusCode
}
