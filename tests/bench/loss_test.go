package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/capture"
	"github.com/apitap/apitap/internal/decode"
	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
	"github.com/apitap/apitap/internal/recorder"
)

// burstLoss drops runs of consecutive packets, both directions and every
// connection alike, as a sniffer does when a batch of datagrams is lost
// (a full socket buffer or worker queue): each packet starts a run of
// burst packets with probability p.
type burstLoss struct {
	in      capture.Sink
	rng     *rand.Rand
	p       float64
	burst   int
	left    int
	dropped int
	trace   func(p *decode.Packet, dropped bool) // when set, told of every packet
}

func (b *burstLoss) Add(p *decode.Packet, ts time.Time) bool {
	if b.left == 0 && b.rng.Float64() < b.p {
		b.left = b.burst
	}
	if b.trace != nil {
		b.trace(p, b.left > 0)
	}
	if b.left > 0 {
		b.left--
		b.dropped++
		return true
	}
	return b.in.Add(p, ts)
}

func (b *burstLoss) Flush() { b.in.Flush() }

// TestBurstLossNeverMispairs replays captures with bursts of packets lost
// and checks every record: whole exchanges and single responses vanish,
// holes in both directions are given up together after the reorder
// window, and no request may take another's response. (Before the
// reassembler checked ACKs against declared losses, a request sent before
// a lost response could reach the parser after the loss and take the next
// response: up to 6,170 wrong pairs per run in the live benchmark.)
func TestBurstLossNeverMispairs(t *testing.T) {
	dir := t.TempDir()
	scs := []scenario{
		{Name: "small", Conns: 40, Exchanges: 60},
		{Name: "mix", Conns: 40, Exchanges: 60, Mix: true},
	}
	if err := gen(dir, scs); err != nil {
		t.Fatal(err)
	}
	buffers := []struct {
		name string
		cfg  flow.Config
	}{
		{"default buffers", flow.Config{}},
		// Out-of-order bytes beyond the cap make the reassembler give up
		// holes early, other connections' as well as the one at hand.
		{"tight buffers", flow.Config{MaxBufferBytes: 64 << 10}},
	}
	for _, sc := range scs {
		for _, b := range buffers {
			for _, p := range []float64{0.002, 0.01, 0.05} {
				t.Run(fmt.Sprintf("%s/%s/%v", sc.Name, b.name, p), func(t *testing.T) {
					burstLossRun(t, filepath.Join(dir, sc.Name+".pcap"), b.cfg, p)
				})
			}
		}
	}
}

func burstLossRun(t *testing.T, path string, cfg flow.Config, p float64) {
	t.Helper()
	cfg.Workers, cfg.Block = 2, true
	for seed := uint64(1); seed <= 3; seed++ {
		v := &verifier{}
		var (
			cs capture.Stats
			fs flow.Stats
			hs http1.Stats
			rs recorder.Stats
		)
		rec, err := recorder.New(recorder.Config{Source: record.SourcePcap,
			HTTP: http1.Config{EmitPending: true, Decompress: true}}, v, &rs, &hs)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := flow.New(cfg, &fs, rec.NewHandler)
		if err != nil {
			t.Fatal(err)
		}
		loss := &burstLoss{in: eng.NewInput(), rng: rand.New(rand.NewPCG(seed, uint64(p*1e4))), p: p, burst: 16}
		err = capture.ReplayFile(context.Background(), path, loss, &cs)
		eng.Close()
		if err != nil {
			t.Fatal(err)
		}
		got := v.verdict()
		t.Logf("seed %d: %d packets dropped: %+v, %d late across a loss, %d buffer overflows", seed, loss.dropped, got,
			fs.LateAcrossGap.Load(), fs.BufferOverflows.Load())
		if got.Mismatches != 0 {
			t.Errorf("seed %d: %d requests paired with another's response", seed, got.Mismatches)
		}
		if got.Pairs == 0 || loss.dropped == 0 {
			t.Errorf("seed %d: nothing paired (%d) or nothing dropped (%d): the test tests nothing", seed, got.Pairs, loss.dropped)
		}
	}
}
