package decode

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

var knownLinkTypes = []int{LinkEthernet, LinkRaw, LinkLinuxSLL, LinkIPv4, LinkIPv6, LinkLinuxSLL2, linkNullBSD, linkRawOpenBSD}

// fuzzLinkType maps any fuzzed number onto a link type the decoder knows,
// keeping known numbers as they are so that seeds read naturally.
func fuzzLinkType(lt uint16) int {
	for _, k := range knownLinkTypes {
		if int(lt) == k {
			return k
		}
	}
	return knownLinkTypes[int(lt)%len(knownLinkTypes)]
}

func FuzzVXLAN(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		checkDecode(t, b, func(p *Packet) Reason { return VXLAN(b, p) }, func() (ref, bool) { return refVXLAN(b, 0) })
	})
}

func FuzzFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, lt uint16, b []byte) {
		b = b[:len(b):len(b)]
		linkType := fuzzLinkType(lt)
		checkDecode(t, b, func(p *Packet) Reason { return Frame(linkType, b, p) }, func() (ref, bool) { return refFrame(linkType, b) })
	})
}

// checkDecode runs dec twice, into a fresh and into a dirty Packet, and
// checks an OK result against a reference walk of the same bytes.
func checkDecode(t *testing.T, b []byte, dec func(*Packet) Reason, walk func() (ref, bool)) {
	t.Helper()
	orig := bytes.Clone(b)
	var p Packet
	r := dec(&p)
	if r >= NumReasons {
		t.Fatalf("reason %d out of range", r)
	}
	if !bytes.Equal(b, orig) {
		t.Fatalf("the decoder modified its input")
	}
	dirty := Packet{VNI: 77, Src: cli6, Dst: cli6, SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, Flags: 5, Payload: []byte("stale"), Missing: 6}
	if r2 := dec(&dirty); r2 != r {
		t.Fatalf("second decode: %v, first %v", r2, r)
	}
	if r != OK {
		return
	}
	if fmt.Sprint(dirty) != fmt.Sprint(p) || offsetIn(b, dirty.Payload) != offsetIn(b, p.Payload) {
		t.Fatalf("decoding into a used Packet gives %+v, into a new one %+v", dirty, p)
	}

	off := offsetIn(b, p.Payload)
	if off < 0 {
		t.Fatalf("payload (%d bytes, cap %d) is not inside the %d-byte input", len(p.Payload), cap(p.Payload), len(b))
	}
	end := off + len(p.Payload)
	if p.Missing < 0 || p.Missing > 65535 {
		t.Fatalf("missing = %d", p.Missing)
	}

	w, ok := walk()
	if !ok {
		t.Fatalf("decoded OK but the reference walk failed: %+v", p)
	}
	if end > w.limit || p.Missing > 0 && end != w.limit {
		t.Fatalf("missing = %d and the payload ends at %d; the packet can hold bytes up to %d", p.Missing, end, w.limit)
	}
	if got := end + p.Missing; got != w.end {
		t.Fatalf("payload end %d + missing %d = %d, the IP header at %d announces an end at %d", end, p.Missing, got, w.ip, w.end)
	}
	tcp := b[w.l4:]
	if dataOff := w.l4 + int(tcp[12]>>4)*4; dataOff != off {
		t.Fatalf("payload at %d, the TCP header at %d says %d", off, w.l4, dataOff)
	}
	want := Packet{
		VNI:     w.vni,
		SrcPort: binary.BigEndian.Uint16(tcp[0:]), DstPort: binary.BigEndian.Uint16(tcp[2:]),
		Seq: binary.BigEndian.Uint32(tcp[4:]), Ack: binary.BigEndian.Uint32(tcp[8:]),
		Flags: tcp[13], Payload: p.Payload, Missing: p.Missing,
	}
	if b[w.ip]>>4 == 4 {
		want.Src = netip.AddrFrom4([4]byte(b[w.ip+12:]))
		want.Dst = netip.AddrFrom4([4]byte(b[w.ip+16:]))
	} else {
		want.Src = netip.AddrFrom16([16]byte(b[w.ip+8:]))
		want.Dst = netip.AddrFrom16([16]byte(b[w.ip+24:]))
	}
	if fmt.Sprint(want) != fmt.Sprint(p) {
		t.Fatalf("decoded %+v, the reference walk says %+v", p, want)
	}
}

// ref is where a reference walk, written apart from the decoder, finds the
// IP packet that carries the decoded segment.
type ref struct {
	vni uint32
	ip  int // the IP header
	l4  int // the TCP header
	end int // where the IP header says the packet ends
	// limit is where the bytes that can hold the packet end: the input's
	// end, or the end of the outer datagram that carries it.
	limit int
}

// The reference walks trust the headers the decoder accepted and only
// guard against running off the input.

func refVXLAN(b []byte, at int) (ref, bool) {
	if len(b) < at+8 {
		return ref{}, false
	}
	w, ok := refEtherType(b, at+8+12, at+8+14, false)
	w.vni = binary.BigEndian.Uint32(b[at+4:]) >> 8
	return w, ok
}

func refFrame(linkType int, b []byte) (ref, bool) {
	switch linkType {
	case LinkEthernet:
		return refEtherType(b, 12, 14, true)
	case LinkLinuxSLL:
		return refEtherType(b, 14, 16, true)
	case LinkLinuxSLL2:
		return refEtherType(b, 0, 20, true)
	case linkNullBSD:
		return refIP(b, 4, true)
	}
	return refIP(b, 0, true)
}

// refEtherType reads the EtherType at typeAt, skips VLAN tags starting at
// next and walks the IP packet behind them.
func refEtherType(b []byte, typeAt, next int, outer bool) (ref, bool) {
	if len(b) < next {
		return ref{}, false
	}
	typ := layers.EthernetType(binary.BigEndian.Uint16(b[typeAt:]))
	for typ == layers.EthernetTypeDot1Q || typ == layers.EthernetTypeQinQ {
		if len(b) < next+4 {
			return ref{}, false
		}
		typ = layers.EthernetType(binary.BigEndian.Uint16(b[next+2:]))
		next += 4
	}
	if typ != layers.EthernetTypeIPv4 && typ != layers.EthernetTypeIPv6 {
		return ref{}, false
	}
	return refIP(b, next, outer)
}

func refIP(b []byte, at int, outer bool) (ref, bool) {
	w := ref{ip: at, limit: len(b)}
	var proto layers.IPProtocol
	switch {
	case len(b) >= at+20 && b[at]>>4 == 4:
		proto = layers.IPProtocol(b[at+9])
		w.l4 = at + int(b[at]&0x0f)*4
		w.end = at + int(binary.BigEndian.Uint16(b[at+2:]))
	case len(b) >= at+40 && b[at]>>4 == 6:
		proto = layers.IPProtocol(b[at+6])
		w.l4 = at + 40
		w.end = at + 40 + int(binary.BigEndian.Uint16(b[at+4:]))
		for proto == layers.IPProtocolIPv6HopByHop || proto == layers.IPProtocolIPv6Routing || proto == layers.IPProtocolIPv6Destination {
			if len(b) < w.l4+2 {
				return ref{}, false
			}
			proto = layers.IPProtocol(b[w.l4])
			w.l4 += 8 + int(b[w.l4+1])*8
		}
	default:
		return ref{}, false
	}
	switch {
	case proto == layers.IPProtocolTCP && len(b) >= w.l4+20:
		return w, true
	case proto == layers.IPProtocolUDP && outer && len(b) >= w.l4+8 && binary.BigEndian.Uint16(b[w.l4+2:]) == VXLANPort:
		inner, ok := refVXLAN(b, w.l4+8)
		inner.limit = min(w.end, len(b))
		return inner, ok
	}
	return ref{}, false
}

// A seed is one entry of a committed seed corpus and the reason it must
// decode to, so that the corpora stay meaningful when the builders change.
type seed struct {
	name     string
	linkType uint16 // FuzzFrame only
	in       []byte
	want     Reason
}

func vxlanSeeds(t testing.TB) []seed {
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	seg6 := ip6TCP(t, newTCP(), httpGet, 0, nil)
	return []seed{
		{name: "ipv4", in: vxlan(t, testVNI, eth4(t, seg))},
		{name: "ipv6_hop_by_hop", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, cat(hopByHop16, destOpts16, routing8))))},
		{name: "qinq", in: vxlan(t, testVNI, ether(t, layers.EthernetTypeIPv4, seg, true, 10, 20))},
		{name: "vlan_ipv6", in: vxlan(t, testVNI, eth6(t, seg6, 100))},
		{name: "padding", in: cat(vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), []byte("hi"), nil))), fill(4, 0xee))},
		{name: "truncated_payload", in: vxlan(t, testVNI, eth4(t, seg))[:8+14+40+10]},
		{name: "truncated_header", in: vxlan(t, testVNI, eth6(t, seg6))[:8+14+40+10], want: Truncated},
		{name: "ipv4_fragment", in: vxlan(t, testVNI, eth4(t, ip4TCP(t, newTCP(), httpGet, func(ip *layers.IPv4) { ip.Flags = layers.IPv4MoreFragments }))), want: Fragment},
		{name: "ipv6_fragment", in: vxlan(t, testVNI, eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6Fragment, fragHdr(100, false)))), want: Fragment},
		{name: "udp", in: vxlan(t, testVNI, eth4(t, ip4UDP(t, cli4, srv4, 40000, 53, []byte("dns query")))), want: NotTCP},
		{name: "i_flag_clear", in: set(vxlan(t, testVNI, eth4(t, seg)), 0, 0), want: BadVXLAN},
	}
}

func frameSeeds(t testing.TB) []seed {
	seg := ip4TCP(t, newTCP(), httpGet, nil)
	seg6 := ip6TCP(t, newTCP(), httpGet, 0, nil)
	vx := vxlan(t, testVNI, eth4(t, seg))
	return []seed{
		{name: "ethernet_vxlan_ipv4", linkType: LinkEthernet, in: mirrored(t, testVNI, eth4(t, seg))},
		{name: "ethernet_ipv6_vxlan_ipv6", linkType: LinkEthernet, in: eth6(t, ip6UDP(t, eni6, target6, 61000, VXLANPort, vxlan(t, 5, eth6(t, seg6))))},
		{name: "ethernet_vlan_vxlan_vlan", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, VXLANPort, vxlan(t, 5, eth4(t, seg, 7))), 300)},
		{name: "ethernet_tcp_ipv6_hop_by_hop", linkType: LinkEthernet, in: eth6(t, ip6TCP(t, newTCP(), httpGet, layers.IPProtocolIPv6HopByHop, hopByHop8))},
		{name: "ethernet_padding", linkType: LinkEthernet, in: cat(eth4(t, ip4TCP(t, newTCP(), []byte("hi"), nil)), fill(4, 0xee))},
		// The mirror cut the inner packet; the outer frame has a trailer.
		{name: "ethernet_vxlan_inner_cut_trailer", linkType: LinkEthernet, in: cat(mirrored(t, testVNI, eth4(t, seg)[:14+40+10]), fill(20, 0xee))},
		{name: "ethernet_truncated", linkType: LinkEthernet, in: eth4(t, seg)[:14+40+10]},
		{name: "ethernet_vxlan_cut", linkType: LinkEthernet, in: mirrored(t, testVNI, eth4(t, seg))[:100], want: Truncated},
		{name: "ethernet_fragment", linkType: LinkEthernet, in: mirrored(t, 1, eth4(t, ip4TCP(t, newTCP(), httpGet, func(ip *layers.IPv4) { ip.FragOffset = 185 }))), want: Fragment},
		{name: "ethernet_udp_other_port", linkType: LinkEthernet, in: eth4(t, ip4UDP(t, eni4, target4, 61000, 53, vx)), want: NotVXLAN},
		{name: "raw_ipv4", linkType: LinkRaw, in: seg},
		{name: "raw_ipv6_truncated", linkType: LinkRaw, in: seg6[:70]},
		{name: "linux_sll_vlan", linkType: LinkLinuxSLL, in: sll(0x8100, cat([]byte{0x00, 0x64, 0x08, 0x00}, seg))},
		{name: "linux_sll2_vxlan", linkType: LinkLinuxSLL2, in: sll2(0x0800, ip4UDP(t, eni4, target4, 61000, VXLANPort, vx))},
		{name: "null_bsd", linkType: linkNullBSD, in: nullBSD(2, seg)},
	}
}

// marshalSeed writes the values in the format of cmd/go's fuzz corpus files.
func marshalSeed(vals ...any) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		default:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		}
	}
	return b.Bytes()
}

// TestSeedCorpora checks that every seed decodes as intended and that the
// committed corpora match the builders. Regenerate them with
// go test -run TestSeedCorpora -update-corpus ./internal/decode/
func TestSeedCorpora(t *testing.T) {
	for _, target := range []struct {
		name  string
		seeds []seed
	}{{"FuzzVXLAN", vxlanSeeds(t)}, {"FuzzFrame", frameSeeds(t)}} {
		dir := filepath.Join("testdata", "fuzz", target.name)
		for _, s := range target.seeds {
			var p Packet
			var r Reason
			var file []byte
			if target.name == "FuzzVXLAN" {
				r = VXLAN(s.in, &p)
				file = marshalSeed(s.in)
			} else {
				r = Frame(int(s.linkType), s.in, &p)
				file = marshalSeed(s.linkType, s.in)
			}
			if r != s.want {
				t.Errorf("%s/%s decodes to %v, want %v", target.name, s.name, r, s.want)
			}
			path := filepath.Join(dir, s.name)
			if *updateCorpus {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, file, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, file) {
				t.Errorf("%s is missing or stale (%v): run go test -run TestSeedCorpora -update-corpus", path, err)
			}
		}
	}
}
