package recorder

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/http1"
	"github.com/apitap/apitap/internal/record"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "/any/thing.json", true},
		{"/health", "/health", true},
		{"/health", "/healthz", false},
		{"/api/*", "/api/users/1", true},
		{"/api/*", "/api", false},
		{"/api*", "/api", true},
		{"*.example.com", "shop.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "a.b.example.com", true},
		{"/v*/users/*/orders", "/v2/users/42/orders", true},
		{"/v*/users/*/orders", "/v2/users/42/orders/1", false},
		{"a*b*c", "aXXbYYbZZc", true},
		{"a*b*c", "aXXbYY", false},
		{"**", "x", true},
		{"Shop.Example.com", "shop.example.com", false}, // Glob is exact; hosts fold (below)
	} {
		if got := Glob(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}

func TestPathAndHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b?c=1":                 "/a/b",
		"/a#frag":                  "/a",
		"/":                        "/",
		"http://h:8080/x/y?z":      "/x/y",
		"http://h":                 "/",
		"/redirect?to=http://evil": "/redirect",
		"*":                        "*",
	} {
		if got := PathOf(in); got != want {
			t.Errorf("PathOf(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"shop.example.com":      "shop.example.com",
		"shop.example.com:8080": "shop.example.com",
		"[2001:db8::1]:443":     "2001:db8::1",
		"[2001:db8::1]":         "2001:db8::1",
		"10.0.0.1:80":           "10.0.0.1",
	} {
		if got := HostOf(in); got != want {
			t.Errorf("HostOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestAndStatusRules(t *testing.T) {
	for name, tc := range map[string]struct {
		v                    Volume
		method, host, target string
		status               int
		want                 verdict
	}{
		"no rules":              {Volume{}, "GET", "h", "/x", 500, keep},
		"method admitted":       {Volume{Methods: []string{"GET", "POST"}}, "post", "h", "/", 200, keep},
		"method not admitted":   {Volume{Methods: []string{"GET"}}, "DELETE", "h", "/", 200, dropMethod},
		"host included":         {Volume{IncludeHosts: []string{"*.example.com"}}, "GET", "Shop.Example.COM", "/", 200, keep},
		"host not included":     {Volume{IncludeHosts: []string{"*.example.com"}}, "GET", "example.org", "/", 200, dropHost},
		"host excluded":         {Volume{ExcludeHosts: []string{"internal.*"}}, "GET", "internal.svc", "/", 200, dropHost},
		"exclude wins":          {Volume{IncludeHosts: []string{"*"}, ExcludeHosts: []string{"a"}}, "GET", "a", "/", 200, dropHost},
		"path included":         {Volume{IncludePaths: []string{"/api/*"}}, "GET", "h", "/api/v1?x=1", 200, keep},
		"path not included":     {Volume{IncludePaths: []string{"/api/*"}}, "GET", "h", "/static/a.js", 200, dropPath},
		"path excluded":         {Volume{ExcludePaths: []string{"/health*"}}, "GET", "h", "/healthz", 200, dropPath},
		"path case matters":     {Volume{ExcludePaths: []string{"/Health"}}, "GET", "h", "/health", 200, keep},
		"status class":          {Volume{ExcludeStatus: []string{"4xx", "5XX"}}, "GET", "h", "/", 404, dropStatus},
		"status class passes":   {Volume{ExcludeStatus: []string{"4xx"}}, "GET", "h", "/", 302, keep},
		"status code":           {Volume{ExcludeStatus: []string{"404"}}, "GET", "h", "/", 404, dropStatus},
		"status code other":     {Volume{ExcludeStatus: []string{"404"}}, "GET", "h", "/", 403, keep},
		"method before path":    {Volume{Methods: []string{"GET"}, ExcludePaths: []string{"*"}}, "PUT", "h", "/", 200, dropMethod},
		"request before status": {Volume{ExcludePaths: []string{"/x"}, ExcludeStatus: []string{"2xx"}}, "GET", "h", "/x", 200, dropPath},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.v.Validate(); err != nil {
				t.Fatal(err)
			}
			r := newRules(tc.v)
			got := r.request(tc.method, tc.host, tc.target)
			if got == keep {
				got = r.status(tc.status)
			}
			if got != tc.want {
				t.Errorf("verdict %d, want %d", got, tc.want)
			}
		})
	}
}

func TestDropBody(t *testing.T) {
	r := newRules(Volume{DropBodyTypes: DefaultDropBodyTypes})
	for ct, want := range map[string]bool{
		"image/png":                       true,
		"Image/PNG; charset=binary":       true,
		"application/octet-stream":        true,
		"font/woff2":                      true,
		"application/json":                false,
		"text/html; charset=utf-8":        false,
		"":                                false,
		"application/octet-stream-ish":    false,
		"video/mp4":                       true,
		"application/vnd.api+json; v=1.0": false,
	} {
		if _, got := r.dropBody(ct); got != want {
			t.Errorf("dropBody(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestVolumeValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		v    Volume
		want string
	}{
		"sample below 0": {Volume{SampleOut: -0.1}, "sampled-out share"},
		"sample above 1": {Volume{SampleOut: 1.5}, "sampled-out share"},
		"status text":    {Volume{ExcludeStatus: []string{"bad"}}, `status "bad"`},
		"status 600":     {Volume{ExcludeStatus: []string{"600"}}, `status "600"`},
		"status 6xx":     {Volume{ExcludeStatus: []string{"6xx"}}, `status "6xx"`},
		"empty host":     {Volume{IncludeHosts: []string{""}}, "include hosts"},
		"space in path":  {Volume{ExcludePaths: []string{"/a b"}}, "exclude paths"},
		"negative rate":  {Volume{VNIRateLimit: -1}, "rate limit"},
		"huge burst":     {Volume{VNIRateBurst: 1e7}, "rate burst"},
	} {
		err := tc.v.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
	ok := Volume{SampleOut: 0.5, ExcludeStatus: []string{"4xx", "503"}, DropBodyTypes: DefaultDropBodyTypes, VNIRateLimit: 10}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

func conn(i int) flow.ConnID {
	return flow.ConnID{
		VNI: uint32(i % 7),
		A:   netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), uint16(30000+i)),
		B:   netip.MustParseAddrPort("10.1.0.1:443"),
	}
}

func TestSamplingIsDeterministicAndSymmetric(t *testing.T) {
	const n = 20000
	for _, rate := range []float64{0, 0.1, 0.5, 0.9, 1} {
		s := newSampler(1 - rate)
		kept := 0
		for i := 0; i < n; i++ {
			id := conn(i)
			rev := flow.ConnID{VNI: id.VNI, A: id.B, B: id.A}
			k := s.keep(id)
			if k != s.keep(id) || k != s.keep(rev) {
				t.Fatalf("rate %v: %v decided differently by direction or call", rate, id)
			}
			if ConnHash(id) != ConnHash(rev) {
				t.Fatalf("ConnHash not symmetric for %v", id)
			}
			if k {
				kept++
			}
		}
		got := float64(kept) / n
		if got < rate-0.02 || got > rate+0.02 {
			t.Errorf("rate %v kept %.3f of connections", rate, got)
		}
	}
	// The VNI is part of the hash.
	id := conn(1)
	differ := 0
	for v := uint32(0); v < 64; v++ {
		id.VNI = v
		if ConnHash(id) != ConnHash(conn(1)) {
			differ++
		}
	}
	if differ < 60 {
		t.Errorf("VNI changes the hash in %d of 64 cases", differ)
	}
}

func TestRateLimiterFakeClock(t *testing.T) {
	clock := t0
	at := func(d time.Duration) time.Time { return clock.Add(d) }
	type step struct {
		vni  uint32
		at   time.Duration
		want bool
	}
	for name, tc := range map[string]struct {
		v     Volume
		steps []step
	}{
		"burst then refill": {Volume{VNIRateLimit: 2, VNIRateBurst: 2}, []step{
			{1, 0, true}, {1, 0, true}, {1, 0, false}, // burst of 2 spent
			{1, 250 * time.Millisecond, false}, // half a token
			{1, 500 * time.Millisecond, true},  // one token
			{1, 500 * time.Millisecond, false}, // spent
			{1, 10 * time.Second, true},        // capped at the burst
			{1, 10 * time.Second, true},        //
			{1, 10 * time.Second, false},       //
			{1, 9 * time.Second, false},        // time going back adds nothing
		}},
		"per VNI": {Volume{VNIRateLimit: 1}, []step{
			{1, 0, true}, {1, 0, false}, {2, 0, true}, {2, 0, false}, {1, time.Second, true},
		}},
		"default burst is the rate rounded up": {Volume{VNIRateLimit: 2.5}, []step{
			{1, 0, true}, {1, 0, true}, {1, 0, true}, {1, 0, false},
		}},
		"VNIs beyond MaxVNIs share a bucket": {Volume{VNIRateLimit: 1, MaxVNIs: 1}, []step{
			{1, 0, true}, {2, 0, true}, {3, 0, false}, {1, 0, false},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			l := newLimiter(tc.v)
			for i, s := range tc.steps {
				if got := l.allow(s.vni, at(s.at)); got != s.want {
					t.Errorf("step %d (vni %d at %v): %v, want %v", i, s.vni, s.at, got, s.want)
				}
			}
		})
	}
	if newLimiter(Volume{}) != nil {
		t.Error("a limiter without a rate")
	}
}

// The recorder applies the rules and counts each drop by reason.
func TestRecorderVolume(t *testing.T) {
	r, pub, stats := newRecorder(t, Config{Volume: Volume{
		ExcludePaths:  []string{"/health"},
		ExcludeStatus: []string{"5xx"},
		Methods:       []string{"GET", "POST"},
		DropBodyTypes: DefaultDropBodyTypes,
		VNIRateLimit:  1, VNIRateBurst: 2,
	}})
	h := r.NewHandler(flow.ConnID{VNI: 9, A: a, B: b})
	ex := func(req, resp string, ts time.Time) {
		h.Data(0, []byte(req), ts)
		h.Data(1, []byte(resp), ts)
	}
	ex("GET /health HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", t0)
	ex("DELETE /x HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", t0)
	ex("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", t0)
	ex("GET /logo HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 4\r\n\r\nPNG!", t0)
	ex("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", t0)
	ex("GET /b HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", t0) // over the burst
	ex("GET /c HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", t0.Add(time.Second))
	h.Close(t0.Add(2 * time.Second))

	if len(pub.values) != 3 {
		t.Fatalf("%d records, want 3 (/logo, /a, /c)", len(pub.values))
	}
	logo := pub.record(t, 0)
	if logo["path"] != "/logo" || logo["responsePayload"] != "" || !strings.Contains(logo["responseHeaders"], `"`+BodyOmittedHeader+`":"image/png"`) {
		t.Errorf("image record: %v", logo)
	}
	if m := pub.record(t, 1); m["responsePayload"] != "ok" || strings.Contains(m["responseHeaders"], BodyOmittedHeader) {
		t.Errorf("json record: %v", m)
	}
	got := map[string]uint64{}
	stats.Each(func(name string, v uint64) { got[name] = v })
	want := map[string]uint64{"records": 3, "records_filtered_path": 1, "records_filtered_method": 1,
		"records_filtered_status": 1, "records_rate_limited": 1, "bodies_omitted": 1, "conns_sampled_out": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
	var limited []string
	r.EachRateLimited(func(vni uint32, other bool, n uint64) { limited = append(limited, fmt.Sprint(vni, other, n)) })
	if strings.Join(limited, ";") != "9 false 1" {
		t.Errorf("rate limited per VNI: %q", limited)
	}
}

// A connection sampled out is not parsed: its handler skips from the start.
func TestSampledOutConnection(t *testing.T) {
	r, pub, stats := newRecorder(t, Config{Volume: Volume{SampleOut: 1}})
	h := r.NewHandler(flow.ConnID{VNI: 9, A: a, B: b})
	if !h.Skipping() {
		t.Error("a sampled-out handler does not skip")
	}
	h.Data(0, []byte("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Close(t0)
	if len(pub.values) != 0 || stats.SampledOut.Load() != 1 {
		t.Errorf("%d records, %d sampled out", len(pub.values), stats.SampledOut.Load())
	}
}

// The rules act on the heads, before the bodies: a body left out is not
// kept or decoded (no body budget taken, no decoding error for a body that
// is no gzip at all), and the exchanges after it pair as they should.
func TestRulesActBeforeBodies(t *testing.T) {
	budget := http1.NewBudget(1 << 20)
	httpStats := &http1.Stats{}
	pub := &published{}
	stats := &Stats{}
	cfg := Config{Source: record.SourceMirroring, Volume: Volume{ExcludePaths: []string{"/upload"}, DropBodyTypes: DefaultDropBodyTypes}}
	cfg.HTTP = http1.Config{EmitPending: true, Decompress: true, Budget: budget}
	r, err := New(cfg, pub, stats, httpStats)
	if err != nil {
		t.Fatal(err)
	}
	h := r.NewHandler(flow.ConnID{VNI: 9, A: a, B: b})
	big := strings.Repeat("x", 200<<10)
	h.Data(0, []byte("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: "+fmt.Sprint(len(big))+"\r\n\r\n"), t0)
	h.Data(0, []byte(big[:100<<10]), t0)
	if used := budget.Used(); used != 0 {
		t.Errorf("an excluded request's body took %d bytes of the body budget", used)
	}
	h.Data(0, []byte(big[100<<10:]), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"), t0)
	h.Data(0, []byte("GET /pic HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nPNG!"), t0)
	h.Data(0, []byte("GET /next HTTP/1.1\r\nHost: h\r\n\r\n"), t0)
	h.Data(1, []byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"), t0)
	h.Close(t0)
	if n := httpStats.DecodeErrors.Load(); n != 0 {
		t.Errorf("decode errors = %d: a body left out was decoded", n)
	}
	if len(pub.values) != 2 {
		t.Fatalf("%d records, want 2 (/pic, /next)", len(pub.values))
	}
	if m := pub.record(t, 0); m["path"] != "/pic" || m["responsePayload"] != "" || !strings.Contains(m["responseHeaders"], BodyOmittedHeader) {
		t.Errorf("image record: %v", m)
	}
	if m := pub.record(t, 1); m["path"] != "/next" || m["responsePayload"] != "next" {
		t.Errorf("record after the filtered ones: %v", m)
	}
	if n := stats.FilteredPath.Load(); n != 1 {
		t.Errorf("records_filtered_path = %d, want 1", n)
	}
}
