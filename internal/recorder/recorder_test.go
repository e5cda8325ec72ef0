package recorder

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
)

type published struct {
	keys, values []string
	refuse       bool
}

func (p *published) Publish(key, value []byte, _ time.Time) bool {
	if p.refuse {
		return false
	}
	p.keys = append(p.keys, string(key))
	p.values = append(p.values, string(value))
	return true
}

func (p *published) record(t *testing.T, i int) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal([]byte(p.values[i]), &m); err != nil {
		t.Fatalf("record %d: %v", i, err)
	}
	return m
}

var (
	a  = netip.MustParseAddrPort("198.18.1.1:40000")
	b  = netip.MustParseAddrPort("198.18.1.2:80")
	t0 = time.Unix(1795884184, 5e8)
)

func newRecorder(t *testing.T, cfg Config) (*Recorder, *published, *Stats) {
	t.Helper()
	if cfg.Source == "" {
		cfg.Source = record.SourceMirroring
	}
	cfg.HTTP.EmitPending = true
	pub := &published{}
	stats := &Stats{}
	r, err := New(cfg, pub, stats, &http1.Stats{})
	if err != nil {
		t.Fatal(err)
	}
	return r, pub, stats
}

func TestExchangeBecomesRecord(t *testing.T) {
	r, pub, stats := newRecorder(t, Config{AccountID: "42", Redact: []string{"authorization"}})
	h := r.NewHandler(flow.ConnID{VNI: 9, A: a, B: b})
	h.Data(0, []byte("POST /v1/x?y=1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer s3cret\r\nContent-Length: 2\r\n\r\nhi"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyo!"), t0.Add(time.Millisecond))
	h.Close(t0.Add(time.Second))
	if len(pub.values) != 1 {
		t.Fatalf("%d records, want 1", len(pub.values))
	}
	m := pub.record(t, 0)
	for k, v := range map[string]string{
		"method": "POST", "path": "/v1/x?y=1", "requestPayload": "hi", "responsePayload": "yo!",
		"ip": "198.18.1.1", "destIp": "198.18.1.2", "time": "1795884184", "statusCode": "200",
		"akto_account_id": "42", "akto_vxlan_id": "9", "is_pending": "false", "source": "MIRRORING",
	} {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if strings.Contains(m["requestHeaders"], "s3cret") {
		t.Error("Authorization not redacted")
	}
	if pub.keys[0] != "9/198.18.1.1:40000>198.18.1.2:80" {
		t.Errorf("key %q", pub.keys[0])
	}
	if stats.Records.Load() != 1 {
		t.Errorf("Records %d", stats.Records.Load())
	}
}

// The first packet seen may come from the server (the request was sent
// before the sniffer started): ip must still be the client.
func TestClientIsTheRequestSide(t *testing.T) {
	r, pub, _ := newRecorder(t, Config{})
	h := r.NewHandler(flow.ConnID{A: b, B: a}) // A is the server
	h.Data(1, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Data(0, []byte("HTTP/1.1 204 No Content\r\n\r\n"), t0)
	h.Close(t0)
	if len(pub.values) != 1 {
		t.Fatalf("%d records", len(pub.values))
	}
	if m := pub.record(t, 0); m["ip"] != "198.18.1.1" || m["destIp"] != "198.18.1.2" {
		t.Errorf("ip %s destIp %s", m["ip"], m["destIp"])
	}
}

func TestPendingAndRefused(t *testing.T) {
	r, pub, stats := newRecorder(t, Config{})
	h := r.NewHandler(flow.ConnID{A: a, B: b})
	h.Data(0, []byte("GET /lonely HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Close(t0)
	if len(pub.values) != 1 || pub.record(t, 0)["is_pending"] != "true" || stats.Pending.Load() != 1 {
		t.Fatalf("pending record not published: %v", pub.values)
	}
	pub.refuse = true
	h = r.NewHandler(flow.ConnID{A: a, B: b})
	h.Data(0, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), t0)
	h.Close(t0)
	if stats.Refused.Load() != 1 || stats.Records.Load() != 1 {
		t.Errorf("refused %d records %d", stats.Refused.Load(), stats.Records.Load())
	}
}

func TestRecordsCutToTheBrokerLimit(t *testing.T) {
	r, pub, stats := newRecorder(t, Config{MaxRecordBytes: 8192})
	h := r.NewHandler(flow.ConnID{A: a, B: b})
	body := strings.Repeat("z", 20000)
	h.Data(0, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n"+body), t0)
	h.Close(t0)
	if len(pub.values) != 1 || len(pub.values[0]) > 8192 || stats.Cut.Load() != 1 {
		t.Fatalf("records %d, size %d, cut %d", len(pub.values), len(pub.values[0]), stats.Cut.Load())
	}
	// Headers alone beyond the limit: dropped and counted, not published.
	h = r.NewHandler(flow.ConnID{A: a, B: b})
	h.Data(0, []byte("GET / HTTP/1.1\r\nX-Big: "+strings.Repeat("h", 9000)+"\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), t0)
	h.Close(t0)
	if len(pub.values) != 1 || stats.TooLarge.Load() != 1 {
		t.Errorf("records %d, too large %d", len(pub.values), stats.TooLarge.Load())
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []Config{
		{Source: "LIVE"},
		{Source: record.SourcePcap, MaxRecordBytes: 100},
		{Source: record.SourcePcap, Redact: []string{" "}},
	} {
		if _, err := New(cfg, &published{}, &Stats{}, &http1.Stats{}); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

type observed []Observation

func (o *observed) Observe(ob Observation) { *o = append(*o, ob) }

// The Observer sees each published record once, with its VNI, host,
// request line, status and encoded size; refused records are not observed.
func TestObserver(t *testing.T) {
	var obs observed
	r, pub, _ := newRecorder(t, Config{Observer: &obs})
	h := r.NewHandler(flow.ConnID{VNI: 4242, A: a, B: b})
	h.Data(0, []byte("GET /users/7?x=1 HTTP/1.1\r\nhost:  api.example.com \r\n\r\nPOST /u HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"), t0.Add(time.Millisecond))
	h.Close(t0.Add(time.Minute))
	pub.refuse = true
	h = r.NewHandler(flow.ConnID{VNI: 4242, A: a, B: b})
	h.Data(0, []byte("GET /refused HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Close(t0)
	want := []Observation{
		{VNI: 4242, Host: "api.example.com", Server: b, Method: "GET", Target: "/users/7?x=1", Status: 404, Bytes: len(pub.values[0]), Time: t0},
		{VNI: 4242, Server: b, Method: "POST", Target: "/u", Pending: true, Bytes: len(pub.values[1]), Time: t0},
	}
	if len(obs) != len(want) {
		t.Fatalf("observed %+v", obs)
	}
	for i := range want {
		if obs[i] != want[i] {
			t.Errorf("observation %d: %+v, want %+v", i, obs[i], want[i])
		}
	}
}
