package capture

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/apitap/apitap/internal/decode"
)

// pcapng files start with a section header block of this type.
var ngMagic = []byte{0x0a, 0x0d, 0x0d, 0x0a}

type frameReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ReplayFile reads a pcap or pcapng file as fast as it can and hands every
// TCP segment to sink, then flushes it. Frames may be outer
// Ethernet/IP/UDP 4789/VXLAN (a capture taken on a sniffer host) or plain
// frames (VNI 0). A truncated last record ends the replay without error, as
// when a capture was cut short; anything else unreadable is an error.
func ReplayFile(ctx context.Context, path string, sink Sink, stats *Stats) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening capture %s: %w", path, err)
	}
	defer f.Close()
	if err := Replay(ctx, f, sink, stats); err != nil {
		return fmt.Errorf("reading capture %s: %w", path, err)
	}
	return nil
}

// Replay is ReplayFile on an open stream. It stops early, without error,
// when ctx is done.
func Replay(ctx context.Context, r io.Reader, sink Sink, stats *Stats) error {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("reading file header: %w", err)
	}
	var fr frameReader
	var linkType func() int
	if bytes.Equal(magic, ngMagic) {
		// Interfaces of one pcapng file may have different link types;
		// without WantMixedLinkType gopacket drops the others' frames
		// without a word.
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{SkipUnknownVersion: true, WantMixedLinkType: true})
		if err != nil {
			return fmt.Errorf("not a readable pcapng file: %w", err)
		}
		fr = ng
		linkType = func() int { return int(ng.LinkType()) }
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("not a readable pcap file: %w", err)
		}
		fr = pr
		lt := int(pr.LinkType())
		linkType = func() int { return lt }
	}
	defer sink.Flush()
	var p decode.Packet
	for n := 0; ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return nil
		}
		data, ci, err := fr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
		stats.Datagrams.Add(1)
		stats.Bytes.Add(uint64(len(data)))
		lt := linkType()
		if len(ci.AncillaryData) > 0 {
			if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
				lt = int(l)
			}
		}
		reason := decode.Frame(lt, data, &p)
		// A frame cut by the snap length shows as Packet.Missing: the IP
		// header still announces the full length.
		stats.Decoded[reason].Add(1)
		if reason != decode.OK {
			continue
		}
		ts := ci.Timestamp
		if ts.IsZero() {
			ts = time.Unix(0, 0)
		}
		sink.Add(&p, ts)
	}
}
