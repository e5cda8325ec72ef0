package apiinventory

import (
	"strings"
	"testing"
)

func TestTemplate(t *testing.T) {
	long := "/" + strings.Repeat("abcdefghij/", 40)
	for _, tc := range []struct{ in, want string }{
		// Shapes of targets.
		{"", "/"},
		{"/", "/"},
		{"*", "/*"},
		{"?a=1", "/"},
		{"#frag", "/"},
		{"users", "/users"},
		{"/users", "/users"},
		{"/users/", "/users/"},
		{"//users//7", "//users//{id}"},
		{"/users?id=7&x=/8", "/users"},
		{"/users/7#top", "/users/{id}"},
		{"http://api.example.com", "/"},
		{"HTTPS://api.example.com:8443/v1/orders/991?x", "/v1/orders/{id}"},
		{"http://api.example.com?q=1", "/"},
		{"api.example.com:443", "/api.example.com:443"}, // CONNECT
		{"/http://x/1", "/http://x/{id}"},

		// Digits.
		{"/users/0", "/users/{id}"},
		{"/users/12345678901234567890123", "/users/{id}"},
		{"/users/-7", "/users/-7"},
		{"/users/7.json", "/users/7.json"},
		{"/v1/users", "/v1/users"},
		{"/api/2/items/3", "/api/{id}/items/{id}"},

		// UUIDs.
		{"/o/123e4567-e89b-12d3-a456-426614174000", "/o/{id}"},
		{"/o/123E4567-E89B-12D3-A456-426614174000/items", "/o/{id}/items"},
		{"/o/123e4567-e89b-12d3-a456-42661417400", "/o/123e4567-e89b-12d3-a456-42661417400"},   // one short
		{"/o/123e4567e89b-12d3-a456-4266141740000", "/o/123e4567e89b-12d3-a456-4266141740000"}, // dash misplaced
		{"/o/zzze4567-e89b-12d3-a456-426614174000", "/o/zzze4567-e89b-12d3-a456-426614174000"},

		// Hex ids: at least 8 hex digits with a decimal digit.
		{"/blob/5f2b8c1e", "/blob/{id}"},
		{"/blob/507f1f77bcf86cd799439011", "/blob/{id}"},
		{"/blob/DA39A3EE5E6B4B0D3255BFEF95601890AFD80709", "/blob/{id}"},
		{"/blob/5f2b8c1", "/blob/5f2b8c1"}, // 7 long
		{"/blob/deadbeef", "/blob/deadbeef"},
		{"/blob/facade", "/blob/facade"},
		{"/blob/feedface00", "/blob/{id}"},

		// Long tokens: 20+ letters and digits, 3+ digits.
		{"/k/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/k/{id}"},
		{"/k/aB3dE5fG7hI9jK1lM2nO", "/k/{id}"},
		{"/k/getCustomerAccountsV2", "/k/getCustomerAccountsV2"}, // one digit
		{"/k/api-v2-customer-accounts", "/k/api-v2-customer-accounts"},
		{"/k/aB3dE5fG7hI9jK1lM2n", "/k/aB3dE5fG7hI9jK1lM2n"}, // 19 long
		{"/k/aB3dE5fG7hI9jKlmno", "/k/aB3dE5fG7hI9jKlmno"},

		// Percent-encoding: judged as sent, kept as sent.
		{"/files/%31%32", "/files/%31%32"},
		{"/files/a%20b/9", "/files/a%20b/{id}"},
		{"/files/%2F7", "/files/%2F7"},

		// Bytes outside printable ASCII are escaped.
		{"/caf\xc3\xa9/1", "/caf%C3%A9/{id}"},
		{"/a b\t\x00\x7f", "/a%20b%09%00%7F"},

		// Braces: a template stays a template.
		{"/users/{id}", "/users/{id}"},
	} {
		if got := Template(tc.in); got != tc.want {
			t.Errorf("Template(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	// Long paths are cut to MaxTemplateBytes, ending in "...".
	got := Template(long)
	if len(got) != MaxTemplateBytes || !strings.HasSuffix(got, cutMark) || !strings.HasPrefix(long, got[:len(got)-len(cutMark)]) {
		t.Errorf("long path: %d bytes %q", len(got), got)
	}
	if got := Template("/" + strings.Repeat("\xff", 1000)); len(got) > MaxTemplateBytes || !strings.HasSuffix(got, cutMark) {
		t.Errorf("long escaped path: %d bytes %q", len(got), got)
	}
	if got := Template("/" + strings.Repeat("7/", 10000)); len(got) != MaxTemplateBytes || !strings.HasPrefix(got, "/{id}/{id}/") {
		t.Errorf("long id path: %d bytes %q", len(got), got)
	}
	exact := "/" + strings.Repeat("a", MaxTemplateBytes-1)
	if got := Template(exact); got != exact {
		t.Errorf("a path of exactly MaxTemplateBytes was changed to %q", got)
	}
}

func TestAppendTemplateDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, MaxTemplateBytes+8)
	target := "/v1/users/123e4567-e89b-12d3-a456-426614174000/orders/991?expand=items"
	if n := testing.AllocsPerRun(1000, func() { AppendTemplate(buf[:0], target) }); n != 0 {
		t.Errorf("AppendTemplate allocates %.1f times", n)
	}
}

// checkTemplate states what every template satisfies.
func checkTemplate(t *testing.T, in, got string) {
	t.Helper()
	if !strings.HasPrefix(got, "/") {
		t.Fatalf("Template(%q) = %q: no leading /", in, got)
	}
	if len(got) > MaxTemplateBytes {
		t.Fatalf("Template(%q) is %d bytes", in, len(got))
	}
	for i := 0; i < len(got); i++ {
		if got[i] <= ' ' || got[i] >= 0x7f || got[i] == '?' || got[i] == '#' {
			t.Fatalf("Template(%q) = %q: byte %#x", in, got, got[i])
		}
	}
	if again := Template(got); again != got {
		t.Fatalf("Template(%q) = %q, but Template of that = %q", in, got, again)
	}
}

func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"", "/", "*", "/users/7?x=1", "http://h/a/b", "/o/123e4567-e89b-12d3-a456-426614174000",
		"/blob/5f2b8c1e/", "/%31/a%20b", "/caf\xc3\xa9", strings.Repeat("/ab", 200),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkTemplate(t, in, Template(in))
	})
}
