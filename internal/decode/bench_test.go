package decode

import (
	"bytes"
	"testing"

	"github.com/google/gopacket/layers"
)

// fullSegment is a mirrored frame as seen in production: Ethernet, IPv4 and
// TCP with timestamps carrying 1,400 bytes of an HTTP body.
func fullSegment(t testing.TB) []byte {
	t.Helper()
	tcp := newTCP()
	tcp.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}},
	}
	body := bytes.Repeat([]byte(`{"id":42,"name":"widget","tags":["a","b"]},`), 1400/43+1)[:1400]
	return eth4(t, ip4TCP(t, tcp, body, nil))
}

func BenchmarkVXLAN(b *testing.B) {
	in := vxlan(b, testVNI, fullSegment(b))
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var p Packet
	for b.Loop() {
		if r := VXLAN(in, &p); r != OK {
			b.Fatal(r)
		}
	}
	if len(p.Payload) != 1400 {
		b.Fatalf("payload %d bytes", len(p.Payload))
	}
}

func BenchmarkFrame(b *testing.B) {
	for _, c := range []struct {
		name     string
		linkType int
		in       []byte
	}{
		// A capture taken on a sniffer host: the mirrored datagram.
		{"ethernet_vxlan", LinkEthernet, mirrored(b, testVNI, fullSegment(b))},
		// A capture of the traffic itself.
		{"ethernet_tcp", LinkEthernet, fullSegment(b)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.in)))
			var p Packet
			for b.Loop() {
				if r := Frame(c.linkType, c.in, &p); r != OK {
					b.Fatal(r)
				}
			}
			if len(p.Payload) != 1400 {
				b.Fatalf("payload %d bytes", len(p.Payload))
			}
		})
	}
}

// TestZeroAllocs fails the ordinary test run when decoding starts to
// allocate, on the hot path and on the rejection paths alike.
func TestZeroAllocs(t *testing.T) {
	seg := fullSegment(t)
	var p Packet
	check := func(name string, want Reason, dec func() Reason) {
		t.Helper()
		if r := dec(); r != want {
			t.Fatalf("%s: %v, want %v", name, r, want)
		}
		if n := testing.AllocsPerRun(200, func() { dec() }); n != 0 {
			t.Errorf("%s: %v allocations per decode, want 0", name, n)
		}
	}
	vx := vxlan(t, testVNI, seg)
	check("VXLAN", OK, func() Reason { return VXLAN(vx, &p) })
	v6 := vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, hopByHop8), 10))
	check("VXLAN ipv6", OK, func() Reason { return VXLAN(v6, &p) })
	cut := vx[:200]
	check("VXLAN truncated", OK, func() Reason { return VXLAN(cut, &p) })
	m := mirrored(t, testVNI, seg)
	check("Frame ethernet vxlan", OK, func() Reason { return Frame(LinkEthernet, m, &p) })
	check("Frame ethernet tcp", OK, func() Reason { return Frame(LinkEthernet, seg, &p) })
	s2 := sll2(0x86dd, ip6TCP(t, newTCP(), httpGet, 0, nil))
	check("Frame sll2", OK, func() Reason { return Frame(LinkLinuxSLL2, s2, &p) })
	check("Frame cut", Truncated, func() Reason { return Frame(LinkEthernet, m[:100], &p) })
	arp := ether(t, layers.EthernetTypeARP, fill(28, 1), false)
	check("Frame arp", NotIP, func() Reason { return Frame(LinkEthernet, arp, &p) })
	check("Frame bad link type", BadLinkType, func() Reason { return Frame(105, seg, &p) })
}
