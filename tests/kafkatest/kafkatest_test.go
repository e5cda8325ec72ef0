package kafkatest

import (
	"context"
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
	b := Start(t, Config{Addr: "127.0.0.1:29092"})
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
