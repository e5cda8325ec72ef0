package apiinventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	t0     = time.Date(2026, 11, 28, 16, 51, 0, 0, time.UTC)
	server = netip.MustParseAddrPort("198.18.1.2:8080")
)

func newInventory(t testing.TB, max int) *Inventory {
	t.Helper()
	inv, err := New(Config{MaxEndpoints: max})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestInventory(t *testing.T) {
	inv := newInventory(t, 0)
	for _, o := range []Observation{
		{VNI: 9, Host: "API.example.com", Method: "GET", Target: "/users/7?x=1", Status: 200, Time: t0.Add(2 * time.Second)},
		{VNI: 9, Host: "api.example.com", Method: "GET", Target: "/users/8", Status: 404, Time: t0},
		{VNI: 9, Host: "api.example.com", Method: "GET", Target: "/users/9", Status: 0, Time: t0.Add(time.Second)},
		{VNI: 9, Host: "api.example.com", Method: "POST", Target: "/users", Status: 201, Time: t0},
		{VNI: 9, Server: server, Method: "GET", Target: "/", Status: 999, Time: t0},
		{VNI: 3, Host: "b", Method: "DELETE", Target: "http://b/x/5f2b8c1e", Status: 503, Time: t0},
		{VNI: 3, Host: "b", Method: "OPTIONS", Target: "*", Status: 101},
		{VNI: 3, Host: "a", Method: "GET", Target: "/", Status: 302, Time: t0},
	} {
		inv.Add(o)
	}
	s := inv.Snapshot()
	var got []string
	for _, e := range s.Endpoints {
		var st []string
		for _, c := range classNames {
			if n := e.Status[c]; n > 0 {
				st = append(st, fmt.Sprintf("%s=%d", c, n))
			}
		}
		got = append(got, fmt.Sprintf("%d %s %s %s n=%d %s %s..%s", e.VNI, e.Host, e.Method, e.Path, e.Count,
			strings.Join(st, ","), e.FirstSeen.Format("15:04:05"), e.LastSeen.Format("15:04:05")))
	}
	want := []string{
		"3 a GET / n=1 3xx=1 16:51:00..16:51:00",
		"3 b DELETE /x/{id} n=1 5xx=1 16:51:00..16:51:00",
		"3 b OPTIONS /* n=1 1xx=1 00:00:00..00:00:00",
		"9 198.18.1.2:8080 GET / n=1 other=1 16:51:00..16:51:00",
		"9 api.example.com GET /users/{id} n=3 2xx=1,4xx=1,none=1 16:51:00..16:51:02",
		"9 api.example.com POST /users n=1 2xx=1 16:51:00..16:51:00",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("snapshot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s.Dropped != 0 || s.MaxEndpoints != DefaultMaxEndpoints {
		t.Errorf("dropped %d, max %d", s.Dropped, s.MaxEndpoints)
	}
	if st := inv.Stats(); st.Endpoints != 6 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}

	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Endpoints) != 6 {
		t.Fatalf("JSON does not read back: %v\n%s", err, buf.String())
	}
	for _, key := range []string{`{"max_endpoints":10000,"dropped":0,"endpoints":[`, "\n  {\"vni\":3,", `"path":"/users/{id}"`, `"status":{"2xx":1,"4xx":1,"none":1}`, `"first_seen":"2026-11-28T16:51:00Z"`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("JSON lacks %s:\n%s", key, buf.String())
		}
	}
}

// TestLimits: hosts and methods are cut, whatever arrives.
func TestLimits(t *testing.T) {
	inv := newInventory(t, 0)
	inv.Add(Observation{Host: strings.Repeat("h", 10000), Method: strings.Repeat("M", 100), Target: "/" + strings.Repeat("p", 10000)})
	inv.Add(Observation{Host: "x\x00\n\xff", Method: "G\x00T", Target: "/"})
	s := inv.Snapshot()
	if len(s.Endpoints) != 2 {
		t.Fatalf("%d endpoints", len(s.Endpoints))
	}
	e := s.Endpoints[0]
	if len(e.Host) != MaxHostBytes || len(e.Method) != MaxMethodBytes || len(e.Path) != MaxTemplateBytes {
		t.Errorf("lengths host %d method %d path %d", len(e.Host), len(e.Method), len(e.Path))
	}
	if e := s.Endpoints[1]; e.Host != "x%00%0A%FF" || e.Method != "G%00T" {
		t.Errorf("escaping: host %q method %q", e.Host, e.Method)
	}
}

// TestIDsCollapse: 10,000 distinct ids in each of two routes make two
// endpoints, not 20,000.
func TestIDsCollapse(t *testing.T) {
	inv := newInventory(t, 100)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10_000 {
		inv.Add(Observation{VNI: 1, Host: "api", Method: "GET", Target: fmt.Sprintf("/users/%d/orders/%x", rng.Uint64(), rng.Uint64()|1<<60), Status: 200})
		u := fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rng.Uint32(), i&0xffff, rng.Uint32()&0xffff, rng.Uint32()&0xffff, rng.Uint64()&0xffffffffffff)
		inv.Add(Observation{VNI: 1, Host: "api", Method: "PUT", Target: "/carts/" + u + "?v=" + fmt.Sprint(i), Status: 204})
	}
	s := inv.Snapshot()
	if len(s.Endpoints) != 2 || s.Dropped != 0 {
		t.Fatalf("%d endpoints, %d dropped: %+v", len(s.Endpoints), s.Dropped, s.Endpoints)
	}
	if e := s.Endpoints[0]; e.Path != "/users/{id}/orders/{id}" || e.Count != 10_000 {
		t.Errorf("%+v", e)
	}
	if e := s.Endpoints[1]; e.Path != "/carts/{id}" || e.Status["2xx"] != 10_000 {
		t.Errorf("%+v", e)
	}
}

// TestBoundedByCap: random segments that are not ids make new endpoints;
// the inventory keeps MaxEndpoints of them, counts the rest as dropped,
// and keeps counting the endpoints it has.
func TestBoundedByCap(t *testing.T) {
	const max, n = 1000, 20_000
	inv := newInventory(t, max)
	rng := rand.New(rand.NewPCG(3, 4))
	word := func() string {
		b := make([]byte, 6+rng.IntN(10))
		for i := range b {
			b[i] = 'g' + byte(rng.IntN(20)) // never hex, never digits
		}
		return string(b)
	}
	for range n {
		inv.Add(Observation{VNI: uint32(rng.IntN(4)), Host: "api", Method: "GET", Target: "/" + word() + "/" + word(), Status: 200})
	}
	s := inv.Snapshot()
	if len(s.Endpoints) != max || s.Dropped != n-max {
		t.Errorf("%d endpoints, %d dropped; want %d, %d", len(s.Endpoints), s.Dropped, max, n-max)
	}
	kept := s.Endpoints[0]
	inv.Add(Observation{VNI: kept.VNI, Host: kept.Host, Method: kept.Method, Target: kept.Path, Status: 500})
	s = inv.Snapshot()
	if s.Endpoints[0].Status["5xx"] != 1 || s.Dropped != n-max {
		t.Errorf("a kept endpoint stopped counting at the cap: %+v, dropped %d", s.Endpoints[0], s.Dropped)
	}
}

// TestConcurrent: workers adding at once lose no count and never go over
// the cap.
func TestConcurrent(t *testing.T) {
	const workers, per, max = 8, 5000, 50
	inv := newInventory(t, max)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				inv.Add(Observation{VNI: uint32(i % 3), Host: "h", Method: "GET", Target: fmt.Sprintf("/r%c/%d", 'g'+byte(i%40), w), Status: 200, Time: t0})
			}
		})
	}
	var snaps sync.WaitGroup
	snaps.Go(func() {
		for range 20 {
			if s := inv.Snapshot(); len(s.Endpoints) > max {
				t.Errorf("%d endpoints over the cap", len(s.Endpoints))
			}
		}
	})
	wg.Wait()
	snaps.Wait()
	s := inv.Snapshot()
	var total uint64
	for _, e := range s.Endpoints {
		total += e.Count
	}
	if len(s.Endpoints) != max || total+s.Dropped != workers*per {
		t.Errorf("%d endpoints, %d counted + %d dropped, want %d", len(s.Endpoints), total, s.Dropped, workers*per)
	}
}

func TestAddAllocatesOnlyForNewEndpoints(t *testing.T) {
	inv := newInventory(t, 0)
	o := Observation{VNI: 4242, Host: "api.example.com", Method: "GET", Target: "/v1/users/123e4567-e89b-12d3-a456-426614174000/orders?x=1", Status: 200, Time: t0}
	noHost := Observation{VNI: 4242, Server: server, Method: "POST", Target: "/v1/users", Status: 201, Time: t0}
	inv.Add(o)
	inv.Add(noHost)
	if n := testing.AllocsPerRun(1000, func() { inv.Add(o); inv.Add(noHost) }); n != 0 {
		t.Errorf("Add of a known endpoint allocates %.1f times", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	inv := newInventory(b, 0)
	targets := []string{"/v1/users/42?expand=1", "/v1/orders/507f1f77bcf86cd799439011/items", "/health", "/v1/carts/123e4567-e89b-12d3-a456-426614174000"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			inv.Add(Observation{VNI: uint32(i % 4), Host: "api.example.com", Method: "GET", Target: targets[i%len(targets)], Status: 200, Time: t0})
			i++
		}
	})
}
