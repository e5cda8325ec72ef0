package capture

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/apitap/apitap/internal/decode"
)

// collect is a Sink that keeps copies of what it is given.
type collect struct {
	mu       sync.Mutex
	payloads []string
	vnis     []uint32
	times    []time.Time
	flushes  int
}

func (c *collect) Add(p *decode.Packet, ts time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payloads = append(c.payloads, string(p.Payload))
	c.vnis = append(c.vnis, p.VNI)
	c.times = append(c.times, ts)
	return true
}

func (c *collect) Flush() { c.mu.Lock(); c.flushes++; c.mu.Unlock() }

func (c *collect) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.payloads) }

// frame builds an Ethernet/IPv4/TCP frame, optionally wrapped in outer
// Ethernet/IPv4/UDP 4789/VXLAN as captured on a sniffer host.
func frame(t *testing.T, payload string, vni uint32, wrap bool) []byte {
	t.Helper()
	inner := serialize(t,
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{198, 18, 1, 1}, DstIP: net.IP{198, 18, 1, 2}},
		&layers.TCP{SrcPort: 40000, DstPort: 80, Seq: 1, ACK: true}, gopacket.Payload(payload))
	if !wrap {
		return inner
	}
	vx := append([]byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}, inner...)
	return serialize(t,
		&layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 3}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 4}, EthernetType: layers.EthernetTypeIPv4},
		&layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 2, 1}, DstIP: net.IP{198, 18, 2, 2}},
		&layers.UDP{SrcPort: 55555, DstPort: 4789}, gopacket.Payload(vx))
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	for _, l := range ls {
		if tcp, ok := l.(*layers.TCP); ok {
			tcp.SetNetworkLayerForChecksum(ls[1].(*layers.IPv4))
		}
		if udp, ok := l.(*layers.UDP); ok {
			udp.SetNetworkLayerForChecksum(ls[1].(*layers.IPv4))
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func TestReplayPcapAndPcapng(t *testing.T) {
	frames := [][]byte{frame(t, "one", 4242, true), frame(t, "two", 0, false), []byte{1, 2, 3}, frame(t, "three", 7, true)}
	base := time.Unix(1795884184, 0)
	write := map[string]func(f *os.File) func([]byte, time.Time){
		"x.pcap": func(f *os.File) func([]byte, time.Time) {
			w := pcapgo.NewWriter(f)
			if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
				t.Fatal(err)
			}
			return func(b []byte, ts time.Time) {
				w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
			}
		},
		"x.pcapng": func(f *os.File) func([]byte, time.Time) {
			w, err := pcapgo.NewNgWriter(f, layers.LinkTypeEthernet)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { w.Flush() })
			return func(b []byte, ts time.Time) {
				w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b), InterfaceIndex: 0}, b)
				w.Flush()
			}
		},
	}
	for name, mk := range write {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name)
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			add := mk(f)
			for i, b := range frames {
				add(b, base.Add(time.Duration(i)*time.Second))
			}
			f.Close()
			var got collect
			var stats Stats
			if err := ReplayFile(context.Background(), path, &got, &stats); err != nil {
				t.Fatal(err)
			}
			if got.count() != 3 || got.payloads[0] != "one" || got.vnis[0] != 4242 || got.payloads[1] != "two" || got.vnis[1] != 0 || got.vnis[2] != 7 {
				t.Fatalf("payloads %q vnis %v", got.payloads, got.vnis)
			}
			if !got.times[2].Equal(base.Add(3 * time.Second)) {
				t.Errorf("capture time %v, want %v", got.times[2], base.Add(3*time.Second))
			}
			if stats.Datagrams.Load() != 4 || stats.Decoded[decode.OK].Load() != 3 || stats.Decoded[decode.Truncated].Load() != 1 {
				t.Errorf("stats: datagrams %d ok %d truncated %d", stats.Datagrams.Load(), stats.Decoded[decode.OK].Load(), stats.Decoded[decode.Truncated].Load())
			}
			if got.flushes == 0 {
				t.Error("no flush at end of file")
			}
		})
	}
}

func TestReplayTruncatedFileAndGarbage(t *testing.T) {
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	b := frame(t, "whole", 0, false)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(1, 0), CaptureLength: len(b), Length: len(b)}, b)
	w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(2, 0), CaptureLength: len(b), Length: len(b)}, b)
	cut := buf.Bytes()[:buf.Len()-10] // a capture cut mid-record
	var got collect
	if err := Replay(context.Background(), bytes.NewReader(cut), &got, &Stats{}); err != nil {
		t.Fatalf("truncated last record: %v", err)
	}
	if got.count() != 1 {
		t.Errorf("%d packets from a cut file, want 1", got.count())
	}
	if err := Replay(context.Background(), bytes.NewReader([]byte("GET / HTTP/1.1\r\n\r\n")), &got, &Stats{}); err == nil {
		t.Error("a text file was accepted as a capture")
	}
	if err := ReplayFile(context.Background(), "/nonexistent.pcap", &got, &Stats{}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestLiveSocketsShareThePortAndCount(t *testing.T) {
	var stats Stats
	l, err := Listen(LiveConfig{Addr: "127.0.0.1:0", Sockets: 3, ReadBuffer: 1 << 20}, &stats)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.conns[0].LocalAddr().(*net.UDPAddr).Port
	for _, c := range l.conns {
		if c.LocalAddr().(*net.UDPAddr).Port != port {
			t.Fatalf("sockets on different ports: %v vs %d", c.LocalAddr(), port)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var sinks []*collect
	done := make(chan struct{})
	go func() {
		l.Serve(ctx, func() Sink {
			mu.Lock()
			defer mu.Unlock()
			c := &collect{}
			sinks = append(sinks, c)
			return c
		})
		close(done)
	}()
	conn, err := net.Dial("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	inner := frame(t, "hello", 0, false)
	good := append([]byte{0x08, 0, 0, 0, 0, 0x10, 0x92, 0}, inner...)
	for i := 0; i < 50; i++ {
		conn.Write(good)
	}
	conn.Write([]byte{0, 0, 0, 0, 0, 0, 1, 0})                           // I flag missing
	conn.Write(append([]byte{0x08, 0, 0, 0, 0, 0, 1, 0}, inner[:30]...)) // cut inside IP
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range sinks {
			n += s.count()
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for total() < 50 || stats.Datagrams.Load() < 52 {
		if time.Now().After(deadline) {
			t.Fatalf("got %d packets, %d datagrams", total(), stats.Datagrams.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if stats.Decoded[decode.BadVXLAN].Load() != 1 || stats.Decoded[decode.Truncated].Load() != 1 || stats.Decoded[decode.OK].Load() != 50 {
		t.Errorf("decode counts: ok %d bad_vxlan %d truncated %d", stats.Decoded[decode.OK].Load(), stats.Decoded[decode.BadVXLAN].Load(), stats.Decoded[decode.Truncated].Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sinks {
		for i, v := range s.vnis {
			if v != 0x1092 || s.payloads[i] != "hello" {
				t.Fatalf("packet %d: vni %d payload %q", i, v, s.payloads[i])
			}
		}
	}
}

func TestLiveConfigValidate(t *testing.T) {
	for _, c := range []LiveConfig{{Addr: "nope:nope:1"}, {Sockets: -1}, {Sockets: 1000}, {ReadBuffer: -5}, {ReadBatch: -1}, {ReadBatch: MaxReadBatch + 1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// A pcapng file whose interfaces have different link types (Ethernet and
// raw IP): every frame is decoded with its own interface's type.
func TestReplayPcapngMixedLinkTypes(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := w.AddInterface(pcapgo.NgInterface{LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	eth := frame(t, "ether", 0, false)
	ip := eth[14:] // the same packet without its Ethernet header
	for i := 0; i < 3; i++ {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(eth), Length: len(eth)}, eth)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Unix(int64(i), 0), CaptureLength: len(ip), Length: len(ip), InterfaceIndex: raw}, ip)
	}
	w.Flush()
	var got collect
	var stats Stats
	if err := Replay(context.Background(), &buf, &got, &stats); err != nil {
		t.Fatal(err)
	}
	if got.count() != 6 || stats.Datagrams.Load() != 6 {
		t.Errorf("%d packets of %d frames, want 6 of 6", got.count(), stats.Datagrams.Load())
	}
}
