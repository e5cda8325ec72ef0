package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// scenario describes one generated capture.
type scenario struct {
	Name      string
	Conns     int     // concurrent keep-alive connections
	Exchanges int     // exchanges per connection
	Gzip      bool    // 64 KiB gzip-encoded JSON responses
	Mix       bool    // pipelining, chunked bodies, POST bodies
	Loss      float64 // fraction of data segments dropped
}

var scenarios = []scenario{
	{Name: "small", Conns: 1000, Exchanges: 60},
	{Name: "gzip", Conns: 100, Exchanges: 30, Gzip: true},
	{Name: "mix", Conns: 1000, Exchanges: 80, Mix: true, Loss: 0.01},
}

// manifest is written beside each capture: what the benchmark expects.
type manifest struct {
	Exchanges int `json:"exchanges"` // request/response pairs sent
	Packets   int `json:"packets"`   // frames written
	Dropped   int `json:"dropped"`   // data segments left out (loss)
}

const mss = 1448

// gen writes every scenario's capture and manifest into dir, plus a
// .gitignore so that nothing generated is committed.
func gen(dir string, scs []scenario) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, ".gitignore"), []byte("*\n"), 0o644); err != nil {
		return err
	}
	for _, sc := range scs {
		start := time.Now()
		m, err := genOne(dir, sc)
		if err != nil {
			return fmt.Errorf("generating %s: %w", sc.Name, err)
		}
		fmt.Printf("bench-data: %-5s %7d packets %6d exchanges %4d dropped (%s)\n", sc.Name, m.Packets, m.Exchanges, m.Dropped, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// tcpConn is one generated connection: addresses and the next sequence
// number of each side.
type tcpConn struct {
	vni                uint32
	client, server     [4]byte
	cport, sport       uint16
	cseq, sseq         uint32
	pendingIDs         []int
	clientMAC, srvrMAC [6]byte
}

type writer struct {
	w       *pcapgo.Writer
	ts      time.Time
	rng     *rand.Rand
	loss    float64
	buf     []byte
	packets int
	dropped int
}

func genOne(dir string, sc scenario) (manifest, error) {
	f, err := os.Create(filepath.Join(dir, sc.Name+".pcap"))
	if err != nil {
		return manifest{}, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	pw := pcapgo.NewWriter(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return manifest{}, err
	}
	w := &writer{w: pw, ts: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		rng: rand.New(rand.NewPCG(1, uint64(len(sc.Name)))), loss: sc.Loss}

	conns := make([]*tcpConn, sc.Conns)
	for i := range conns {
		c := &tcpConn{
			vni:    uint32(100 + i%4),
			client: [4]byte{10, 1, byte(i >> 8), byte(i)},
			server: [4]byte{10, 2, 0, byte(1 + i%8)},
			cport:  uint16(20000 + i),
			sport:  8080,
			cseq:   uint32(1000 + i*7919),
			sseq:   uint32(5000000 + i*104729),
		}
		c.clientMAC = [6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}
		c.srvrMAC = [6]byte{2, 0, 0, 1, 0, byte(1 + i%8)}
		conns[i] = c
		w.segment(c, true, flagSYN, nil)
		c.cseq++
		w.segment(c, false, flagSYN|flagACK, nil)
		c.sseq++
		w.segment(c, true, flagACK, nil)
	}

	var gzBodies [][]byte
	if sc.Gzip {
		for v := range 8 {
			gzBodies = append(gzBodies, gzipBody(v))
		}
	}
	id := 0
	for round := 0; round < sc.Exchanges; {
		depth := 1
		if sc.Mix {
			depth = 1 + round%4 // pipelining depth 1-4
		}
		depth = min(depth, sc.Exchanges-round)
		for ci, c := range conns {
			// Client: depth requests back to back, in one write.
			var reqs []byte
			for k := range depth {
				id++
				c.pendingIDs = append(c.pendingIDs, id)
				reqs = appendRequest(reqs, id, sc.Mix && (id+k)%3 == 0)
			}
			w.send(c, true, reqs)
			// Server: one response per request, in order.
			var resps []byte
			for _, rid := range c.pendingIDs {
				switch {
				case sc.Gzip:
					resps = appendGzipResponse(resps, rid, gzBodies[rid%len(gzBodies)])
				case sc.Mix && (rid+ci)%2 == 0:
					resps = appendChunkedResponse(resps, rid)
				default:
					resps = appendResponse(resps, rid)
				}
			}
			c.pendingIDs = c.pendingIDs[:0]
			w.send(c, false, resps)
		}
		round += depth
	}
	for _, c := range conns {
		w.segment(c, true, flagFIN|flagACK, nil)
		c.cseq++
		w.segment(c, false, flagFIN|flagACK, nil)
		c.sseq++
		w.segment(c, true, flagACK, nil)
	}
	if err := bw.Flush(); err != nil {
		return manifest{}, err
	}
	m := manifest{Exchanges: id, Packets: w.packets, Dropped: w.dropped}
	b, _ := json.Marshal(m)
	return m, os.WriteFile(filepath.Join(dir, sc.Name+".json"), b, 0o644)
}

// send writes data from one side in MSS-sized segments; the other side
// acknowledges every second segment and the last one.
func (w *writer) send(c *tcpConn, fromClient bool, data []byte) {
	n := 0
	for len(data) > 0 {
		seg := data[:min(mss, len(data))]
		data = data[len(seg):]
		w.segment(c, fromClient, flagACK|flagPSH, seg)
		if fromClient {
			c.cseq += uint32(len(seg))
		} else {
			c.sseq += uint32(len(seg))
		}
		n++
		if n%2 == 0 || len(data) == 0 {
			w.segment(c, !fromClient, flagACK, nil)
		}
	}
}

const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagPSH = 0x08
	flagACK = 0x10
)

// segment writes one frame as a sniffer host receives it: outer
// Ethernet/IPv4/UDP 4789/VXLAN around the inner Ethernet/IPv4/TCP.
func (w *writer) segment(c *tcpConn, fromClient bool, flags byte, payload []byte) {
	w.ts = w.ts.Add(5 * time.Microsecond)
	if len(payload) > 0 && w.loss > 0 && w.rng.Float64() < w.loss {
		w.dropped++
		return
	}
	src, dst := c.client, c.server
	sport, dport := c.cport, c.sport
	seq, ack := c.cseq, c.sseq
	smac, dmac := c.clientMAC, c.srvrMAC
	if !fromClient {
		src, dst = dst, src
		sport, dport = dport, sport
		seq, ack = ack, seq
		smac, dmac = dmac, smac
	}
	if flags&flagACK == 0 {
		ack = 0
	}
	innerLen := 14 + 20 + 20 + len(payload)
	b := w.buf[:0]
	// Outer Ethernet: mirror target ENI.
	b = append(b, 0x02, 0xaa, 0, 0, 0, 1, 0x02, 0xbb, 0, 0, 0, 1, 0x08, 0x00)
	b = appendIPv4(b, [4]byte{172, 31, 0, 10}, [4]byte{172, 31, 0, 20}, 17, 20+8+8+innerLen)
	b = binary.BigEndian.AppendUint16(b, 40000+uint16(c.cport%1000))
	b = binary.BigEndian.AppendUint16(b, 4789)
	b = binary.BigEndian.AppendUint16(b, uint16(8+8+innerLen))
	b = append(b, 0, 0)
	// VXLAN: I flag, VNI.
	b = append(b, 0x08, 0, 0, 0, byte(c.vni>>16), byte(c.vni>>8), byte(c.vni), 0)
	// Inner Ethernet/IPv4/TCP.
	b = append(b, dmac[:]...)
	b = append(b, smac[:]...)
	b = append(b, 0x08, 0x00)
	b = appendIPv4(b, src, dst, 6, 20+20+len(payload))
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	b = append(b, 5<<4, flags, 0xff, 0xff, 0, 0, 0, 0) // window, checksum 0 (offloaded), urgent
	b = append(b, payload...)
	w.buf = b
	w.packets++
	ci := gopacket.CaptureInfo{Timestamp: w.ts, CaptureLength: len(b), Length: len(b)}
	if err := w.w.WritePacket(ci, b); err != nil {
		panic(err)
	}
}

func appendIPv4(b []byte, src, dst [4]byte, proto byte, total int) []byte {
	start := len(b)
	b = append(b, 0x45, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 0, 0x40, 0, 64, proto, 0, 0)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	var sum uint32
	for i := start; i < start+20; i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[start+10:], ^uint16(sum))
	return b
}

// appendRequest appends a small JSON API request whose id is in the query
// and in X-Req-Id; with post, a small JSON body.
func appendRequest(b []byte, id int, post bool) []byte {
	ids := strconv.Itoa(id)
	method := "GET"
	if post {
		method = "POST"
	}
	b = append(b, method+" /api/v1/items/"+strconv.Itoa(id%50)+"?id="+ids+"&view=full HTTP/1.1\r\n"+
		"Host: api.example.internal\r\nUser-Agent: bench/1.0\r\nAccept: application/json\r\n"+
		"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.bench\r\nX-Req-Id: "+ids+"\r\n"...)
	if post {
		body := `{"id":` + ids + `,"name":"item ` + ids + `","tags":["a","b"],"qty":3}`
		b = append(b, "Content-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body...)
		return b
	}
	return append(b, "\r\n"...)
}

// jsonBody is a ~1 KB JSON document naming id.
func jsonBody(id int) []byte {
	ids := strconv.Itoa(id)
	b := []byte(`{"id":` + ids + `,"name":"item ` + ids + `","owner":{"id":42,"email":"owner@example.com"},"items":[`)
	for i := range 16 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"sku":"SKU-`+strconv.Itoa(id*13+i)+`","price":`+strconv.Itoa(100+i)+`.99,"stock":`+strconv.Itoa(i*7)+`,"label":"widget"}`...)
	}
	return append(b, `]}`...)
}

func responseHead(b []byte, id int) []byte {
	return append(b, "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nServer: bench\r\n"+
		"Content-Type: application/json\r\nCache-Control: no-store\r\nX-Echo-Id: "+strconv.Itoa(id)+"\r\n"...)
}

func appendResponse(b []byte, id int) []byte {
	body := jsonBody(id)
	b = responseHead(b, id)
	b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"...)
	return append(b, body...)
}

func appendChunkedResponse(b []byte, id int) []byte {
	body := jsonBody(id)
	b = responseHead(b, id)
	b = append(b, "Transfer-Encoding: chunked\r\n\r\n"...)
	for len(body) > 0 {
		n := min(300, len(body))
		b = append(b, strconv.FormatInt(int64(n), 16)+"\r\n"...)
		b = append(b, body[:n]...)
		b = append(b, "\r\n"...)
		body = body[n:]
	}
	return append(b, "0\r\n\r\n"...)
}

func appendGzipResponse(b []byte, id int, gz []byte) []byte {
	b = responseHead(b, id)
	b = append(b, "Content-Encoding: gzip\r\nContent-Length: "+strconv.Itoa(len(gz))+"\r\n\r\n"...)
	return append(b, gz...)
}

// gzipBody is a JSON document of random tokens (about as compressible as
// API data full of ids) whose gzip encoding is at least 64 KiB.
func gzipBody(variant int) []byte {
	rng := rand.New(rand.NewPCG(uint64(variant), 7))
	var doc bytes.Buffer
	doc.WriteString(`{"rows":[`)
	for i := 0; ; i++ {
		if i > 0 {
			doc.WriteByte(',')
		}
		var tok [24]byte
		for j := range tok {
			tok[j] = byte(rng.Uint32())
		}
		fmt.Fprintf(&doc, `{"n":%d,"token":"%s","status":"active"}`, i, base64.StdEncoding.EncodeToString(tok[:]))
		if i%64 == 63 {
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			zw.Write(doc.Bytes())
			zw.Write([]byte(`]}`))
			zw.Close()
			if out.Len() >= 64<<10 {
				return out.Bytes()
			}
		}
	}
}
