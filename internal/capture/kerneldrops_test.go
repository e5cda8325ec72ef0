package capture

import (
	"testing"
)

const procNetUDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 01C812C6:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41001 2 0000000000000000 1200
  100: 01C812C6:12B5 00000000:0000 07 00000000:0001F400 00:00000000 00000000     0        0 41002 2 0000000000000000 34
  200: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41003 2 0000000000000000 99
`

func TestParseUDPDrops(t *testing.T) {
	for _, tc := range []struct {
		text string
		port int
		want uint64
		bad  bool
	}{
		{text: procNetUDP, port: 4789, want: 1234},
		{text: procNetUDP, port: 53, want: 99},
		{text: procNetUDP, port: 9999, want: 0},
		{text: "garbage\n", port: 4789, bad: true},
		{text: procNetUDP + "  300: 0100007F:12B5 00000000:0000 07\n", port: 4789, bad: true},
		{text: procNetUDP + "  300: 0100007F:12B5 00000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 1 2 0 x\n", port: 4789, bad: true},
	} {
		got, err := ParseUDPDrops(tc.text, tc.port)
		if tc.bad {
			if err == nil {
				t.Errorf("port %d: %d accepted", tc.port, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("port %d: %d %v, want %d", tc.port, got, err, tc.want)
		}
	}
}

// The listener reads its own sockets' drops (zero on a fresh socket).
func TestListenerKernelDrops(t *testing.T) {
	l, err := Listen(LiveConfig{Addr: "127.0.0.1:0", Sockets: 2}, new(Stats))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, err := l.KernelDrops(); err != nil || n != 0 {
		t.Errorf("KernelDrops() = %d, %v; want 0", n, err)
	}
}
