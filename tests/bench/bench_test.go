package main

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
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
