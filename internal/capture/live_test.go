package capture

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/apitap/apitap/internal/decode"
)

// countSink counts without allocating, so that allocation tests see only
// the reader's own.
type countSink struct{ adds, flushes int }

func (c *countSink) Add(*decode.Packet, time.Time) bool { c.adds++; return true }
func (c *countSink) Flush()                             { c.flushes++ }

// listenOne opens one socket with the given batch and a reader on it that
// the test drives step by step.
func listenOne(t *testing.T, batch int, sink Sink, stats *Stats) (*reader, *net.UDPConn) {
	t.Helper()
	l, err := Listen(LiveConfig{Addr: "127.0.0.1:0", Sockets: 1, ReadBuffer: 4 << 20, ReadBatch: batch, FlushInterval: time.Hour}, stats)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r, err := newReader(l, l.conns[0], sink)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, l.Addr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r, c
}

// stepUntil runs reader steps until want datagrams were counted and
// returns the largest batch one step read.
func stepUntil(t *testing.T, r *reader, stats *Stats, want uint64) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	largest := 0
	for stats.Datagrams.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("read %d datagrams, want %d", stats.Datagrams.Load(), want)
		}
		r.step()
		largest = max(largest, r.n)
	}
	return largest
}

// A batch mixing valid datagrams, each kind of bad one and an empty one is
// counted exactly, datagram by datagram, whatever the batch size.
func TestLiveBatchOfMixedValidity(t *testing.T) {
	inner := frame(t, "hello", 0, false)
	good := append([]byte{0x08, 0, 0, 0, 0, 0x10, 0x92, 0}, inner...)
	notVXLAN := []byte{0, 0, 0, 0, 0, 0, 1, 0}                      // I flag missing
	cut := append([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, inner[:30]...) // cut inside IP
	short := []byte{0x08, 0, 0}                                     // shorter than a VXLAN header
	var sent [][]byte
	for i := range 40 {
		switch i % 5 {
		case 1:
			sent = append(sent, notVXLAN)
		case 3:
			sent = append(sent, cut)
		case 4:
			if i == 9 {
				sent = append(sent, []byte{})
			} else {
				sent = append(sent, short)
			}
		default:
			sent = append(sent, good)
		}
	}
	want := map[decode.Reason]uint64{}
	var wantBytes uint64
	for _, d := range sent {
		var p decode.Packet
		want[decode.VXLAN(d, &p)]++
		wantBytes += uint64(len(d))
	}
	if want[decode.OK] != 16 || len(want) < 3 {
		t.Fatalf("test data: outcomes %v", want)
	}
	for _, batch := range []int{1, 7, 64} {
		var stats Stats
		sink := &countSink{}
		r, c := listenOne(t, batch, sink, &stats)
		for _, d := range sent {
			if _, err := c.Write(d); err != nil {
				t.Fatal(err)
			}
		}
		if largest := stepUntil(t, r, &stats, uint64(len(sent))); largest != min(batch, len(sent)) {
			t.Errorf("batch %d: largest read %d datagrams, want %d", batch, largest, min(batch, len(sent)))
		}
		if got := stats.Datagrams.Load(); got != uint64(len(sent)) {
			t.Errorf("batch %d: %d datagrams, want %d", batch, got, len(sent))
		}
		if got := stats.Bytes.Load(); got != wantBytes {
			t.Errorf("batch %d: %d bytes, want %d", batch, got, wantBytes)
		}
		for reason := decode.Reason(0); reason < decode.NumReasons; reason++ {
			if got := stats.Decoded[reason].Load(); got != want[reason] {
				t.Errorf("batch %d: %s %d, want %d", batch, reason, got, want[reason])
			}
		}
		if sink.adds != int(want[decode.OK]) || stats.Oversized.Load() != 0 || stats.ReadErrors.Load() != 0 {
			t.Errorf("batch %d: %d packets to the sink, want %d; oversized %d, read errors %d", batch, sink.adds, want[decode.OK], stats.Oversized.Load(), stats.ReadErrors.Load())
		}
	}
}

// Reading a batch of datagrams allocates nothing.
func TestLiveReadDoesNotAllocate(t *testing.T) {
	var stats Stats
	sink := &countSink{}
	r, c := listenOne(t, 16, sink, &stats)
	good := append([]byte{0x08, 0, 0, 0, 0, 0x10, 0x92, 0}, frame(t, "hello", 0, false)...)
	raw, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sent uint64
	allocs := testing.AllocsPerRun(50, func() {
		for range 16 {
			// A raw write: the net package's Write would count its own.
			_ = raw.Write(func(fd uintptr) bool { _, _ = syscallWrite(int(fd), good); return true })
		}
		sent += 16
		for stats.Datagrams.Load() < sent {
			r.step()
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per batch of 16 datagrams, want 0", allocs)
	}
	if sink.adds != int(sent) {
		t.Errorf("sink got %d packets, want %d", sink.adds, sent)
	}
}

func syscallWrite(fd int, b []byte) (int, error) { return unix.Write(fd, b) }
