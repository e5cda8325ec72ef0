package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/apitap/apitap/internal/decode"
)

// readBufSize is larger than any UDP datagram, so a datagram is never cut
// by our buffer (NLB-mirrored packets carry up to 8500 bytes after the
// VXLAN header; jumbo frames up to 9001).
const readBufSize = 65536

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
	Logger        *slog.Logger
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
	buf := make([]byte, readBufSize)
	var p decode.Packet
	pending := false
	lastFlush := time.Now()
	for ctx.Err() == nil {
		if pending {
			_ = uc.SetReadDeadline(lastFlush.Add(l.cfg.FlushInterval))
		} else {
			_ = uc.SetReadDeadline(time.Now().Add(time.Second))
		}
		n, err := uc.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if pending {
					sink.Flush()
					pending = false
					lastFlush = now
				}
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				break
			}
			l.stats.ReadErrors.Add(1)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			time.Sleep(10 * time.Millisecond) // do not spin on a broken socket
			continue
		}
		l.stats.Datagrams.Add(1)
		l.stats.Bytes.Add(uint64(n))
		if n == len(buf) {
			l.stats.Oversized.Add(1)
		}
		reason := decode.VXLAN(buf[:n], &p)
		l.stats.Decoded[reason].Add(1)
		if reason == decode.OK {
			sink.Add(&p, now)
			pending = true
		}
		if pending && now.Sub(lastFlush) >= l.cfg.FlushInterval {
			sink.Flush()
			pending = false
			lastFlush = now
		}
	}
	sink.Flush()
}

// Close closes the sockets.
func (l *Listener) Close() error {
	var errs []error
	for _, uc := range l.conns {
		errs = append(errs, uc.Close())
	}
	return errors.Join(errs...)
}
