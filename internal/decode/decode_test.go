package decode

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frames are built with gopacket's serializers so that the expected layout
// does not come from the code under test.

var (
	cli4 = netip.MustParseAddr("10.0.1.23")
	srv4 = netip.MustParseAddr("10.0.2.34")
	cli6 = netip.MustParseAddr("2001:db8::17")
	srv6 = netip.MustParseAddr("2001:db8:1::22")
	// The outer addresses of a mirrored datagram: source ENI to mirror target.
	eni4    = netip.MustParseAddr("172.31.5.6")
	target4 = netip.MustParseAddr("172.31.9.10")
	eni6    = netip.MustParseAddr("2600:1f18::5")
	target6 = netip.MustParseAddr("2600:1f18::9")

	macA = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	macB = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}

	httpGet = []byte("GET /api/v1/orders?id=42 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: test\r\n\r\n")
)

const (
	cliPort = 49152
	srvPort = 8080
	testSeq = 0x11223344
	testAck = 0xaabbccdd
	testVNI = 0xabcdef
)

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		t.Fatalf("serializing: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func ipSlice(a netip.Addr) net.IP { return net.IP(a.AsSlice()) }

// newTCP is a PSH|ACK segment from the client to the server.
func newTCP() *layers.TCP {
	return &layers.TCP{SrcPort: cliPort, DstPort: srvPort, Seq: testSeq, Ack: testAck, PSH: true, ACK: true, Window: 502}
}

func newIPv4(src, dst netip.Addr, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: ipSlice(src), DstIP: ipSlice(dst)}
}

func newIPv6(src, dst netip.Addr, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, FlowLabel: 0x12345, NextHeader: next, SrcIP: ipSlice(src), DstIP: ipSlice(dst)}
}

// ip4TCP is an IPv4 packet carrying tcp and payload; mod, when not nil,
// changes the headers before they are serialized.
func ip4TCP(t testing.TB, tcp *layers.TCP, payload []byte, mod func(*layers.IPv4)) []byte {
	t.Helper()
	ip := newIPv4(cli4, srv4, layers.IPProtocolTCP)
	if mod != nil {
		mod(ip)
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, tcp, gopacket.Payload(payload))
}

// ip6TCP is an IPv6 packet carrying tcp and payload after the raw extension
// header chain ext, whose first header has type first.
func ip6TCP(t testing.TB, tcp *layers.TCP, payload []byte, first layers.IPProtocol, ext []byte) []byte {
	t.Helper()
	if ext == nil {
		first = layers.IPProtocolTCP
	}
	ip := newIPv6(cli6, srv6, first)
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	ls := []gopacket.SerializableLayer{ip}
	if ext != nil {
		ls = append(ls, gopacket.Payload(ext))
	}
	return serialize(t, append(ls, tcp, gopacket.Payload(payload))...)
}

// ip4UDP is an IPv4 UDP datagram.
func ip4UDP(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	ip := newIPv4(src, dst, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, udp, gopacket.Payload(payload))
}

// ip6UDP is an IPv6 UDP datagram.
func ip6UDP(t testing.TB, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	t.Helper()
	ip := newIPv6(src, dst, layers.IPProtocolUDP)
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, ip, udp, gopacket.Payload(payload))
}

// ether wraps pkt in an Ethernet header and the given 802.1Q tags
// (outermost first). qinq gives the outermost tag the 802.1ad type. Frames
// shorter than 60 bytes are padded with zeros, as gopacket and NICs do.
func ether(t testing.TB, typ layers.EthernetType, pkt []byte, qinq bool, vlans ...uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: macA, DstMAC: macB, EthernetType: typ}
	ls := []gopacket.SerializableLayer{eth}
	if len(vlans) > 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		if qinq {
			eth.EthernetType = layers.EthernetTypeQinQ
		}
		for i, id := range vlans {
			tag := &layers.Dot1Q{VLANIdentifier: id, Priority: 3, Type: layers.EthernetTypeDot1Q}
			if i == len(vlans)-1 {
				tag.Type = typ
			}
			ls = append(ls, tag)
		}
	}
	return serialize(t, append(ls, gopacket.Payload(pkt))...)
}

func eth4(t testing.TB, pkt []byte, vlans ...uint16) []byte {
	return ether(t, layers.EthernetTypeIPv4, pkt, false, vlans...)
}

func eth6(t testing.TB, pkt []byte, vlans ...uint16) []byte {
	return ether(t, layers.EthernetTypeIPv6, pkt, false, vlans...)
}

// vxlan is a VXLAN header with the I flag and vni, followed by frame.
func vxlan(t testing.TB, vni uint32, frame []byte) []byte {
	t.Helper()
	return serialize(t, &layers.VXLAN{ValidIDFlag: true, VNI: vni}, gopacket.Payload(frame))
}

// mirrored is what a sniffer host captures: Ethernet, IPv4, UDP to
// VXLANPort, VXLAN and the mirrored frame.
func mirrored(t testing.TB, vni uint32, frame []byte) []byte {
	t.Helper()
	return eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, vxlan(t, vni, frame)))
}

// sll prepends a Linux cooked (v1) header.
func sll(proto uint16, pkt []byte) []byte {
	h := make([]byte, 16, 16+len(pkt))
	binary.BigEndian.PutUint16(h[0:], 0) // to us
	binary.BigEndian.PutUint16(h[2:], 1) // ARPHRD_ETHER
	binary.BigEndian.PutUint16(h[4:], 6)
	copy(h[6:], macA)
	binary.BigEndian.PutUint16(h[14:], proto)
	return append(h, pkt...)
}

// sll2 prepends a Linux cooked v2 header.
func sll2(proto uint16, pkt []byte) []byte {
	h := make([]byte, 20, 20+len(pkt))
	binary.BigEndian.PutUint16(h[0:], proto)
	binary.BigEndian.PutUint32(h[4:], 3) // interface index
	binary.BigEndian.PutUint16(h[8:], 1) // ARPHRD_ETHER
	h[10] = 0                            // to us
	h[11] = 6
	copy(h[12:], macA)
	return append(h, pkt...)
}

// nullBSD prepends a BSD loopback header (AF_INET in host byte order).
func nullBSD(family uint32, pkt []byte) []byte {
	h := binary.LittleEndian.AppendUint32(nil, family)
	return append(h, pkt...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// set returns a copy of b with b[i] = v for each pair (i, v).
func set(b []byte, iv ...int) []byte {
	b = append([]byte(nil), b...)
	for k := 0; k < len(iv); k += 2 {
		b[iv[k]] = byte(iv[k+1])
	}
	return b
}

func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// Raw IPv6 extension headers. hopByHop8 holds a router alert option;
// hopByHop16 and destOpts16 are two-unit headers padded with PadN.
var (
	hopByHop8  = []byte{6, 0, 5, 2, 0, 0, 1, 0}
	hopByHop16 = []byte{60, 1, 5, 2, 0, 0, 1, 8, 0, 0, 0, 0, 0, 0, 0, 0}
	destOpts16 = []byte{43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	routing8   = []byte{6, 0, 4, 0, 0, 0, 0, 0} // segments left 0: ignored by the receiver
)

// fragHdr is an IPv6 fragment header before a TCP header.
func fragHdr(offset uint16, more bool) []byte {
	h := []byte{6, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef}
	v := offset << 3
	if more {
		v |= 1
	}
	binary.BigEndian.PutUint16(h[2:], v)
	return h
}

// want4 and want6 are the packets the default builders produce.
func want4(vni uint32, payload []byte) Packet {
	return Packet{VNI: vni, Src: cli4, Dst: srv4, SrcPort: cliPort, DstPort: srvPort, Seq: testSeq, Ack: testAck, Flags: PSH | ACK, Payload: payload}
}

func want6(vni uint32, payload []byte) Packet {
	p := want4(vni, payload)
	p.Src, p.Dst = cli6, srv6
	return p
}

func checkPacket(t *testing.T, got, want Packet) {
	t.Helper()
	if got.VNI != want.VNI {
		t.Errorf("VNI = %#x, want %#x", got.VNI, want.VNI)
	}
	if got.Src != want.Src || got.Dst != want.Dst {
		t.Errorf("addresses = %v -> %v, want %v -> %v", got.Src, got.Dst, want.Src, want.Dst)
	}
	if got.SrcPort != want.SrcPort || got.DstPort != want.DstPort {
		t.Errorf("ports = %d -> %d, want %d -> %d", got.SrcPort, got.DstPort, want.SrcPort, want.DstPort)
	}
	if got.Seq != want.Seq || got.Ack != want.Ack {
		t.Errorf("seq, ack = %#x, %#x, want %#x, %#x", got.Seq, got.Ack, want.Seq, want.Ack)
	}
	if got.Flags != want.Flags {
		t.Errorf("flags = %#x, want %#x", got.Flags, want.Flags)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("payload = %q (%d bytes), want %q (%d bytes)", got.Payload, len(got.Payload), want.Payload, len(want.Payload))
	}
	if got.Missing != want.Missing {
		t.Errorf("missing = %d, want %d", got.Missing, want.Missing)
	}
}

// offsetIn returns where sub starts inside b, or -1 when sub is not a
// subslice of b. b must have cap(b) == len(b).
func offsetIn(b, sub []byte) int {
	off := len(b) - cap(sub)
	if off < 0 || off+len(sub) > len(b) {
		return -1
	}
	if cap(sub) == 0 {
		return off
	}
	if &b[:off+1][off] != &sub[:1][0] {
		return -1
	}
	return off
}

type vxlanCase struct {
	name string
	in   []byte
	want Reason
	pkt  Packet // checked when want is OK
}

func vxlanCases(t testing.TB) []vxlanCase {
	t.Helper()
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	seg6 := ip6TCP(t, newTCP(), httpGet, 0, nil)
	short := ip4TCP(t, newTCP(), []byte("hi"), nil)
	syn := newTCP()
	syn.SYN, syn.PSH, syn.ACK, syn.Ack = true, false, false, 0
	synPkt := want4(testVNI, nil)
	synPkt.Flags, synPkt.Ack = SYN, 0
	finRst := newTCP()
	finRst.FIN, finRst.RST = true, true
	finRstPkt := want4(testVNI, httpGet)
	finRstPkt.Flags = FIN | RST | PSH | ACK
	withOpts := newTCP()
	withOpts.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 1, 0, 0, 0, 2, 0}},
	}
	ipOpts := func(ip *layers.IPv4) {
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // router alert
	}
	frag := func(flags layers.IPv4Flag, off uint16) func(*layers.IPv4) {
		return func(ip *layers.IPv4) { ip.Flags, ip.FragOffset = flags, off }
	}
	udp := ip4UDP(t, cli4, srv4, 40000, 53, []byte("dns query"))
	innerVXLAN := ip4UDP(t, cli4, srv4, 40000, VXLANPort, vxlan(t, 7, eth4(t, seg)))
	icmp := serialize(t, newIPv4(cli4, srv4, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 1, Seq: 1}, gopacket.Payload("ping"))
	arp := serialize(t, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: macA, SourceProtAddress: cli4.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: srv4.AsSlice()})
	const ip = 8 + 14      // start of the inner IP header in a VXLAN payload
	const tcpOff = ip + 20 // start of the TCP header behind a 20-byte IPv4 header
	const ip6Len = ip + 4  // IPv6 payload length
	const ip6Next = ip + 6 // IPv6 next header
	cut := 10              // payload bytes the truncated cases keep
	cutLen := tcpOff + 20 + cut

	// Bad checksums: the IPv4 header checksum and the TCP checksum are
	// flipped. Offloaded checksums are wrong in mirrored copies.
	badSum := vxlan(t, testVNI, eth4(t, seg))
	badSum[ip+10] ^= 0xff
	badSum[tcpOff+16] ^= 0xff
	badSum6 := vxlan(t, testVNI, eth6(t, seg6))
	badSum6[ip+40+16] ^= 0x5a

	missing := func(p Packet, n int) Packet { p.Missing = n; return p }

	return []vxlanCase{
		{name: "ipv4", in: vxlan(t, testVNI, eth4(t, seg)), pkt: want4(testVNI, httpGet)},
		{name: "vni zero", in: vxlan(t, 0, eth4(t, seg)), pkt: want4(0, httpGet)},
		{name: "vni max", in: vxlan(t, 1<<24-1, eth4(t, seg)), pkt: want4(1<<24-1, httpGet)},
		// Reserved bits and the group policy fields do not leak into the VNI.
		{name: "reserved bits set", in: set(vxlan(t, testVNI, eth4(t, seg)), 0, 0xff, 1, 0xff, 2, 0xff, 3, 0xff, 7, 0xff), pkt: want4(testVNI, httpGet)},
		{name: "syn without payload", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, syn, nil, nil))), pkt: synPkt},
		{name: "all flags", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, finRst, httpGet, nil))), pkt: finRstPkt},
		{name: "tcp options", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, withOpts, httpGet, nil))), pkt: want4(testVNI, httpGet)},
		{name: "ipv4 options", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, ipOpts))), pkt: want4(testVNI, httpGet)},
		{name: "ipv4 dont fragment clear", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, frag(0, 0)))), pkt: want4(testVNI, httpGet)},
		{name: "bad checksums accepted", in: badSum, pkt: want4(testVNI, httpGet)},
		{name: "bad ipv6 tcp checksum accepted", in: badSum6, pkt: want6(testVNI, httpGet)},

		{name: "ipv6", in: vxlan(t, testVNI, eth6(t, seg6)), pkt: want6(testVNI, httpGet)},
		{name: "ipv6 hop-by-hop", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, hopByHop8))), pkt: want6(testVNI, httpGet)},
		{name: "ipv6 hop-by-hop, dest opts, routing", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, cat(hopByHop16, destOpts16, routing8)))), pkt: want6(testVNI, httpGet)},
		{name: "ipv6 syn", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, syn, nil, 0, nil))), pkt: func() Packet { p := synPkt; p.Src, p.Dst = cli6, srv6; return p }()},

		{name: "802.1q", in: vxlan(t, testVNI, eth4(t, seg, 100)), pkt: want4(testVNI, httpGet)},
		{name: "802.1q ipv6", in: vxlan(t, testVNI, eth6(t, seg6, 4094)), pkt: want6(testVNI, httpGet)},
		{name: "qinq 802.1ad", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeIPv4, seg, true, 10, 20)), pkt: want4(testVNI, httpGet)},
		{name: "double 802.1q", in: vxlan(t, testVNI, eth4(t, seg, 10, 20)), pkt: want4(testVNI, httpGet)},
		{name: "three tags", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeIPv6, seg6, true, 1, 2, 3)), pkt: want6(testVNI, httpGet)},

		// gopacket pads the 56-byte frame to 60 bytes with zeros; a NIC may
		// pad with anything, so extra non-zero trailers are added too.
		{name: "ethernet padding", in: vxlan(t, testVNI, eth4(t, short)), pkt: want4(testVNI, []byte("hi"))},
		{name: "ethernet padding non-zero", in: cat(vxlan(t, testVNI, eth4(t, short)), fill(8, 0xee)), pkt: want4(testVNI, []byte("hi"))},
		{name: "ipv6 trailer", in: cat(vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), []byte("hi"), 0, nil))), fill(30, 0xee)), pkt: want6(testVNI, []byte("hi"))},
		{name: "vlan padding", in: cat(vxlan(t, testVNI, eth4(t, short, 7)), fill(5, 0xee)), pkt: want4(testVNI, []byte("hi"))},
		{name: "no payload padded", in: cat(vxlan(t, testVNI, eth4(t, ip4TCP(t, syn, nil, nil))), fill(4, 0xee)), pkt: synPkt},

		// The mirror session's PacketLength cut the inner packet.
		{name: "truncated payload", in: vxlan(t, testVNI, eth4(t, seg))[:cutLen], pkt: missing(want4(testVNI, httpGet[:cut]), len(httpGet)-cut)},
		{name: "truncated after tcp header", in: vxlan(t, testVNI, eth4(t, seg))[:tcpOff+20], pkt: missing(want4(testVNI, nil), len(httpGet))},
		{name: "truncated ipv6 payload", in: vxlan(t, testVNI, eth6(t, seg6))[:ip+40+20+cut], pkt: missing(want6(testVNI, httpGet[:cut]), len(httpGet)-cut)},
		{name: "truncated ipv6 behind hop-by-hop", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, cat([]byte{6}, hopByHop16[1:]))))[:ip+40+16+20+cut],
			pkt: missing(want6(testVNI, httpGet[:cut]), len(httpGet)-cut)},
		{name: "truncated ip header", in: vxlan(t, testVNI, eth4(t, seg))[:ip+19], want: Truncated},
		{name: "truncated ip options", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, ipOpts)))[:ip+22], want: Truncated},
		{name: "truncated tcp header", in: vxlan(t, testVNI, eth4(t, seg))[:tcpOff+19], want: Truncated},
		{name: "truncated tcp options", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, withOpts, httpGet, nil)))[:tcpOff+25], want: Truncated},
		{name: "truncated ethernet", in: vxlan(t, testVNI, eth4(t, seg))[:8+13], want: Truncated},
		{name: "truncated vlan tag", in: vxlan(t, testVNI, eth4(t, seg, 5))[:8+14+3], want: Truncated},
		{name: "truncated ipv6 header", in: vxlan(t, testVNI, eth6(t, seg6))[:ip+39], want: Truncated},
		{name: "truncated ipv6 extension", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, hopByHop16)))[:ip+40+12], want: Truncated},
		{name: "ethernet only", in: vxlan(t, testVNI, eth4(t, seg))[:8+14], want: Truncated},

		{name: "i flag clear", in: set(vxlan(t, testVNI, eth4(t, seg)), 0, 0x00), want: BadVXLAN},
		{name: "only other flags", in: set(vxlan(t, testVNI, eth4(t, seg)), 0, 0xf7), want: BadVXLAN},
		{name: "short vxlan", in: []byte{0x08, 0, 0, 0, 0, 0, 1}, want: BadVXLAN},
		{name: "empty", in: nil, want: BadVXLAN},
		{name: "vxlan header only", in: vxlan(t, testVNI, nil), want: Truncated},

		{name: "ipv4 more fragments", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, frag(layers.IPv4MoreFragments, 0)))), want: Fragment},
		{name: "ipv4 last fragment", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, frag(0, 185)))), want: Fragment},
		{name: "ipv4 middle fragment", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, frag(layers.IPv4MoreFragments|layers.IPv4DontFragment, 1)))), want: Fragment},
		{name: "ipv6 first fragment", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6Fragment, fragHdr(0, true)))), want: Fragment},
		{name: "ipv6 later fragment", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6Fragment, fragHdr(100, false)))), want: Fragment},
		{name: "ipv6 fragment behind hop-by-hop", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, cat([]byte{44}, hopByHop8[1:], fragHdr(100, true))))), want: Fragment},

		{name: "udp", in: vxlan(t, testVNI, eth4(t, udp)), want: NotTCP},
		// VXLAN inside VXLAN is not unwrapped again.
		{name: "inner udp to vxlan port", in: vxlan(t, testVNI, eth4(t, innerVXLAN)), want: NotTCP},
		{name: "icmp", in: vxlan(t, testVNI, eth4(t, icmp)), want: NotTCP},
		{name: "ipv6 no next header", in: set(vxlan(t, testVNI, eth6(t, seg6)), ip6Next, 59), want: NotTCP},
		{name: "ipv6 udp", in: vxlan(t, testVNI, eth6(t, ip6UDP(t, cli6, srv6, 40000, 53, []byte("dns query")))), want: NotTCP},

		{name: "arp", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeARP, arp, false)), want: NotIP},
		{name: "tagged arp", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeARP, arp, false, 9)), want: NotIP},
		{name: "lldp", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeLinkLayerDiscovery, fill(46, 0), false)), want: NotIP},
		{name: "802.3 length", in: set(vxlan(t, testVNI, eth4(t, seg)), 8+12, 0x00, 8+13, 0x40), want: NotIP},

		{name: "ihl 4", in: set(vxlan(t, testVNI, eth4(t, seg)), ip, 0x44), want: Malformed},
		{name: "ihl 0", in: set(vxlan(t, testVNI, eth4(t, seg)), ip, 0x40), want: Malformed},
		{name: "total length below ihl", in: set(vxlan(t, testVNI, eth4(t, seg)), ip+2, 0, ip+3, 19), want: Malformed},
		{name: "ip version 5", in: set(vxlan(t, testVNI, eth4(t, seg)), ip, 0x55), want: Malformed},
		{name: "ip version 0", in: set(vxlan(t, testVNI, eth4(t, seg)), ip, 0x05), want: Malformed},
		{name: "tcp data offset 4", in: set(vxlan(t, testVNI, eth4(t, seg)), tcpOff+12, 0x40), want: Malformed},
		{name: "tcp data offset 0", in: set(vxlan(t, testVNI, eth4(t, seg)), tcpOff+12, 0x00), want: Malformed},
		{name: "ipv6 tcp data offset 4", in: set(vxlan(t, testVNI, eth6(t, seg6)), ip+40+12, 0x40), want: Malformed},
		{name: "ipv6 jumbogram", in: set(vxlan(t, testVNI, eth6(t, seg6)), ip6Len, 0, ip6Len+1, 0), want: Malformed},
		// The whole packet was captured but its headers do not fit in the
		// length the IP header announces: malformed, not cut by the capture.
		{name: "tcp header beyond ip length", in: set(vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), nil, nil))), tcpOff+12, 0xf0), want: Malformed},
		{name: "ip length below tcp header", in: set(vxlan(t, testVNI, eth4(t, short)), ip+2, 0, ip+3, 30), want: Malformed},
		{name: "ipv6 extension beyond payload length", in: set(vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), nil, layers.IPProtocolIPv6HopByHop, hopByHop8))), ip6Len, 0, ip6Len+1, 4), want: Malformed},
	}
}

func TestVXLAN(t *testing.T) {
	for _, c := range vxlanCases(t) {
		t.Run(c.name, func(t *testing.T) {
			in := c.in[:len(c.in):len(c.in)]
			var p Packet
			if got := VXLAN(in, &p); got != c.want {
				t.Fatalf("VXLAN() = %v, want %v", got, c.want)
			}
			if c.want != OK {
				return
			}
			checkPacket(t, p, c.pkt)
			if offsetIn(in, p.Payload) < 0 {
				t.Errorf("payload does not alias the input")
			}
		})
	}
}

type frameCase struct {
	name     string
	linkType int
	in       []byte
	want     Reason
	pkt      Packet
}

func frameCases(t testing.TB) []frameCase {
	t.Helper()
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	seg6 := ip6TCP(t, newTCP(), httpGet, 0, nil)
	short := ip4TCP(t, newTCP(), []byte("hi"), nil)
	inner := eth4(t, seg)
	vx := vxlan(t, testVNI, inner)
	outer6 := eth6(t, ip6UDP(t, eni6, target6, 61000, VXLANPort, vx))
	const ip = 14 // the outer IP header of an Ethernet frame

	missing := func(p Packet, n int) Packet { p.Missing = n; return p }
	cut := mirrored(t, testVNI, inner)
	plainCut := eth4(t, seg)[:ip+20+20+10]
	// Outer and inner IPv4 header checksums and the inner TCP checksum
	// flipped: none of them is checked.
	badSums := append([]byte(nil), cut...)
	innerAt := len(cut) - len(inner)
	for _, i := range []int{ip + 10, innerAt + 14 + 10, innerAt + 14 + 20 + 16} {
		badSums[i] ^= 0xff
	}

	return []frameCase{
		{name: "ethernet vxlan", linkType: LinkEthernet, in: mirrored(t, testVNI, inner), pkt: want4(testVNI, httpGet)},
		{name: "ethernet vxlan ipv6 inner", linkType: LinkEthernet, in: mirrored(t, 42, eth6(t, seg6)), pkt: want6(42, httpGet)},
		{name: "ethernet ipv6 vxlan", linkType: LinkEthernet, in: outer6, pkt: want4(testVNI, httpGet)},
		{name: "tagged ethernet vxlan", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, vx), 300), pkt: want4(testVNI, httpGet)},
		{name: "qinq ethernet vxlan tagged inner", linkType: LinkEthernet,
			in:  ether(t, layers.EthernetTypeIPv4, ip4UDP(t, eni4, target4, 61000, VXLANPort, vxlan(t, 1, eth6(t, seg6, 12))), true, 300, 301),
			pkt: want6(1, httpGet)},
		{name: "ethernet vxlan inner padding", linkType: LinkEthernet, in: mirrored(t, testVNI, cat(eth4(t, short), fill(6, 0xee))), pkt: want4(testVNI, []byte("hi"))},
		{name: "ethernet vxlan inner truncated", linkType: LinkEthernet, in: mirrored(t, testVNI, eth4(t, seg)[:ip+40+10]), pkt: missing(want4(testVNI, httpGet[:10]), len(httpGet)-10)},
		// The same inner packet behind an outer frame with a trailer: what
		// is missing ends at the outer datagram, not at the capture's end.
		{name: "ethernet vxlan inner truncated trailer", linkType: LinkEthernet, in: cat(mirrored(t, testVNI, eth4(t, seg)[:ip+40+10]), fill(20, 0xee)),
			pkt: missing(want4(testVNI, httpGet[:10]), len(httpGet)-10)},
		{name: "ethernet vxlan bad checksums", linkType: LinkEthernet, in: badSums, pkt: want4(testVNI, httpGet)},
		// An outer datagram cut by the snap length: its inner packet is
		// incomplete whatever it announces.
		{name: "ethernet vxlan cut", linkType: LinkEthernet, in: cut[:len(cut)-1], want: Truncated},
		{name: "ethernet vxlan i flag clear", linkType: LinkEthernet, in: set(cut, 14+20+8, 0), want: BadVXLAN},
		{name: "ethernet vxlan short", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, []byte{8, 0, 0})), want: BadVXLAN},
		{name: "ethernet vxlan udp inside", linkType: LinkEthernet, in: mirrored(t, 1, eth4(t, ip4UDP(t, cli4, srv4, 1, VXLANPort, vx))), want: NotTCP},
		{name: "ethernet vxlan arp inside", linkType: LinkEthernet, in: mirrored(t, 1, ether(t, layers.EthernetTypeARP, fill(28, 1), false)), want: NotIP},
		{name: "ethernet vxlan fragment inside", linkType: LinkEthernet,
			in: mirrored(t, 1, eth4(t, ip4TCP(t, newTCP(), httpGet, func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }))), want: Fragment},
		{name: "ethernet outer fragment", linkType: LinkEthernet, in: eth4(t, func() []byte {
			b := ip4UDP(t, eni4, target4, 61000, VXLANPort, vx)
			b[6] |= 0x20 // more fragments
			return b
		}()), want: Fragment},
		{name: "ethernet udp other port", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, 4790, vx)), want: NotVXLAN},
		{name: "ethernet udp from vxlan port", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, VXLANPort, 61000, vx)), want: NotVXLAN},
		{name: "ethernet ipv6 udp other port", linkType: LinkEthernet, in: eth6(t, ip6UDP(t, eni6, target6, 61000, 53, vx)), want: NotVXLAN},
		{name: "ethernet udp header beyond ip length", linkType: LinkEthernet, in: set(eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, nil)), ip+3, 24), want: Malformed},
		{name: "ethernet udp header cut", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, nil))[:ip+20+7], want: Truncated},

		{name: "ethernet tcp", linkType: LinkEthernet, in: eth4(t, seg), pkt: want4(0, httpGet)},
		{name: "ethernet tcp ipv6", linkType: LinkEthernet, in: eth6(t, seg6), pkt: want6(0, httpGet)},
		{name: "ethernet tcp tagged", linkType: LinkEthernet, in: eth4(t, seg, 100), pkt: want4(0, httpGet)},
		{name: "ethernet tcp qinq", linkType: LinkEthernet, in: ether(t, layers.EthernetTypeIPv6, seg6, true, 100, 200), pkt: want6(0, httpGet)},
		{name: "ethernet tcp padding", linkType: LinkEthernet, in: cat(eth4(t, short), fill(4, 0xee)), pkt: want4(0, []byte("hi"))},
		{name: "ethernet tcp snap length", linkType: LinkEthernet, in: plainCut, pkt: missing(want4(0, httpGet[:10]), len(httpGet)-10)},
		{name: "ethernet arp", linkType: LinkEthernet, in: ether(t, layers.EthernetTypeARP, fill(28, 1), false), want: NotIP},
		{name: "ethernet short", linkType: LinkEthernet, in: eth4(t, seg)[:13], want: Truncated},

		{name: "raw ipv4", linkType: LinkRaw, in: seg, pkt: want4(0, httpGet)},
		{name: "raw ipv6", linkType: LinkRaw, in: seg6, pkt: want6(0, httpGet)},
		{name: "raw vxlan", linkType: LinkRaw, in: ip4UDP(t, eni4, target4, 61000, VXLANPort, vx), pkt: want4(testVNI, httpGet)},
		{name: "raw ipv4 link type", linkType: LinkIPv4, in: seg, pkt: want4(0, httpGet)},
		{name: "raw ipv6 link type", linkType: LinkIPv6, in: seg6, pkt: want6(0, httpGet)},
		{name: "raw openbsd", linkType: linkRawOpenBSD, in: seg, pkt: want4(0, httpGet)},
		{name: "raw truncated", linkType: LinkRaw, in: seg[:30], want: Truncated},
		{name: "raw empty", linkType: LinkRaw, in: nil, want: Truncated},
		{name: "raw not ip", linkType: LinkRaw, in: fill(40, 0x00), want: Malformed},
		{name: "null bsd", linkType: linkNullBSD, in: nullBSD(2, seg), pkt: want4(0, httpGet)},
		{name: "null bsd ipv6", linkType: linkNullBSD, in: nullBSD(30, seg6), pkt: want6(0, httpGet)},
		{name: "null bsd short", linkType: linkNullBSD, in: []byte{2, 0, 0}, want: Truncated},

		{name: "linux sll", linkType: LinkLinuxSLL, in: sll(0x0800, seg), pkt: want4(0, httpGet)},
		{name: "linux sll ipv6", linkType: LinkLinuxSLL, in: sll(0x86dd, seg6), pkt: want6(0, httpGet)},
		{name: "linux sll vxlan", linkType: LinkLinuxSLL, in: sll(0x0800, ip4UDP(t, eni4, target4, 61000, VXLANPort, vx)), pkt: want4(testVNI, httpGet)},
		{name: "linux sll vlan", linkType: LinkLinuxSLL, in: sll(0x8100, cat([]byte{0x00, 0x64, 0x08, 0x00}, seg)), pkt: want4(0, httpGet)},
		{name: "linux sll arp", linkType: LinkLinuxSLL, in: sll(0x0806, fill(28, 1)), want: NotIP},
		{name: "linux sll short", linkType: LinkLinuxSLL, in: sll(0x0800, nil)[:15], want: Truncated},
		{name: "linux sll header only", linkType: LinkLinuxSLL, in: sll(0x0800, nil), want: Truncated},

		{name: "linux sll2", linkType: LinkLinuxSLL2, in: sll2(0x0800, seg), pkt: want4(0, httpGet)},
		{name: "linux sll2 ipv6", linkType: LinkLinuxSLL2, in: sll2(0x86dd, seg6), pkt: want6(0, httpGet)},
		{name: "linux sll2 vxlan", linkType: LinkLinuxSLL2, in: sll2(0x86dd, ip6UDP(t, eni6, target6, 61000, VXLANPort, vx)), pkt: want4(testVNI, httpGet)},
		{name: "linux sll2 arp", linkType: LinkLinuxSLL2, in: sll2(0x0806, fill(28, 1)), want: NotIP},
		{name: "linux sll2 short", linkType: LinkLinuxSLL2, in: sll2(0x0800, nil)[:19], want: Truncated},

		{name: "unknown link type", linkType: 105, in: eth4(t, seg), want: BadLinkType},
		{name: "negative link type", linkType: -1, in: eth4(t, seg), want: BadLinkType},
		{name: "link type 2", linkType: 2, in: eth4(t, seg), want: BadLinkType},
		{name: "unknown link type empty", linkType: 147, in: nil, want: BadLinkType},
	}
}

func TestFrame(t *testing.T) {
	for _, c := range frameCases(t) {
		t.Run(c.name, func(t *testing.T) {
			in := c.in[:len(c.in):len(c.in)]
			var p Packet
			if got := Frame(c.linkType, in, &p); got != c.want {
				t.Fatalf("Frame(%d) = %v, want %v", c.linkType, got, c.want)
			}
			if c.want != OK {
				return
			}
			checkPacket(t, p, c.pkt)
			if offsetIn(in, p.Payload) < 0 {
				t.Errorf("payload does not alias the input")
			}
		})
	}
}

// TestPrefixes cuts valid frames at every length. A cut inside the headers
// is never OK; a cut inside the TCP payload is OK with the captured part as
// Payload and the rest counted as Missing, except when the cut outer
// datagram carries VXLAN.
func TestPrefixes(t *testing.T) {
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	seg6 := ip6TCP(t, newTCP(), httpGet, 0, nil)
	hbh := ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, cat(hopByHop16, destOpts16, routing8))
	opts := newTCP()
	opts.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}
	withOpts := ip4TCP(t, opts, httpGet, func(ip *layers.IPv4) {
		ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	})
	short := ip4TCP(t, newTCP(), []byte("hi"), nil)
	vx := vxlan(t, testVNI, eth4(t, seg))

	type decoder func([]byte, *Packet) Reason
	viaVXLAN := VXLAN
	link := func(lt int) decoder { return func(b []byte, p *Packet) Reason { return Frame(lt, b, p) } }
	cases := []struct {
		name string
		dec  decoder
		in   []byte
		// wrapped: the frame is a VXLAN datagram seen by Frame, so no cut
		// of it is OK.
		wrapped bool
	}{
		{"vxlan ipv4", viaVXLAN, vxlan(t, testVNI, eth4(t, seg)), false},
		{"vxlan ipv4 options", viaVXLAN, vxlan(t, testVNI, eth4(t, withOpts)), false},
		{"vxlan ipv6", viaVXLAN, vxlan(t, testVNI, eth6(t, seg6)), false},
		{"vxlan ipv6 extensions", viaVXLAN, vxlan(t, testVNI, eth6(t, hbh)), false},
		{"vxlan qinq", viaVXLAN, vxlan(t, testVNI, ether(t, layers.EthernetTypeIPv4, seg, true, 1, 2)), false},
		{"vxlan padded", viaVXLAN, cat(vxlan(t, testVNI, eth4(t, short)), fill(3, 0xee)), false},
		{"ethernet tcp", link(LinkEthernet), eth4(t, seg, 7), false},
		{"ethernet padded", link(LinkEthernet), eth4(t, short), false},
		{"raw ipv6", link(LinkRaw), hbh, false},
		{"sll", link(LinkLinuxSLL), sll(0x0800, seg), false},
		{"sll2", link(LinkLinuxSLL2), sll2(0x86dd, seg6), false},
		{"null bsd", link(linkNullBSD), nullBSD(2, seg), false},
		{"ethernet vxlan", link(LinkEthernet), mirrored(t, testVNI, eth4(t, seg)), true},
		{"tagged ethernet ipv6 vxlan", link(LinkEthernet), eth6(t, ip6UDP(t, eni6, target6, 61000, VXLANPort, vx), 5), true},
		{"sll2 vxlan", link(LinkLinuxSLL2), sll2(0x0800, ip4UDP(t, eni4, target4, 61000, VXLANPort, vx)), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			full := c.in[:len(c.in):len(c.in)]
			var want Packet
			if r := c.dec(full, &want); r != OK {
				t.Fatalf("whole frame: %v", r)
			}
			start := offsetIn(full, want.Payload)
			end := start + len(want.Payload) // the IP packet's end
			if start < 0 || want.Missing != 0 {
				t.Fatalf("whole frame: payload at %d, missing %d", start, want.Missing)
			}
			for n := 0; n < len(full); n++ {
				b := append([]byte(nil), full[:n]...)
				b = b[:n:n]
				p := Packet{Payload: []byte("stale"), Missing: -1}
				r := c.dec(b, &p)
				switch {
				case c.wrapped:
					if r != Truncated {
						t.Fatalf("cut at %d/%d: %v, want truncated", n, len(full), r)
					}
				case n < start:
					wantR := Truncated
					if n < 8 && strings.HasPrefix(c.name, "vxlan ") {
						wantR = BadVXLAN
					}
					if r != wantR {
						t.Fatalf("cut at %d/%d inside the headers (payload at %d): %v, want %v", n, len(full), start, r, wantR)
					}
				default:
					if r != OK {
						t.Fatalf("cut at %d/%d inside the payload: %v", n, len(full), r)
					}
					w := want
					w.Payload = want.Payload[:min(n, end)-start]
					w.Missing = max(end-n, 0)
					checkPacket(t, p, w)
					if offsetIn(b, p.Payload) != start {
						t.Fatalf("cut at %d: payload at %d, want %d", n, offsetIn(b, p.Payload), start)
					}
				}
			}
		})
	}
}

// TestPacketReuse decodes into the same Packet repeatedly: no field of an
// earlier segment survives into a later one.
func TestPacketReuse(t *testing.T) {
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	var p Packet
	if r := VXLAN(vxlan(t, testVNI, eth4(t, seg))[:8+14+40+5], &p); r != OK || p.Missing == 0 || p.VNI != testVNI {
		t.Fatalf("truncated: %v, %+v", r, p)
	}
	if r := Frame(LinkEthernet, eth6(t, ip6TCP(t, newTCP(), []byte("x"), 0, nil)), &p); r != OK {
		t.Fatalf("plain: %v", r)
	}
	checkPacket(t, p, want6(0, []byte("x")))
	if r := Frame(LinkEthernet, mirrored(t, 9, eth4(t, seg)), &p); r != OK {
		t.Fatalf("mirrored: %v", r)
	}
	checkPacket(t, p, want4(9, httpGet))
}

func TestReasonString(t *testing.T) {
	want := map[Reason]string{
		OK: "ok", Truncated: "truncated", BadVXLAN: "bad_vxlan", NotVXLAN: "not_vxlan", NotIP: "not_ip",
		Fragment: "ip_fragment", NotTCP: "not_tcp", Malformed: "malformed", BadLinkType: "bad_link_type",
		NumReasons: "unknown", 255: "unknown",
	}
	for r, s := range want {
		if r.String() != s {
			t.Errorf("Reason(%d).String() = %q, want %q", r, r.String(), s)
		}
	}
	seen := map[string]bool{}
	for r := Reason(0); r < NumReasons; r++ {
		if seen[r.String()] || r.String() == "" {
			t.Errorf("Reason(%d) name %q is empty or repeated", r, r.String())
		}
		seen[r.String()] = true
	}
}
