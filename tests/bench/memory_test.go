package main

import (
	"bytes"
	"testing"
)

// TestMemoryMode runs the memory mode at a small scale through the real
// sniffer binary: the figures it prints come from the process, and whole
// connections are shed (here at a -max-conns lowered to make it happen)
// without a wrong pair.
func TestMemoryMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sniffer and replays generated captures")
	}
	var out bytes.Buffer
	res, err := runMemory(memOptions{dir: t.TempDir(), runs: 1, scale: 0.01, limit: 256,
		only: []string{"partial", "bomb"}, args: []string{"-max-conns", "1000"}}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.PeakRSSMiB <= 0 || r.Stats["flow_conns_opened"] == 0 {
			t.Errorf("%s: no figures: %+v", r.Name, r)
		}
		if r.Verdict.Mismatches != 0 || r.Verdict.Pairs != uint64(r.Expect.Good) {
			t.Errorf("%s: %+v, want %d good pairs", r.Name, r.Verdict, r.Expect.Good)
		}
	}
	partial := res[0].Stats
	if partial["flow_open_conns_peak"] > 1000 || partial["flow_conns_evicted_idle"] == 0 {
		t.Errorf("partial: peak %v connections, evicted %v: want at most 1000 and evictions", partial["flow_open_conns_peak"], partial["flow_conns_evicted_idle"])
	}
}
