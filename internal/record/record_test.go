package record

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func sample() Record {
	return Record{
		Method: "POST",
		Path:   "/v1/users/7?full=1",
		Proto:  "HTTP/1.1",
		RequestHeaders: []Header{
			{"Host", "api.example"}, {"Authorization", "Bearer x"}, {"Accept", "a/b"}, {"accept", "c/d"},
		},
		ResponseHeaders: []Header{{"Content-Type", "application/json"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}},
		RequestPayload:  []byte(`{"name":"ann"}`),
		ResponsePayload: []byte("line1\nline2\t\"q\" \\ \x01 é \u2028"),
		ClientIP:        netip.MustParseAddr("198.18.1.1"),
		ServerIP:        netip.MustParseAddr("2001:2::2"),
		Time:            1700000000,
		StatusCode:      201,
		Status:          "201 Created",
		VNI:             4242,
		Source:          SourceMirroring,
	}
}

func decodeFlat(t *testing.T, b []byte) map[string]string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("record is not a flat JSON object of strings: %v\n%s", err, b)
	}
	return m
}

func TestEncodeContract(t *testing.T) {
	r := sample()
	out, cut := Encode(nil, &r, &Options{Redact: []string{"authorization"}})
	if cut {
		t.Fatal("cut without a limit")
	}
	m := decodeFlat(t, out)
	want := map[string]string{
		"method": "POST", "path": "/v1/users/7?full=1", "type": "HTTP/1.1",
		"requestPayload": `{"name":"ann"}`, "responsePayload": "line1\nline2\t\"q\" \\ \x01 é \u2028",
		"ip": "198.18.1.1", "destIp": "2001:2::2", "time": "1700000000", "statusCode": "201",
		"status": "201 Created", "akto_account_id": "1000000", "akto_vxlan_id": "4242",
		"is_pending": "false", "source": "MIRRORING",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if len(m) != len(want)+2 {
		t.Errorf("record has %d fields, want %d: %v", len(m), len(want)+2, m)
	}
	var reqH, respH map[string]string
	if err := json.Unmarshal([]byte(m["requestHeaders"]), &reqH); err != nil {
		t.Fatalf("requestHeaders is not a serialized object: %v", err)
	}
	if err := json.Unmarshal([]byte(m["responseHeaders"]), &respH); err != nil {
		t.Fatalf("responseHeaders is not a serialized object: %v", err)
	}
	if reqH["Authorization"] != Mask {
		t.Errorf("Authorization not redacted: %q", reqH["Authorization"])
	}
	if reqH["Accept"] != "a/b, c/d" || len(reqH) != 3 {
		t.Errorf("repeated headers not joined under the first spelling: %v", reqH)
	}
	if respH["Set-Cookie"] != "a=1, b=2" {
		t.Errorf("Set-Cookie = %q", respH["Set-Cookie"])
	}
	// Akto's JavaScript-free consumer is not the only reader: keep the
	// line separator escaped.
	if bytes.Contains(out, []byte("\u2028")) {
		t.Error("U+2028 left unescaped")
	}
}

// TestEncodeRepeatedHeaders: repeated fields are joined in the order sent,
// with "; " for Cookie (how Akto splits cookies) and ", " for the rest, even
// when the name's spelling varies.
func TestEncodeRepeatedHeaders(t *testing.T) {
	tests := []struct {
		name string
		hs   []Header
		key  string
		want string
	}{
		{"cookie", []Header{{"Cookie", "a=1"}, {"Cookie", "b=2; c=3"}}, "Cookie", "a=1; b=2; c=3"},
		{"cookie spelled differently", []Header{{"cookie", "a=1"}, {"COOKIE", "b=2"}}, "cookie", "a=1; b=2"},
		{"single cookie kept as sent", []Header{{"Cookie", "a=1, b=2"}}, "Cookie", "a=1, b=2"},
		{"set-cookie is a list", []Header{{"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}, "Set-Cookie", "a=1, b=2"},
		{"cookie2 is not cookie", []Header{{"Cookie2", "a"}, {"Cookie2", "b"}}, "Cookie2", "a, b"},
		{"other list", []Header{{"Accept", "a/b"}, {"Accept", "c/d"}}, "Accept", "a/b, c/d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample()
			r.RequestHeaders = tt.hs
			out, _ := Encode(nil, &r, nil)
			var h map[string]string
			if err := json.Unmarshal([]byte(decodeFlat(t, out)["requestHeaders"]), &h); err != nil {
				t.Fatal(err)
			}
			if h[tt.key] != tt.want || len(h) != 1 {
				t.Errorf("headers = %v, want %s: %q", h, tt.key, tt.want)
			}
		})
	}
}

func TestEncodePendingAndDefaults(t *testing.T) {
	r := Record{Method: "GET", Path: "/", Proto: "HTTP/1.0", Pending: true, Source: SourcePcap}
	m := decodeFlat(t, mustEncode(t, &r, nil))
	if m["is_pending"] != "true" || m["statusCode"] != "0" || m["status"] != "" {
		t.Errorf("pending record: %v", m)
	}
	if m["responseHeaders"] != "{}" || m["ip"] != "" || m["akto_vxlan_id"] != "0" || m["akto_account_id"] != DefaultAccountID {
		t.Errorf("defaults: %v", m)
	}
}

func mustEncode(t *testing.T, r *Record, o *Options) []byte {
	t.Helper()
	out, _ := Encode(nil, r, o)
	return out
}

func TestEncodeInvalidUTF8(t *testing.T) {
	r := sample()
	r.Path = "/a\xffb"
	r.RequestHeaders = []Header{{"X-Bin", "\xc3\x28"}}
	out := mustEncode(t, &r, nil)
	if !utf8.Valid(out) {
		t.Fatal("output is not valid UTF-8")
	}
	m := decodeFlat(t, out)
	if m["path"] != "/a\ufffdb" {
		t.Errorf("path = %q", m["path"])
	}
}

func TestEncodeCutsBodiesToFit(t *testing.T) {
	r := sample()
	r.RequestPayload = []byte(strings.Repeat("q", 5000))
	r.ResponsePayload = []byte(strings.Repeat("é\"", 5000)) // escaping makes it grow
	for _, max := range []int{20000, 9000, 3000, 900} {
		out, cut := Encode([]byte("prefix"), &r, &Options{MaxBytes: max})
		body := out[len("prefix"):]
		if !cut {
			t.Errorf("max %d: not cut", max)
		}
		if len(body) > max {
			t.Errorf("max %d: record is %d bytes", max, len(body))
		}
		m := decodeFlat(t, body)
		if len(m["requestPayload"]) < 5000 && m["responsePayload"] != "" {
			t.Errorf("max %d: request body cut before the response body was empty", max)
		}
		if !utf8.ValidString(m["responsePayload"]) {
			t.Errorf("max %d: cut inside a UTF-8 sequence", max)
		}
	}
	// A record that fits is untouched.
	out, cut := Encode(nil, &r, &Options{MaxBytes: 1 << 20})
	if cut || !bytes.Contains(out, r.RequestPayload) {
		t.Error("a record within the limit was cut")
	}
}

func TestAppendKey(t *testing.T) {
	c := netip.MustParseAddrPort("198.18.1.1:50000")
	s := netip.MustParseAddrPort("[2001:2::2]:80")
	if got := string(AppendKey(nil, 7, c, s)); got != "7/198.18.1.1:50000>[2001:2::2]:80" {
		t.Errorf("key = %q", got)
	}
}

func BenchmarkEncode(b *testing.B) {
	r := sample()
	r.ResponsePayload = bytes.Repeat([]byte(`{"id":1,"name":"a user","tags":["x","y"]},`), 30)
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		out, _ := Encode(buf[:0], &r, nil)
		b.SetBytes(int64(len(out)))
	}
}

// BenchmarkEscape measures body escaping on three kinds of text: JSON (a
// quote every few bytes), plain ASCII and non-ASCII UTF-8.
func BenchmarkEscape(b *testing.B) {
	inputs := []struct {
		name string
		in   []byte
	}{
		{"json", bytes.Repeat([]byte(`{"id":1,"name":"a user","tags":["x","y"]},`), 30)},
		{"ascii", bytes.Repeat([]byte(`Lorem ipsum dolor sit amet, consectetur adipiscing elit. `), 30)},
		{"utf8", bytes.Repeat([]byte(`Grüße aus Köln, 東京 and ✓ `), 30)},
	}
	for _, tc := range inputs {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]byte, 0, 8192)
			b.SetBytes(int64(len(tc.in)))
			b.ReportAllocs()
			for b.Loop() {
				buf = appendEscaped(buf[:0], tc.in)
			}
		})
	}
}

// FuzzEncode checks the encoder against encoding/json as an independent
// reader: whatever the bytes, the record is a flat object of strings, each
// payload decodes to its text (invalid UTF-8 as U+FFFD), and each header
// map decodes, from its string, to the values joined.
func FuzzEncode(f *testing.F) {
	f.Add("X-A", "v\"1\\\n\x01", "x-a", "é\u2028\xff", []byte("body \"q\" \xc3"), []byte{0x7f, '\t', '<'})
	f.Add("Cookie", "a=1", "cookie", "b=2", []byte(`{"id":1}`), []byte("plain ascii text longer than eight bytes"))
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, reqBody, respBody []byte) {
		r := Record{
			Method: "GET", Path: "/", Proto: "HTTP/1.1",
			RequestHeaders:  []Header{{n1, v1}, {n2, v2}},
			ResponseHeaders: []Header{{n2, v2}},
			RequestPayload:  reqBody, ResponsePayload: respBody, Source: SourcePcap,
		}
		if !strings.EqualFold(n1, n2) && fffd(n1) == fffd(n2) {
			return // two names that read the same once made valid: JSON keeps one
		}
		out, _ := Encode(nil, &r, nil)
		var m map[string]string
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("not a flat JSON object of strings: %v\n%s", err, out)
		}
		if got := m["requestPayload"]; !validSame(got, string(reqBody)) {
			t.Errorf("requestPayload = %q from %q", got, reqBody)
		}
		if got := m["responsePayload"]; !validSame(got, string(respBody)) {
			t.Errorf("responsePayload = %q from %q", got, respBody)
		}
		var hs map[string]string
		if err := json.Unmarshal([]byte(m["requestHeaders"]), &hs); err != nil {
			t.Fatalf("requestHeaders is no JSON object: %v\n%s", err, m["requestHeaders"])
		}
		want := map[string]string{n1: v1}
		if strings.EqualFold(n1, n2) {
			want[n1] = v1 + joinSep(n1) + v2
		} else {
			want[n2] = v2
		}
		if len(hs) != len(fixKeys(want)) {
			t.Fatalf("requestHeaders = %q, want %q", hs, want)
		}
		for k, v := range fixKeys(want) {
			if !validSame(hs[k], v) {
				t.Errorf("requestHeaders[%q] = %q, want %q", k, hs[k], v)
			}
		}
	})
}

// validSame reports whether got is want with each invalid UTF-8 byte
// replaced by U+FFFD, as the encoder promises.
func validSame(got, want string) bool { return got == fffd(want) }

// fffd replaces each invalid UTF-8 byte of s by U+FFFD.
func fffd(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r) // RuneError for an invalid byte: U+FFFD
		i += size
	}
	return b.String()
}

// fixKeys makes the names of a header map what decoding the encoder's
// output gives for them.
func fixKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[fffd(k)] = v
	}
	return out
}
