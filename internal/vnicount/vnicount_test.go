package vnicount

import (
	"sync"
	"testing"
)

type add struct {
	vni  uint32
	pair bool
	n    int
}

func snapshot(c *Counters) (map[uint32]Counts, Counts) {
	got := map[uint32]Counts{}
	var other Counts
	c.Each(func(vni uint32, isOther bool, counts Counts) {
		if isOther {
			other = counts
			return
		}
		got[vni] = counts
	})
	return got, other
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		max   int
		adds  []add
		want  map[uint32]Counts
		other Counts
	}{
		{
			name: "per VNI",
			max:  4,
			adds: []add{{7, true, 100}, {7, false, 50}, {9, true, 10}, {0, true, 1}},
			want: map[uint32]Counts{7: {2, 1, 150}, 9: {1, 1, 10}, 0: {1, 1, 1}},
		},
		{
			name:  "beyond the limit, other",
			max:   2,
			adds:  []add{{1, true, 1}, {2, true, 2}, {3, true, 3}, {4, false, 4}, {1, true, 10}, {3, true, 30}},
			want:  map[uint32]Counts{1: {2, 2, 11}, 2: {1, 1, 2}},
			other: Counts{3, 2, 37},
		},
		{
			name:  "largest VNI",
			max:   1,
			adds:  []add{{1<<24 - 1, true, 5}, {1<<32 - 1, true, 6}},
			want:  map[uint32]Counts{1<<24 - 1: {1, 1, 5}},
			other: Counts{1, 1, 6},
		},
		{
			name: "default limit",
			adds: []add{{1, false, 0}},
			want: map[uint32]Counts{1: {1, 0, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Config{MaxVNIs: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.adds {
				c.Add(a.vni, a.pair, a.n)
			}
			got, other := snapshot(c)
			if len(got) != len(tc.want) {
				t.Errorf("VNIs %v, want %v", got, tc.want)
			}
			for vni, w := range tc.want {
				if got[vni] != w {
					t.Errorf("VNI %d: %+v, want %+v", vni, got[vni], w)
				}
			}
			if other != tc.other {
				t.Errorf("other: %+v, want %+v", other, tc.other)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, n := range []int{-1, LimitMaxVNIs + 1} {
		if _, err := New(Config{MaxVNIs: n}); err == nil {
			t.Errorf("MaxVNIs %d accepted", n)
		}
	}
}

// TestConcurrent: workers adding overlapping VNIs at once never give one
// VNI two slots, never take more than the limit, and lose no count.
func TestConcurrent(t *testing.T) {
	const workers, perWorker, vnis, max = 8, 20000, 300, 100
	c, err := New(Config{MaxVNIs: max})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				c.Add(uint32((i*7+w)%vnis), i%2 == 0, 3)
			}
		})
	}
	wg.Wait()
	seen := map[uint32]bool{}
	var total Counts
	own := 0
	c.Each(func(vni uint32, other bool, n Counts) {
		if !other {
			if seen[vni] {
				t.Errorf("VNI %d reported twice", vni)
			}
			seen[vni] = true
			own++
		}
		total.Records += n.Records
		total.Pairs += n.Pairs
		total.Bytes += n.Bytes
	})
	if own > max {
		t.Errorf("%d VNIs with their own counters, limit %d", own, max)
	}
	if want := (Counts{workers * perWorker, workers * perWorker / 2, 3 * workers * perWorker}); total != want {
		t.Errorf("total %+v, want %+v", total, want)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	c, _ := New(Config{MaxVNIs: 2})
	if n := testing.AllocsPerRun(1000, func() {
		c.Add(4242, true, 1500)
		c.Add(7, false, 10)
		c.Add(8, false, 10) // other
	}); n != 0 {
		t.Errorf("Add allocates %.1f times", n)
	}
}

func BenchmarkAdd(b *testing.B) {
	c, _ := New(Config{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var i uint32
		for pb.Next() {
			c.Add(i%16, true, 1000)
			i++
		}
	})
}
