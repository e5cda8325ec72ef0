package e2e

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"
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

	mu                                             sync.Mutex
	received, sent, dropped, duplicated, reordered int
}

// relayStats is what the relay did.
type relayStats struct {
	Received, Sent, Dropped, Duplicated, Reordered int
}

// startRelay opens the relay's sockets in namespace ns, listening on
// listen and sending to target, and starts forwarding.
func startRelay(ns, listen, target string, seed uint64, drop, dup, reorder float64) (*relay, error) {
	r := &relay{
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
	err = inNetns(ns, func() error {
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
