package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkReplayDemo runs the whole pipeline (pcap decode, reassembly,
// HTTP pairing, record encoding, JSON lines) over the bundled capture.
func BenchmarkReplayDemo(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b.ReportAllocs()
	var records uint64
	for b.Loop() {
		o, err := parseFlags([]string{"-pcap", "../testdata/demo.pcap", "-kafka", "none", "-out", "-"}, env(nil), io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		s, err := newSniffer(context.Background(), o, log, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.run(context.Background()); err != nil {
			b.Fatal(err)
		}
		records += s.recorderStats.Records.Load()
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
