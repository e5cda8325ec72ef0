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
}

func (b *burstLoss) Add(p *decode.Packet, ts time.Time) bool {
	if b.left == 0 && b.rng.Float64() < b.p {
		b.left = b.burst
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
	for _, sc := range scs {
		for _, p := range []float64{0.002, 0.01, 0.05} {
			t.Run(fmt.Sprintf("%s/%v", sc.Name, p), func(t *testing.T) {
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
				eng, err := flow.New(flow.Config{Workers: 2, Block: true}, &fs, rec.NewHandler)
				if err != nil {
					t.Fatal(err)
				}
				loss := &burstLoss{in: eng.NewInput(), rng: rand.New(rand.NewPCG(7, uint64(p*1e4))), p: p, burst: 16}
				err = capture.ReplayFile(context.Background(), filepath.Join(dir, sc.Name+".pcap"), loss, &cs)
				eng.Close()
				if err != nil {
					t.Fatal(err)
				}
				got := v.verdict()
				t.Logf("%d packets dropped: %+v, %d late across a loss", loss.dropped, got, fs.LateAcrossGap.Load())
				if got.Mismatches != 0 {
					t.Errorf("%d requests paired with another's response", got.Mismatches)
				}
				if got.Pairs == 0 || loss.dropped == 0 {
					t.Errorf("nothing paired (%d) or nothing dropped (%d): the test tests nothing", got.Pairs, loss.dropped)
				}
			})
		}
	}
}
