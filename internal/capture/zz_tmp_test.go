package capture

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func TestTmpPcapngMixedLinkTypes(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.NgWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 65535})
	if err != nil {
		t.Fatal(err)
	}
	eth := frame(t, "GET / HTTP/1.1\r\n\r\n", 0, false)
	raw := eth[14:]
	now := time.Unix(1700000000, 0)
	for i := 0; i < 3; i++ {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: now, CaptureLength: len(eth), Length: len(eth), InterfaceIndex: 0}, eth); err != nil {
			t.Fatal(err)
		}
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: now, CaptureLength: len(raw), Length: len(raw), InterfaceIndex: id}, raw); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	var c collect
	var st Stats
	if err := Replay(context.Background(), &buf, &c, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("6 frames written (3 Ethernet, 3 raw IP): datagrams counted %d, segments delivered %d", st.Datagrams.Load(), c.count())
	var total uint64
	st.Each(func(n string, v uint64) { t.Logf("%s=%d", n, v); total += v })
}
