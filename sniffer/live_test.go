package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/apitap/apitap/internal/embedded"
)

// vxlanConversation builds the mirrored datagrams of one HTTP exchange on
// one TCP connection: what a mirror target receives, VXLAN header first.
func vxlanConversation(t *testing.T, vni uint32, clientPort uint16, path, body string) [][]byte {
	t.Helper()
	client, server := net.IPv4(198, 18, 1, 1).To4(), net.IPv4(198, 18, 1, 2).To4()
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: api\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	resp := fmt.Sprintf("HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s", len(body)+5, "echo:"+body)
	var out [][]byte
	seg := func(fromClient bool, seq, ack uint32, syn, fin bool, payload string) {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: client, DstIP: server}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(clientPort), DstPort: 80, Seq: seq, Ack: ack, SYN: syn, FIN: fin, ACK: !syn || !fromClient, Window: 65535}
		if !fromClient {
			ip.SrcIP, ip.DstIP = server, client
			tcp.SrcPort, tcp.DstPort = 80, layers.TCPPort(clientPort)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
			t.Fatal(err)
		}
		hdr := []byte{0x08, 0, 0, 0, byte(vni >> 16), byte(vni >> 8), byte(vni), 0}
		out = append(out, append(hdr, buf.Bytes()...))
	}
	const c0, s0 = 1000, 5000
	seg(true, c0, 0, true, false, "")
	seg(false, s0, c0+1, true, false, "")
	// The request in two segments, the response in one.
	seg(true, c0+1, s0+1, false, false, req[:10])
	seg(true, c0+11, s0+1, false, false, req[10:])
	seg(false, s0+1, c0+1+uint32(len(req)), false, false, resp)
	seg(true, c0+1+uint32(len(req)), s0+1+uint32(len(resp)), false, true, "")
	seg(false, s0+1+uint32(len(resp)), c0+2+uint32(len(req)), false, true, "")
	return out
}

type liveRun struct {
	udp, admin net.Addr
	done       chan error
	cancel     context.CancelFunc
}

func startLive(t *testing.T, args ...string) *liveRun {
	t.Helper()
	base := []string{"-listen", "127.0.0.1:0", "-admin-addr", "127.0.0.1:0", "-health-addr", "127.0.0.1:0", "-shutdown-timeout", "3s"}
	o, err := parseFlags(append(base, args...), env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := newSniffer(ctx, o, log, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	r := &liveRun{done: make(chan error, 1), cancel: cancel}
	startedCh := make(chan struct{})
	s.started = func(udp, admin net.Addr) { r.udp, r.admin = udp, admin; close(startedCh) }
	go func() { r.done <- s.run(ctx) }()
	select {
	case <-startedCh:
	case err := <-r.done:
		t.Fatalf("sniffer ended before listening: %v\n%s", err, logs.String())
	case <-time.After(10 * time.Second):
		t.Fatal("sniffer did not start")
	}
	t.Cleanup(cancel)
	return r
}

func (r *liveRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("sniffer stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sniffer did not stop within its shutdown deadline")
	}
}

func (r *liveRun) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.admin.String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func send(t *testing.T, to net.Addr, datagrams [][]byte) {
	t.Helper()
	c, err := net.Dial("udp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range datagrams {
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLiveToKafka sends mirrored datagrams to the live listener and reads
// the records back from a broker: the whole data path, minus the kernel's
// VXLAN (see tests/e2e for that).
func TestLiveToKafka(t *testing.T) {
	broker, err := embedded.Start("", "akto.api.logs", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	r := startLive(t, "-kafka", broker.Addr())
	if code, body := r.get(t, "/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	const n = 20
	for i := 0; i < n; i++ {
		send(t, r.udp, vxlanConversation(t, 77, uint16(40000+i), fmt.Sprintf("/items/%d", i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	// Wait for the records to reach the broker while the sniffer runs.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, metrics := r.get(t, "/metrics")
		if strings.Contains(metrics, fmt.Sprintf("apitap_sniffer_kafka_delivered_total %d", n)) {
			if !strings.Contains(metrics, `apitap_sniffer_decode_total{reason="ok"}`) {
				t.Error("/metrics lacks decode outcomes")
			}
			// Every delivered record had a capture time: one observation
			// each, in a histogram with a 50 ms bucket (the live benchmark
			// reads p99 from it).
			for _, l := range []string{
				fmt.Sprintf("apitap_sniffer_kafka_delivery_latency_seconds_count %d", n),
				fmt.Sprintf(`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="+Inf"} %d`, n),
				`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="0.05"} `,
				`apitap_sniffer_kafka_delivery_latency_seconds_bucket{le="10"} `,
				`apitap_sniffer_kafka_delivery_latency_seconds_sum `,
			} {
				if !strings.Contains(metrics, l) {
					t.Errorf("/metrics lacks %s:\n%s", l, grep(metrics, "latency"))
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not delivered; metrics:\n%s", grep(metrics, "apitap_sniffer_"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := r.get(t, "/readyz"); code != 200 {
		t.Errorf("/readyz with a healthy broker: %d %s", code, body)
	}
	r.stop(t)
	msgs, err := embedded.ReadAll(context.Background(), broker.Addr(), "akto.api.logs")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("%d records in Kafka, want %d", len(msgs), n)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		var rec map[string]string
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			t.Fatalf("record is not flat JSON of strings: %v", err)
		}
		i := strings.TrimPrefix(rec["path"], "/items/")
		if rec["requestPayload"] != `{"n":`+i+`}` || rec["responsePayload"] != `echo:{"n":`+i+`}` {
			t.Errorf("record for %s pairs the wrong bodies: %q / %q", rec["path"], rec["requestPayload"], rec["responsePayload"])
		}
		if rec["akto_vxlan_id"] != "77" || rec["source"] != "MIRRORING" || rec["ip"] != "198.18.1.1" || rec["destIp"] != "198.18.1.2" || rec["statusCode"] != "201" {
			t.Errorf("record fields: %v", rec)
		}
		if !strings.HasPrefix(string(m.Key), "77/198.18.1.1:") {
			t.Errorf("key %q does not name the connection", m.Key)
		}
		seen[rec["path"]] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct paths, want %d", len(seen), n)
	}
}

// TestLiveBrokerDown: with no broker the sniffer keeps running, says so on
// /readyz, counts what it drops, and still stops promptly and cleanly.
func TestLiveBrokerDown(t *testing.T) {
	r := startLive(t, "-kafka", "127.0.0.1:1", "-kafka-queue", "5")
	for i := 0; i < 20; i++ {
		send(t, r.udp, vxlanConversation(t, 1, uint16(41000+i), "/x", "y"))
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := r.get(t, "/readyz")
		_, metrics := r.get(t, "/metrics")
		if code == http.StatusServiceUnavailable && strings.Contains(body, "unreachable") &&
			!strings.Contains(metrics, "apitap_sniffer_kafka_dropped_queue_full_total 0") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz %d %q; metrics:\n%s", code, body, grep(metrics, "apitap_sniffer_kafka"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := r.get(t, "/healthz"); code != 200 {
		t.Error("/healthz must stay up while the broker is down")
	}
	start := time.Now()
	r.stop(t)
	if time.Since(start) > 6*time.Second {
		t.Errorf("stop took %v with a 3s shutdown deadline", time.Since(start))
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
