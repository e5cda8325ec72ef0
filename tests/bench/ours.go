package main

import (
	"bytes"
	"context"
	"sync/atomic"
	"time"

	"github.com/apitap/apitap/internal/bufpool"
	"github.com/apitap/apitap/internal/capture"
	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/kafkasink"
	"github.com/apitap/apitap/internal/record"
	"github.com/apitap/apitap/internal/recorder"
)

// verifier is the publisher both pipelines hand their records to: it
// checks that each record's request id (the id query parameter) is the id
// its response echoed (X-Echo-Id), and counts. Safe for concurrent use.
type verifier struct {
	pairs, mismatches, pending, noID atomic.Uint64
	// seen, when set, is called with every record (tests look at them).
	seen func(rec []byte)
}

func (v *verifier) Publish(_, value []byte, _ time.Time) bool {
	v.check(value)
	bufpool.Put(value) // as the sniffer's Kafka sink does once delivered
	return true
}

var (
	pathKey = []byte(`"path":"`)
	echoKey = []byte(`X-Echo-Id\":\"`)
)

func (v *verifier) check(rec []byte) {
	if v.seen != nil {
		v.seen(rec)
	}
	reqID := -1
	if i := bytes.Index(rec, pathKey); i >= 0 {
		p := rec[i+len(pathKey):]
		if j := bytes.Index(p, []byte("?id=")); j >= 0 {
			reqID = digits(p[j+4:])
		}
	}
	respID := -1
	if i := bytes.Index(rec, echoKey); i >= 0 {
		respID = digits(rec[i+len(echoKey):])
	}
	switch {
	case reqID < 0:
		v.noID.Add(1)
	case respID < 0:
		v.pending.Add(1)
	case reqID != respID:
		v.mismatches.Add(1)
	default:
		v.pairs.Add(1)
	}
}

func digits(b []byte) int {
	n, ok := 0, false
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n, ok = n*10+int(c-'0'), true
	}
	if !ok {
		return -1
	}
	return n
}

// verdict is what one replay produced.
type verdict struct {
	Pairs, Mismatches, Pending, NoID uint64
}

func (v *verifier) verdict() verdict {
	return verdict{v.pairs.Load(), v.mismatches.Load(), v.pending.Load(), v.noID.Load()}
}

// runOurs replays data through apitap's pipeline in this process:
// capture.Replay (decode) → flow (reassembly, workers) → recorder (http1
// pairing, record encoding) → verifier instead of Kafka.
func runOurs(path string, workers int, v *verifier) (verdict, error) {
	var (
		cs capture.Stats
		fs flow.Stats
		hs http1.Stats
		rs recorder.Stats
	)
	// The sniffer's defaults for -pcap (sniffer/config.go): bodies decoded,
	// pending requests emitted, the default body types dropped.
	cfg := recorder.Config{
		Source:         record.SourcePcap,
		MaxRecordBytes: kafkasink.DefaultMaxMessageBytes,
		HTTP: http1.Config{
			MaxBodyBytes: http1.DefaultMaxBodyBytes,
			Budget:       http1.NewBudget(256 << 20),
			EmitPending:  true,
			Decompress:   true,
		},
		Volume: recorder.Volume{DropBodyTypes: recorder.DefaultDropBodyTypes},
	}
	rec, err := recorder.New(cfg, v, &rs, &hs)
	if err != nil {
		return verdict{}, err
	}
	eng, err := flow.New(flow.Config{Workers: workers, Block: true}, &fs, rec.NewHandler)
	if err != nil {
		return verdict{}, err
	}
	in := eng.NewInput()
	err = capture.ReplayFile(context.Background(), path, in, &cs)
	eng.Close()
	return v.verdict(), err
}
