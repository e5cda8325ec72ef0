package kafkatest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestBroker starts a broker in the current network namespace on a
// loopback port, creates a topic, writes and reads back two messages.
func TestBroker(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Fatalf("kcat missing: run scripts/test-deps.sh first")
	}
	b := Start(t, Config{Addr: freeAddr(t), ControllerAddr: freeAddr(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.CreateTopic(ctx, "kafkatest.topic"); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Consume(ctx, "kafkatest.topic")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Fatalf("new topic has %d messages", len(msgs))
	}
	for _, v := range []string{`{"a":"1"}`, `{"b":"ü"}`} {
		if err := b.Produce(ctx, "kafkatest.topic", "k", v); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err = b.Consume(ctx, "kafkatest.topic")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || *msgs[0].Payload != `{"a":"1"}` || *msgs[1].Payload != `{"b":"ü"}` || *msgs[0].Key != "k" {
		t.Fatalf("got %+v", msgs)
	}
}

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestBrokerSASLSSL starts a broker with a SASL_SSL listener in a network
// namespace of its own and checks that kcat gets in with the right
// password and the test's CA, and not with a wrong password or another CA.
func TestBrokerSASLSSL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root for a network namespace")
	}
	ns := fmt.Sprintf("apitap-kafkatest-%d", os.Getpid())
	for _, args := range [][]string{{"netns", "add", ns}, {"-n", ns, "link", "set", "lo", "up"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
		if args[0] == "netns" {
			t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	dir := t.TempDir()
	ca, err := NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA(dir, "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(dir, "broker", net.IPv4(127, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	const password = `pa"ss\word`
	b := Start(t, Config{Netns: ns, SASLSSL: &SASLSSL{
		Addr: "127.0.0.1:9094", CertFile: cert, KeyFile: key,
		Users: map[string]string{"alice": password},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	good := b.SASLSSLClient("alice", password, ca.CertFile)
	if err := b.ProduceAs(ctx, good, "kafkatest.secure", "k", "v1"); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.ConsumeAs(ctx, good, "kafkatest.secure")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || *msgs[0].Payload != "v1" {
		t.Fatalf("got %+v", msgs)
	}
	for name, c := range map[string]Client{
		"wrong password": b.SASLSSLClient("alice", password+"x", ca.CertFile),
		"untrusted CA":   b.SASLSSLClient("alice", password, other.CertFile),
	} {
		if _, err := b.kcatAs(ctx, 20*time.Second, nil, c, "-L", "-m", "5"); err == nil {
			t.Errorf("%s: kcat -L succeeded", name)
		} else {
			t.Logf("%s: refused: %s", name, truncate(err.Error(), 300))
		}
	}
}
