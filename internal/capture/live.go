package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/apitap/apitap/internal/decode"
)

// readBufSize is larger than any UDP datagram, so a datagram is never cut
// by our buffer (NLB-mirrored packets carry up to 8500 bytes after the
// VXLAN header; jumbo frames up to 9001).
const readBufSize = 65536

// DefaultReadBatch is the default LiveConfig.ReadBatch, chosen by
// measurement (README "Performance", live).
const DefaultReadBatch = 64

// MaxReadBatch bounds LiveConfig.ReadBatch: the kernel's UIO_MAXIOV.
const MaxReadBatch = 1024

// LiveConfig configures the UDP listeners. The zero value gives defaults.
type LiveConfig struct {
	// Addr is the UDP address to listen on. Default ":4789".
	Addr string
	// Sockets is the number of SO_REUSEPORT sockets, each with its reader
	// goroutine. Default 2.
	Sockets int
	// ReadBuffer is the SO_RCVBUF asked for each socket. Default 64 MiB.
	ReadBuffer int
	// FlushInterval bounds how long a packet waits in a partial batch.
	// Default 5ms.
	FlushInterval time.Duration
	// ReadBatch is the most datagrams one recvmmsg call returns. Each
	// socket holds ReadBatch 64 KiB buffers (only the bytes datagrams use
	// are touched). Default DefaultReadBatch.
	ReadBatch int
	Logger    *slog.Logger
}

func (c *LiveConfig) setDefaults() {
	if c.Addr == "" {
		c.Addr = ":4789"
	}
	if c.Sockets <= 0 {
		c.Sockets = 2
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 64 << 20
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 5 * time.Millisecond
	}
	if c.ReadBatch <= 0 {
		c.ReadBatch = DefaultReadBatch
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports settings that cannot work.
func (c *LiveConfig) Validate() error {
	if c.Addr != "" {
		if _, err := net.ResolveUDPAddr("udp", c.Addr); err != nil {
			return fmt.Errorf("capture: listen address %q: %w", c.Addr, err)
		}
	}
	if c.Sockets < 0 || c.Sockets > 256 {
		return fmt.Errorf("capture: sockets %d out of range 1-256", c.Sockets)
	}
	if c.ReadBatch < 0 || c.ReadBatch > MaxReadBatch {
		return fmt.Errorf("capture: read batch %d out of range 1-%d", c.ReadBatch, MaxReadBatch)
	}
	if c.ReadBuffer < 0 {
		return fmt.Errorf("capture: negative read buffer %d", c.ReadBuffer)
	}
	return nil
}

// Listener receives mirrored VXLAN datagrams on several sockets.
type Listener struct {
	cfg   LiveConfig
	conns []*net.UDPConn
	stats *Stats
}

// Listen opens the sockets. The caller runs Serve and then Close.
func Listen(cfg LiveConfig, stats *Stats) (*Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	l := &Listener{cfg: cfg, stats: stats}
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	addr := cfg.Addr
	for i := 0; i < cfg.Sockets; i++ {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listening on udp %s: %w", cfg.Addr, err)
		}
		uc := pc.(*net.UDPConn)
		l.conns = append(l.conns, uc)
		if i == 0 {
			// With port 0 the kernel picked one: the other sockets share it.
			addr = uc.LocalAddr().String()
		}
		if i == 0 {
			l.setReadBuffer(uc, true)
		} else {
			l.setReadBuffer(uc, false)
		}
	}
	return l, nil
}

// setReadBuffer asks for a large receive buffer. As root SO_RCVBUFFORCE
// passes the sysctl cap; otherwise the kernel silently caps the size at
// net.core.rmem_max, which we report since it means drops under bursts.
func (l *Listener) setReadBuffer(uc *net.UDPConn, report bool) {
	want := l.cfg.ReadBuffer
	raw, err := uc.SyscallConn()
	if err != nil {
		return
	}
	var got int
	_ = raw.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
		got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	// Linux reports twice the size asked for (bookkeeping overhead).
	if report && got/2 < want {
		l.cfg.Logger.Warn("socket receive buffer capped by the kernel; raise it with sysctl -w net.core.rmem_max=N",
			"wanted_bytes", want, "got_bytes", got/2, "sysctl", "net.core.rmem_max")
	}
}

// Addr is the bound address of the first socket.
func (l *Listener) Addr() net.Addr { return l.conns[0].LocalAddr() }

// Serve reads until ctx is done or Close is called. newSink is called once
// per socket, since a Sink serves one goroutine.
func (l *Listener) Serve(ctx context.Context, newSink func() Sink) {
	var wg sync.WaitGroup
	for _, uc := range l.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.read(ctx, uc, newSink())
		}()
	}
	stop := context.AfterFunc(ctx, func() {
		for _, uc := range l.conns {
			_ = uc.SetReadDeadline(time.Unix(1, 0))
		}
	})
	wg.Wait()
	stop()
}

func (l *Listener) read(ctx context.Context, uc *net.UDPConn, sink Sink) {
	r, err := newReader(l, uc, sink)
	if err != nil {
		l.cfg.Logger.Error("cannot read the socket", "err", err)
		return
	}
	for ctx.Err() == nil {
		if !r.step() {
			break
		}
	}
	sink.Flush()
}

// reader receives datagrams on one socket in batches of up to
// LiveConfig.ReadBatch with recvmmsg: one system call and one deadline per
// batch instead of per datagram. Everything it needs is allocated once, so
// a datagram costs no allocation.
type reader struct {
	l    *Listener
	uc   *net.UDPConn
	raw  syscall.RawConn
	sink Sink
	// One readBufSize buffer per slot: a datagram is never cut by us
	// (MSG_TRUNC would say so).
	bufs [][]byte
	iovs []unix.Iovec
	hdrs []unix.Mmsghdr
	// recv is r.recvmmsg as a method value, made once: passing it to
	// RawConn.Read then does not allocate.
	recv  func(fd uintptr) bool
	n     int        // datagrams the last recvmmsg returned
	errno unix.Errno // its error, 0 if none
	p     decode.Packet
	// pending: packets were added since the last flush.
	pending   bool
	lastFlush time.Time
}

func newReader(l *Listener, uc *net.UDPConn, sink Sink) (*reader, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("capture: raw socket of %s: %w", uc.LocalAddr(), err)
	}
	n := l.cfg.ReadBatch
	r := &reader{l: l, uc: uc, raw: raw, sink: sink, lastFlush: time.Now(),
		bufs: make([][]byte, n), iovs: make([]unix.Iovec, n), hdrs: make([]unix.Mmsghdr, n)}
	for i := range n {
		r.bufs[i] = make([]byte, readBufSize)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(readBufSize)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
	}
	r.recv = r.recvmmsg
	return r, nil
}

// recvmmsg is called by RawConn.Read with the socket's descriptor; false
// means nothing was there and the runtime waits until the socket is
// readable or the deadline passes.
func (r *reader) recvmmsg(fd uintptr) bool {
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)), 0, 0, 0)
		switch e {
		case 0:
			r.n, r.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = 0, e
		return true
	}
}

// step reads one batch (or times out) and hands its packets to the sink,
// flushing it at least every FlushInterval while packets are pending. It
// reports false once the socket is closed.
func (r *reader) step() bool {
	if r.pending {
		_ = r.uc.SetReadDeadline(r.lastFlush.Add(r.l.cfg.FlushInterval))
	} else {
		_ = r.uc.SetReadDeadline(time.Now().Add(time.Second))
	}
	err := r.raw.Read(r.recv)
	now := time.Now()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if r.pending {
				r.sink.Flush()
				r.pending = false
				r.lastFlush = now
			}
			return true
		}
		if errors.Is(err, net.ErrClosed) {
			return false
		}
		r.l.stats.ReadErrors.Add(1)
		time.Sleep(10 * time.Millisecond) // do not spin on a broken socket
		return true
	}
	if r.errno != 0 {
		r.l.stats.ReadErrors.Add(1)
		time.Sleep(10 * time.Millisecond)
		return true
	}
	stats := r.l.stats
	for i := range r.n {
		h := &r.hdrs[i]
		n := int(h.Len)
		stats.Datagrams.Add(1)
		stats.Bytes.Add(uint64(n))
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			stats.Oversized.Add(1)
		}
		reason := decode.VXLAN(r.bufs[i][:n], &r.p)
		stats.Decoded[reason].Add(1)
		if reason == decode.OK {
			r.sink.Add(&r.p, now)
			r.pending = true
		}
	}
	if r.pending && now.Sub(r.lastFlush) >= r.l.cfg.FlushInterval {
		r.sink.Flush()
		r.pending = false
		r.lastFlush = now
	}
	return true
}

// Close closes the sockets.
func (l *Listener) Close() error {
	var errs []error
	for _, uc := range l.conns {
		errs = append(errs, uc.Close())
	}
	return errors.Join(errs...)
}
