package embedded

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func TestTmpEmbeddedRetainsEverything(t *testing.T) {
	b, err := Start("", "akto.api.logs", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "akto.api.logs", RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchBytes: 1 << 20}
	heap := func() uint64 { runtime.GC(); var m runtime.MemStats; runtime.ReadMemStats(&m); return m.HeapAlloc >> 20 }
	val := make([]byte, 16<<10)
	for i := range val {
		val[i] = byte(i*7919 + i/3) // not compressible much (no compression anyway)
	}
	t.Logf("heap before: %d MiB", heap())
	for round := 0; round < 4; round++ {
		var msgs []kafka.Message
		for i := 0; i < 1600; i++ { // 25 MiB per round
			msgs = append(msgs, kafka.Message{Value: val})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		t.Logf("after %d MiB produced: heap %d MiB", (round+1)*25, heap())
	}
	w.Close()
}
