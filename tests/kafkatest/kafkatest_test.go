package kafkatest

import (
	"context"
	"net"
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
