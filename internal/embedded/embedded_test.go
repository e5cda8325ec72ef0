package embedded

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestWriteWithKafkaGoReadAll(t *testing.T) {
	b, err := Start("", "akto.api.logs", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if host, _, err := net.SplitHostPort(b.Addr()); err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q, want 127.0.0.1:port", b.Addr())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Empty topic: nothing to read, no error.
	if got, err := ReadAll(ctx, b.Addr(), "akto.api.logs"); err != nil || len(got) != 0 {
		t.Fatalf("ReadAll(empty) = %d messages, %v", len(got), err)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(b.Addr()),
		Topic:        "akto.api.logs",
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		Compression:  kafka.Lz4,
	}
	const keys, perKey = 5, 20
	var msgs []kafka.Message
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			msgs = append(msgs, kafka.Message{
				Key:   []byte(fmt.Sprintf("conn-%d", k)),
				Value: []byte(fmt.Sprintf("%d", i)),
			})
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := ReadAll(ctx, b.Addr(), "akto.api.logs")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("read %d messages, want %d", len(got), len(msgs))
	}
	partitionOf := map[string]int32{}
	next := map[string]int{}
	for _, m := range got {
		k := string(m.Key)
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Fatalf("key %s in partitions %d and %d", k, p, m.Partition)
		}
		partitionOf[k] = m.Partition
		if want := fmt.Sprintf("%d", next[k]); string(m.Value) != want {
			t.Fatalf("key %s: value %q at offset %d, want %q", k, m.Value, m.Offset, want)
		}
		next[k]++
	}
	if len(partitionOf) != keys {
		t.Fatalf("read %d keys, want %d", len(partitionOf), keys)
	}
}

func TestReadAllUnknownTopic(t *testing.T) {
	b, err := Start("", "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ReadAll(ctx, b.Addr(), "nope"); err == nil {
		t.Fatal("ReadAll of a missing topic: no error")
	}
}

func TestStartOnGivenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	b, err := Start(":"+port, "t", 1)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", port, err)
	}
	defer b.Close()
	if want := "127.0.0.1:" + port; b.Addr() != want {
		t.Fatalf("Addr() = %q, want %q", b.Addr(), want)
	}
	if _, err := Start("127.0.0.1:"+port, "t", 1); err == nil {
		t.Fatal("second Start on the same port: no error")
	}
}

// A bounded broker drops the oldest records beyond its size, so a
// long-running live sniffer on the embedded default keeps bounded memory.
func TestStartBoundedDropsOldRecords(t *testing.T) {
	b, err := StartBounded("", "t", 1, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "t", RequiredAcks: kafka.RequireAll, BatchSize: 1}
	defer w.Close()
	value := make([]byte, 4096)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if err := w.WriteMessages(ctx, kafka.Message{Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		msgs, err := ReadAll(ctx, b.Addr(), "t")
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) < 100 && len(msgs)*4096 <= 2*64<<10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d records of 4 KiB after retention should have kept 64 KiB", len(msgs))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
