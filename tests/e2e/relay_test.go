package e2e

import (
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/apitap/apitap/tests/testkit"
)

// relay is a user-space UDP relay on the mirror path that impairs it with a
// fixed seed: it drops, duplicates and reorders (holds one datagram back
// and sends it after the next) a share of the datagrams. The kernel here
// has no netem, so this stands in for a lossy network between the mirror
// source and the sniffer.
type relay struct {
	DropRate, DupRate, ReorderRate float64

	in, out *net.UDPConn
	rng     *rand.Rand
	wg      sync.WaitGroup
	pcap    io.Writer // what the relay forwards, when not nil

	mu                                             sync.Mutex
	received, sent, dropped, duplicated, reordered int
}

// relayStats is what the relay did.
type relayStats struct {
	Received, Sent, Dropped, Duplicated, Reordered int
}

// startRelay opens the relay's sockets in namespace ns, listening on
// listen and sending to target, and starts forwarding.
func startRelay(ns, listen, target string, seed uint64, drop, dup, reorder float64, pcap io.Writer) (*relay, error) {
	r := &relay{
		pcap:     pcap,
		DropRate: drop, DupRate: dup, ReorderRate: reorder,
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	laddr, err := net.ResolveUDPAddr("udp4", listen)
	if err != nil {
		return nil, err
	}
	taddr, err := net.ResolveUDPAddr("udp4", target)
	if err != nil {
		return nil, err
	}
	err = testkit.InNetns(ns, func() error {
		in, err := net.ListenUDP("udp4", laddr)
		if err != nil {
			return err
		}
		out, err := net.DialUDP("udp4", nil, taddr)
		if err != nil {
			in.Close()
			return err
		}
		r.in, r.out = in, out
		return nil
	})
	if err != nil {
		return nil, err
	}
	_ = r.in.SetReadBuffer(8 << 20)
	_ = r.out.SetWriteBuffer(8 << 20)
	r.wg.Add(1)
	go r.loop()
	return r, nil
}

func (r *relay) send(b []byte) {
	if r.pcap != nil {
		writePcapRecord(r.pcap, b)
	}
	if _, err := r.out.Write(b); err == nil {
		r.mu.Lock()
		r.sent++
		r.mu.Unlock()
	}
}

func (r *relay) loop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	var held []byte
	for {
		wait := 200 * time.Millisecond
		if held != nil {
			wait = 20 * time.Millisecond
		}
		_ = r.in.SetReadDeadline(time.Now().Add(wait))
		n, err := r.in.Read(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if held != nil { // nothing came to swap with: let it go
					r.send(held)
					held = nil
				}
				continue
			}
			if held != nil {
				r.send(held)
			}
			return // closed
		}
		pkt := append([]byte(nil), buf[:n]...)
		x := r.rng.Float64()
		r.mu.Lock()
		r.received++
		r.mu.Unlock()
		switch {
		case x < r.DropRate:
			r.mu.Lock()
			r.dropped++
			r.mu.Unlock()
		case x < r.DropRate+r.DupRate:
			r.mu.Lock()
			r.duplicated++
			r.mu.Unlock()
			r.send(pkt)
			r.send(pkt)
		case x < r.DropRate+r.DupRate+r.ReorderRate && held == nil:
			r.mu.Lock()
			r.reordered++
			r.mu.Unlock()
			held = pkt
			continue
		default:
			r.send(pkt)
		}
		if held != nil {
			r.send(held)
			held = nil
		}
	}
}

// Stop closes the listening socket (after forwarding what is queued and
// any held datagram) and returns the counts.
func (r *relay) Stop() relayStats {
	if r.in != nil {
		// Give queued datagrams a moment, then close.
		time.Sleep(100 * time.Millisecond)
		_ = r.in.Close()
		r.wg.Wait()
		_ = r.out.Close()
		r.in = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return relayStats{r.received, r.sent, r.dropped, r.duplicated, r.reordered}
}

// writePcapHeader starts a pcap file (Ethernet link type) for the
// relay's output, so that what the sniffer was sent can be replayed and
// inspected with tshark after a failure.
func writePcapHeader(w io.Writer) {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 65535)
	binary.LittleEndian.PutUint32(h[20:], 1)
	w.Write(h[:])
}

// writePcapRecord writes one VXLAN datagram wrapped in made-up outer
// Ethernet, IPv4 (198.18.2.1 -> 198.18.2.2) and UDP (-> 4789) headers.
func writePcapRecord(w io.Writer, payload []byte) {
	const hdr = 14 + 20 + 8
	frame := make([]byte, hdr+len(payload))
	copy(frame[0:6], []byte{0x02, 0, 0, 0, 0, 2})
	copy(frame[6:12], []byte{0x02, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ip := frame[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	ip[8] = 64
	ip[9] = 17
	copy(ip[12:16], []byte{198, 18, 2, 1})
	copy(ip[16:20], []byte{198, 18, 2, 2})
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	udp := frame[34:42]
	binary.BigEndian.PutUint16(udp[0:], 49152)
	binary.BigEndian.PutUint16(udp[2:], 4789)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	copy(frame[hdr:], payload)

	now := time.Now()
	var rec [16]byte
	binary.LittleEndian.PutUint32(rec[0:], uint32(now.Unix()))
	binary.LittleEndian.PutUint32(rec[4:], uint32(now.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(rec[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(rec[12:], uint32(len(frame)))
	w.Write(rec[:])
	w.Write(frame)
}
