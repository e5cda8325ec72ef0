package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/apitap/apitap/internal/embedded"
)

// loadBody is exchange i's request body: sizes from 10 bytes to 6 KB, so
// that the records use several of bufpool's size classes.
func loadBody(i int) string {
	unit := fmt.Sprintf("<%d>", i)
	size := 10 + (i*613)%6000
	return strings.Repeat(unit, size/len(unit)+1)[:size]
}

// writeLoadCapture writes n exchanges, one connection each, as Ethernet
// frames into a pcap file.
func writeLoadCapture(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1795884184, 0)
	for i := range n {
		for _, d := range vxlanConversation(t, 0, uint16(1024+i), fmt.Sprintf("/items/%d", i), loadBody(i)) {
			frame := d[8:] // without the VXLAN header: plain Ethernet, VNI 0
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
				t.Fatal(err)
			}
			ts = ts.Add(10 * time.Microsecond)
		}
	}
}

// TestRecordBuffersReleasedOnce replays thousands of exchanges into a broker
// and a line file, through a small Kafka queue so that buffers are reused
// all the time, and overwrites every buffer as it is released: a buffer
// released (or handed out again) while the line writer or kafka-go still
// needed it would show as a garbled record. Every record the broker and the
// file received must be intact, and each buffer released exactly once. Run
// it with -race too (make unit does).
func TestRecordBuffersReleasedOnce(t *testing.T) {
	const n = 3000
	dir := t.TempDir()
	pcapPath, out := filepath.Join(dir, "load.pcap"), filepath.Join(dir, "records.jsonl")
	writeLoadCapture(t, pcapPath, n)
	broker, err := embedded.Start("", "akto.api.logs", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	o, err := parseFlags([]string{"-pcap", pcapPath, "-kafka", broker.Addr(), "-out", out, "-workers", "2",
		"-kafka-queue", "64", "-kafka-linger", "1ms", "-admin-addr", "", "-health-addr", ""}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := newSniffer(ctx, o, slog.New(slog.DiscardHandler), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var releases atomic.Int64
	s.released = func(buf []byte) {
		releases.Add(1)
		for i := range buf {
			buf[i] = 'X'
		}
	}
	if err := s.run(ctx); err != nil {
		t.Fatal(err)
	}

	check := func(where string, key, value []byte) {
		t.Helper()
		var rec map[string]string
		if err := json.Unmarshal(value, &rec); err != nil {
			t.Fatalf("%s: garbled record %.80q: %v", where, value, err)
		}
		var i int
		if _, err := fmt.Sscanf(rec["path"], "/items/%d", &i); err != nil {
			t.Fatalf("%s: record with path %q", where, rec["path"])
		}
		if rec["requestPayload"] != loadBody(i) || rec["responsePayload"] != "echo:"+loadBody(i) {
			t.Fatalf("%s: record %d has the wrong bodies: %.60q / %.60q", where, i, rec["requestPayload"], rec["responsePayload"])
		}
		if want := fmt.Sprintf("0/198.18.1.1:%d>198.18.1.2:80", 1024+i); key != nil && string(key) != want {
			t.Fatalf("%s: record %d has key %q, want %q", where, i, key, want)
		}
	}
	msgs, err := embedded.ReadAll(ctx, broker.Addr(), "akto.api.logs")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("%d records in Kafka, want %d", len(msgs), n)
	}
	for _, m := range msgs {
		check("kafka", m.Key, m.Value)
	}
	lines, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n")
	if len(got) != n {
		t.Fatalf("%d lines in %s, want %d", len(got), out, n)
	}
	for _, l := range got {
		check("line", nil, []byte(l))
	}
	if r := releases.Load(); r != n {
		t.Errorf("%d buffers released, want %d (one per record)", r, n)
	}
}
