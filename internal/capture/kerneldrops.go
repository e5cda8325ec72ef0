package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// ParseUDPDrops sums the drops column of /proc/net/udp or udp6 over the
// sockets bound to port: datagrams the kernel dropped because a socket's
// receive buffer was full (the readers fell behind for longer than the
// buffer lasts).
func ParseUDPDrops(text string, port int) (uint64, error) {
	var sum uint64
	lines := strings.Split(text, "\n")
	if !strings.Contains(lines[0], "local_address") {
		return 0, fmt.Errorf("/proc/net/udp: unexpected header %q", lines[0])
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/net/udp: short line %q", line)
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if !ok || err != nil {
			return 0, fmt.Errorf("/proc/net/udp: local address %q", f[1])
		}
		if int(p) != port {
			continue
		}
		d, err := strconv.ParseUint(f[len(f)-1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/net/udp: drops %q", f[len(f)-1])
		}
		sum += d
	}
	return sum, nil
}

// KernelDrops is the number of datagrams the kernel dropped on the
// listener's sockets (all sockets of this network namespace bound to its
// port, which are the listener's: it binds them with SO_REUSEPORT).
func (l *Listener) KernelDrops() (uint64, error) {
	port := l.Addr().(*net.UDPAddr).Port
	var sum uint64
	for _, path := range []string{"/proc/self/net/udp", "/proc/self/net/udp6"} {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return 0, fmt.Errorf("reading kernel drops: %w", err)
		}
		n, err := ParseUDPDrops(string(b), port)
		if err != nil {
			return 0, fmt.Errorf("reading kernel drops from %s: %w", path, err)
		}
		sum += n
	}
	return sum, nil
}
