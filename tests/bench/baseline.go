package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/apitap/apitap/tests/testkit"
)

// The baseline is the pipeline as commonly written: gopacket.NewPacket per
// frame, a map of connections whose directions append payloads in sequence
// order (out-of-order segments wait in a map; a hole that never fills ends
// the stream), net/http's ReadRequest/ReadResponse over bufio readers once
// the connection closes, and encoding/json for the record.

type bKey struct {
	vni  uint32
	a, b string // "ip:port", a < b
}

type bStream struct {
	started bool
	next    uint32
	buf     []byte
	ooo     map[uint32][]byte
}

type bConn struct {
	dirs      [2]bStream // 0: a→b, 1: b→a
	clientDir int        // -1 until a SYN says
	fins      int
	vni       uint32
	ips       [2]string
}

func runBaseline(path string, v *verifier) (verdict, error) {
	f, err := os.Open(path)
	if err != nil {
		return verdict{}, err
	}
	defer f.Close()
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return verdict{}, err
	}
	conns := map[bKey]*bConn{}
	for {
		frame, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return verdict{}, err
		}
		pkt := gopacket.NewPacket(frame, layers.LinkTypeEthernet, gopacket.Default)
		vx, _ := pkt.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if vx == nil || tcp == nil {
			continue
		}
		var ip *layers.IPv4
		for _, l := range pkt.Layers() {
			if l4, ok := l.(*layers.IPv4); ok {
				ip = l4 // the last one is the inner header
			}
		}
		src := net.JoinHostPort(ip.SrcIP.String(), strconv.Itoa(int(tcp.SrcPort)))
		dst := net.JoinHostPort(ip.DstIP.String(), strconv.Itoa(int(tcp.DstPort)))
		k, dir := bKey{vni: vx.VNI, a: src, b: dst}, 0
		if dst < src {
			k.a, k.b, dir = dst, src, 1
		}
		c := conns[k]
		if c == nil {
			c = &bConn{clientDir: -1, vni: vx.VNI}
			c.ips[dir], c.ips[1-dir] = ip.SrcIP.String(), ip.DstIP.String()
			conns[k] = c
		}
		s := &c.dirs[dir]
		if tcp.SYN {
			s.started, s.next = true, tcp.Seq+1
			if !tcp.ACK {
				c.clientDir = dir
			}
		}
		if p := tcp.Payload; len(p) > 0 {
			if !s.started {
				s.started, s.next = true, tcp.Seq
			}
			switch d := int32(tcp.Seq - s.next); {
			case d == 0:
				s.buf = append(s.buf, p...)
				s.next += uint32(len(p))
				for {
					more, ok := s.ooo[s.next]
					if !ok {
						break
					}
					delete(s.ooo, s.next)
					s.buf = append(s.buf, more...)
					s.next += uint32(len(more))
				}
			case d > 0:
				if s.ooo == nil {
					s.ooo = map[uint32][]byte{}
				}
				s.ooo[tcp.Seq] = append([]byte(nil), p...)
			}
		}
		if tcp.FIN {
			c.fins++
			if c.fins == 2 {
				c.finish(v)
				delete(conns, k)
			}
		}
	}
	for _, c := range conns {
		c.finish(v)
	}
	return v.verdict(), nil
}

// finish parses both directions and records every exchange.
func (c *bConn) finish(v *verifier) {
	cd := c.clientDir
	if cd < 0 {
		cd = 0
	}
	cr := bufio.NewReader(bytes.NewReader(c.dirs[cd].buf))
	sr := bufio.NewReader(bytes.NewReader(c.dirs[1-cd].buf))
	for {
		req, err := http.ReadRequest(cr)
		if err != nil {
			return
		}
		reqBody, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		rec := testkit.Record{
			Method: req.Method, Path: req.RequestURI, Type: req.Proto,
			RequestHeaders: headersJSON(req.Header, req.Host), RequestPayload: string(reqBody),
			IP: c.ips[cd], DestIP: c.ips[1-cd], Time: "0", StatusCode: "0",
			AccountID: "1000000", VxlanID: strconv.FormatUint(uint64(c.vni), 10), IsPending: "true", Source: "PCAP",
			ResponseHeaders: "{}",
		}
		resp, err := http.ReadResponse(sr, req)
		if err == nil {
			var body io.Reader = resp.Body
			if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
				if zr, zerr := gzip.NewReader(resp.Body); zerr == nil {
					body = zr
				}
			}
			respBody, rerr := io.ReadAll(body)
			if rerr == nil {
				rec.ResponseHeaders = headersJSON(resp.Header, "")
				rec.ResponsePayload = string(respBody)
				rec.StatusCode = strconv.Itoa(resp.StatusCode)
				rec.Status = resp.Status
				rec.IsPending = "false"
			}
		}
		out, err := json.Marshal(&rec)
		if err != nil {
			return
		}
		v.check(out)
	}
}

func headersJSON(h http.Header, host string) string {
	m := make(map[string]string, len(h)+1)
	for k, vs := range h {
		m[k] = strings.Join(vs, ", ")
	}
	if host != "" {
		m["Host"] = host
	}
	b, _ := json.Marshal(m)
	return string(b)
}
