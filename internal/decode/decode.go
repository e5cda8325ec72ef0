// Package decode takes mirrored frames apart in place: VXLAN, Ethernet with
// optional 802.1Q tags, IPv4, IPv6 and TCP, by direct offsets. It allocates
// nothing and never validates inner checksums (offloaded checksums are wrong
// in mirrored copies). Every frame it cannot use is classified with a Reason
// so the caller can count it.
package decode

import (
	"encoding/binary"
	"net/netip"
)

// VXLANPort is the UDP port AWS Traffic Mirroring sends to.
const VXLANPort = 4789

// TCP flags.
const (
	FIN = 0x01
	SYN = 0x02
	RST = 0x04
	PSH = 0x08
	ACK = 0x10
)

// Link types of capture files (the pcap LINKTYPE_ numbers).
const (
	LinkEthernet   = 1
	LinkRaw        = 101
	LinkLinuxSLL   = 113
	LinkIPv4       = 228
	LinkIPv6       = 229
	LinkLinuxSLL2  = 276
	linkNullBSD    = 0
	linkRawOpenBSD = 12
)

// Reason says why a frame was not decoded into a TCP segment.
type Reason uint8

const (
	OK          Reason = iota
	Truncated          // the capture ends inside a header
	BadVXLAN           // VXLAN header shorter than 8 bytes or I flag not set
	NotVXLAN           // outer UDP to another port than VXLANPort
	NotIP              // neither IPv4 nor IPv6 (ARP, LLDP, ...)
	Fragment           // an IP fragment: the mirrored copy cannot be reassembled reliably
	NotTCP             // UDP, ICMP and the rest
	Malformed          // impossible header lengths or versions
	BadLinkType        // a capture link type this decoder does not know
	NumReasons
)

var reasonNames = [NumReasons]string{"ok", "truncated", "bad_vxlan", "not_vxlan", "not_ip", "ip_fragment", "not_tcp", "malformed", "bad_link_type"}

func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Packet is one decoded TCP segment. Payload aliases the frame it was
// decoded from: copy it before the frame's buffer is reused.
type Packet struct {
	VNI              uint32
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	Flags            uint8
	Payload          []byte
	// Missing counts payload bytes the IP header announces but the capture
	// does not hold: the frame was cut (mirror PacketLength, snap length).
	// The reassembler treats them as lost bytes after Payload.
	Missing int
}

// VXLAN decodes a UDP payload that starts with a VXLAN header, as received
// on a mirror target's socket.
func VXLAN(b []byte, p *Packet) Reason {
	if len(b) < 8 {
		return BadVXLAN
	}
	if b[0]&0x08 == 0 {
		return BadVXLAN
	}
	vni := uint32(b[4])<<16 | uint32(b[5])<<8 | uint32(b[6])
	r := ethernet(b[8:], p, false)
	p.VNI = vni
	return r
}

// Frame decodes one captured frame of the given link type. When the frame
// is VXLAN on VXLANPort (a capture taken on a sniffer host) the inner frame
// is decoded with its VNI; otherwise the frame itself must carry TCP and
// the VNI is 0.
func Frame(linkType int, b []byte, p *Packet) Reason {
	switch linkType {
	case LinkEthernet:
		return ethernet(b, p, true)
	case LinkRaw, LinkIPv4, LinkIPv6, linkRawOpenBSD:
		return ip(b, p, true)
	case LinkLinuxSLL:
		if len(b) < 16 {
			return Truncated
		}
		return etherType(binary.BigEndian.Uint16(b[14:]), b[16:], p, true)
	case LinkLinuxSLL2:
		if len(b) < 20 {
			return Truncated
		}
		return etherType(binary.BigEndian.Uint16(b[0:]), b[20:], p, true)
	case linkNullBSD:
		if len(b) < 4 {
			return Truncated
		}
		return ip(b[4:], p, true)
	}
	return BadLinkType
}

func ethernet(b []byte, p *Packet, outer bool) Reason {
	if len(b) < 14 {
		return Truncated
	}
	return etherType(binary.BigEndian.Uint16(b[12:]), b[14:], p, outer)
}

func etherType(t uint16, b []byte, p *Packet, outer bool) Reason {
	// 802.1Q and 802.1ad tags, possibly stacked.
	for t == 0x8100 || t == 0x88a8 {
		if len(b) < 4 {
			return Truncated
		}
		t = binary.BigEndian.Uint16(b[2:])
		b = b[4:]
	}
	switch t {
	case 0x0800, 0x86dd:
		return ip(b, p, outer)
	}
	return NotIP
}

// ip decodes an IPv4 or IPv6 packet. When outer is true a UDP datagram to
// VXLANPort is unwrapped; inner packets are never unwrapped again.
func ip(b []byte, p *Packet, outer bool) Reason {
	if len(b) < 1 {
		return Truncated
	}
	var proto uint8
	var body []byte
	missing := 0
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return Truncated
		}
		ihl := int(b[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(b[2:]))
		if ihl < 20 || total < ihl {
			return Malformed
		}
		if len(b) < ihl {
			return Truncated
		}
		// More-fragments set or a non-zero offset.
		if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 {
			return Fragment
		}
		proto = b[9]
		p.Src = netip.AddrFrom4([4]byte(b[12:16]))
		p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
		body, missing = clip(b, ihl, total)
	case 6:
		if len(b) < 40 {
			return Truncated
		}
		plen := int(binary.BigEndian.Uint16(b[4:]))
		if plen == 0 {
			return Malformed // jumbogram: never seen on a mirrored ENI
		}
		p.Src = netip.AddrFrom16([16]byte(b[8:24]))
		p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
		body, missing = clip(b, 40, 40+plen)
		proto = b[6]
		// Walk extension headers up to the transport header.
	ext:
		for {
			switch proto {
			case 0, 43, 60: // hop-by-hop, routing, destination options
				if len(body) < 8 {
					return short(missing)
				}
				n := (int(body[1]) + 1) * 8
				if len(body) < n {
					return short(missing)
				}
				proto = body[0]
				body = body[n:]
				continue
			case 44:
				return Fragment
			}
			break ext
		}
	default:
		return Malformed
	}
	switch proto {
	case 6:
		return tcp(body, missing, p)
	case 17:
		if !outer {
			return NotTCP
		}
		if len(body) < 8 {
			return short(missing)
		}
		if binary.BigEndian.Uint16(body[2:]) != VXLANPort {
			return NotVXLAN
		}
		if missing > 0 {
			return Truncated // a cut outer datagram: the inner packet is incomplete
		}
		return VXLAN(body[8:], p)
	}
	return NotTCP
}

// clip returns the IP payload from hdr to the packet's announced end,
// dropping Ethernet padding, and how many announced bytes are not captured.
func clip(b []byte, hdr, end int) ([]byte, int) {
	if end <= len(b) {
		return b[hdr:end], 0
	}
	return b[hdr:], end - len(b)
}

// short classifies a header that does not fit in the bytes left of an IP
// packet: the capture cut it, or the packet announces too few bytes for it.
func short(missing int) Reason {
	if missing > 0 {
		return Truncated
	}
	return Malformed
}

func tcp(b []byte, missing int, p *Packet) Reason {
	if len(b) < 20 {
		return short(missing)
	}
	off := int(b[12]>>4) * 4
	if off < 20 {
		return Malformed
	}
	if len(b) < off {
		return short(missing)
	}
	p.SrcPort = binary.BigEndian.Uint16(b[0:])
	p.DstPort = binary.BigEndian.Uint16(b[2:])
	p.Seq = binary.BigEndian.Uint32(b[4:])
	p.Ack = binary.BigEndian.Uint32(b[8:])
	p.Flags = b[13]
	p.Payload = b[off:]
	p.Missing = missing
	p.VNI = 0
	return OK
}
