package main

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/kafkasink"
	"github.com/apitap/apitap/tests/testkit"
)

// TestPipelinesPairEveryExchange generates small captures of each kind and
// checks that both pipelines pair them by id.
func TestPipelinesPairEveryExchange(t *testing.T) {
	dir := t.TempDir()
	scs := []scenario{
		{Name: "small", Conns: 20, Exchanges: 5},
		{Name: "gzip", Conns: 3, Exchanges: 2, Gzip: true},
		{Name: "mix", Conns: 20, Exchanges: 9, Mix: true},
	}
	if err := gen(dir, scs); err != nil {
		t.Fatal(err)
	}
	for _, sc := range scs {
		want := uint64(sc.Conns * sc.Exchanges)
		path := filepath.Join(dir, sc.Name+".pcap")
		// Both pipelines must do the same work: gzip bodies decoded.
		var undecoded atomic.Int64
		seen := func(rec []byte) {
			if sc.Gzip && !bytes.Contains(rec, []byte(`"responsePayload":"{\"rows\":[`)) {
				undecoded.Add(1)
			}
		}
		for _, workers := range []int{1, 2} {
			v, err := runOurs(path, workers, &verifier{seen: seen})
			if err != nil {
				t.Fatal(err)
			}
			if v != (verdict{Pairs: want}) {
				t.Errorf("%s apitap %d workers: %+v, want %d pairs", sc.Name, workers, v, want)
			}
		}
		v, err := runBaseline(path, &verifier{seen: seen})
		if err != nil {
			t.Fatal(err)
		}
		if v != (verdict{Pairs: want}) {
			t.Errorf("%s baseline: %+v, want %d pairs", sc.Name, v, want)
		}
		if n := undecoded.Load(); n > 0 {
			t.Errorf("%s: %d records without a decoded gzip body", sc.Name, n)
		}
	}
}

// TestKafkaRecords: the Kafka benchmark's records are realistic Akto
// records of about 1.3 KB with connection keys of about 40 bytes, and a
// short run delivers all of them and observes their latency.
func TestKafkaRecords(t *testing.T) {
	keys, values := kafkaRecords(200)
	var size int
	conns := map[string]bool{}
	for i := range values {
		rec, err := testkit.ParseRecord(values[i])
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if rec.Source != "MIRRORING" || rec.StatusCode != "200" {
			t.Fatalf("record %d: %+v", i, rec)
		}
		if len(keys[i]) < 30 || len(keys[i]) > 50 {
			t.Errorf("key %q: %d bytes, want about 40", keys[i], len(keys[i]))
		}
		size += len(values[i])
		conns[string(keys[i])] = true
	}
	if avg := size / len(values); avg < 1200 || avg > 1400 {
		t.Errorf("records of %d bytes on average, want about 1300", avg)
	}
	if len(conns) != 200 {
		t.Errorf("%d distinct keys, want 200", len(conns))
	}
	r, err := publishAll(kafkasink.Config{}, keys, values, 2000)
	if err != nil {
		t.Fatal(err)
	}
	if r.perSec <= 0 {
		t.Errorf("rate %v", r.perSec)
	}
	h, err := kafkaPaced(kafkasink.Config{}, keys, values, 5000, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if h.Count < 500 {
		t.Errorf("%d latencies observed at 5000 records/s for 200ms, want about 1000", h.Count)
	}
}
