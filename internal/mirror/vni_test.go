package mirror

import (
	"fmt"
	"maps"
	"testing"
)

func TestVNI(t *testing.T) {
	// Published FNV-1a-32 vectors: "" 0x811c9dc5, "a" 0xe40c292c,
	// "foobar" 0xbf9cf968; a VNI keeps the low 24 bits.
	tests := []struct {
		arn  string
		want uint32
	}{
		{"", 0x1c9dc5},
		{"a", 0x0c292c},
		{"foobar", 0x9cf968},
	}
	for _, tt := range tests {
		if got := VNI(tt.arn); got != tt.want {
			t.Errorf("VNI(%q) = %#x, want %#x", tt.arn, got, tt.want)
		}
	}
}

func TestFoldVNI(t *testing.T) {
	tests := []struct{ hash, want uint32 }{
		{0x00000000, 1},
		{0x7f000000, 1}, // low 24 bits zero
		{0x12345678, 0x345678},
		{0xffffffff, 0xffffff},
	}
	for _, tt := range tests {
		if got := foldVNI(tt.hash); got != tt.want {
			t.Errorf("foldVNI(%#x) = %#x, want %#x", tt.hash, got, tt.want)
		}
	}
	if got := nextVNI(0xffffff); got != 1 {
		t.Errorf("nextVNI(0xffffff) = %d, want 1 (wraps, skipping 0)", got)
	}
}

func TestResolveVNIs(t *testing.T) {
	table := func(m map[string]uint32) func(string) uint32 {
		return func(arn string) uint32 { return m[arn] }
	}
	tests := []struct {
		name     string
		hash     map[string]uint32
		selected []string
		want     map[string]uint32
	}{
		{
			name: "empty",
			want: map[string]uint32{},
		},
		{
			name:     "no collision",
			hash:     map[string]uint32{"a": 10, "b": 20},
			selected: []string{"b", "a"},
			want:     map[string]uint32{"a": 10, "b": 20},
		},
		{
			name:     "clash goes to the later ARN in sorted order",
			hash:     map[string]uint32{"a": 5, "b": 5},
			selected: []string{"b", "a"},
			want:     map[string]uint32{"a": 5, "b": 6},
		},
		{
			name:     "chain of clashes skips taken values",
			hash:     map[string]uint32{"a": 5, "b": 5, "c": 6},
			selected: []string{"c", "b", "a"},
			want:     map[string]uint32{"a": 5, "b": 6, "c": 7},
		},
		{
			name:     "wraps past 2^24-1 skipping 0",
			hash:     map[string]uint32{"a": 0xffffff, "b": 0xffffff, "c": 0xffffff},
			selected: []string{"a", "b", "c"},
			want:     map[string]uint32{"a": 0xffffff, "b": 1, "c": 2},
		},
		{
			name:     "duplicates count once",
			hash:     map[string]uint32{"a": 5, "b": 5},
			selected: []string{"a", "a", "b", "a"},
			want:     map[string]uint32{"a": 5, "b": 6},
		},
		{
			name:     "a later ARN's own value taken by an earlier bumped one",
			hash:     map[string]uint32{"a": 7, "b": 7, "c": 8, "d": 8},
			selected: []string{"d", "c", "b", "a"},
			want:     map[string]uint32{"a": 7, "b": 8, "c": 9, "d": 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveVNIs(tt.selected, table(tt.hash))
			if !maps.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResolveVNIsDoesNotModifyInput(t *testing.T) {
	in := []string{"b", "a", "b"}
	VNIs(in)
	if in[0] != "b" || in[1] != "a" || in[2] != "b" {
		t.Errorf("input changed to %v", in)
	}
}

// TestVNIsRealCollision finds two ARNs whose VNIs collide under the real
// hash (24 bits: the birthday bound makes this a few thousand tries) and
// checks that the selection resolves them whatever the input order.
func TestVNIsRealCollision(t *testing.T) {
	byVNI := map[uint32]string{}
	var a, b string
	for i := 0; i < 1_000_000 && a == ""; i++ {
		arn := fmt.Sprintf("arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/lb-%d/%016x", i, i*7919)
		v := VNI(arn)
		if other, ok := byVNI[v]; ok {
			a, b = min(other, arn), max(other, arn)
			break
		}
		byVNI[v] = arn
	}
	if a == "" {
		t.Fatal("no collision found")
	}
	v := VNI(a)
	third := "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/other/1"
	want := map[string]uint32{a: v, b: nextVNI(v)}
	if w := VNI(third); w != v && w != nextVNI(v) {
		want[third] = w
	} else {
		t.Skipf("third ARN collides too; pick another")
	}

	for _, order := range [][]string{
		{a, b, third},
		{b, a, third},
		{third, b, a},
		{b, third, a, b},
	} {
		got := VNIs(order)
		if !maps.Equal(got, want) {
			t.Errorf("VNIs(%v) = %v, want %v", order, got, want)
		}
	}
}
