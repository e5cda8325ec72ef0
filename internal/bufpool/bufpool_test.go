package bufpool

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
)

func TestGetSizes(t *testing.T) {
	p, err := New(512, 4096)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ n, wantCap int }{
		{0, 512}, {1, 512}, {512, 512}, {513, 1024}, {1024, 1024}, {1025, 2048},
		{4095, 4096}, {4096, 4096},
		{4097, 4097}, // above the largest class: exactly n, not pooled
		{1 << 20, 1 << 20},
	}
	for _, tt := range tests {
		b := p.Get(tt.n)
		if len(b) != tt.n || cap(b) != tt.wantCap {
			t.Errorf("Get(%d): len %d cap %d, want len %d cap %d", tt.n, len(b), cap(b), tt.n, tt.wantCap)
		}
		p.Put(b)
	}
}

func TestPutClasses(t *testing.T) {
	p, _ := New(512, 4096)
	tests := []struct {
		name    string
		cap     int
		get     int  // the size asked for afterwards
		reused  bool // whether Get returns the buffer Put
		wantCap int
	}{
		{"exact class", 1024, 1000, true, 1024},
		{"grown by append: floor class", 1500, 1024, true, 1024},
		{"too small", 300, 300, false, 512},
		{"too large", 8192, 4096, false, 4096},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// sync.Pool may drop what it is given (at a GC, and at random
			// under the race detector): GC off, and a few tries.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			b := make([]byte, 10, tt.cap)
			reused := false
			for range 20 {
				p.Put(b)
				got := p.Get(tt.get)
				if cap(got) != tt.wantCap {
					t.Errorf("cap %d, want %d", cap(got), tt.wantCap)
				}
				if reused = &got[:1][0] == &b[:1][0]; reused {
					break
				}
			}
			if reused != tt.reused {
				t.Errorf("reused = %v, want %v", reused, tt.reused)
			}
		})
	}
}

func TestNewRejectsBadClasses(t *testing.T) {
	for _, c := range [][2]int{{0, 512}, {500, 1024}, {512, 1000}, {1024, 512}, {-1, 512}} {
		if _, err := New(c[0], c[1]); err == nil {
			t.Errorf("New(%d, %d): no error", c[0], c[1])
		}
	}
	if p, err := New(512, 512); err != nil || p.MaxSize() != 512 {
		t.Errorf("New(512, 512) = %v, %v", p, err)
	}
}

func TestSteadyStateDoesNotAllocate(t *testing.T) {
	p, _ := New(512, 1<<16)
	for _, n := range []int{100, 1300, 5000, 1 << 16} {
		p.Put(p.Get(n))
		if a := testing.AllocsPerRun(1000, func() { p.Put(p.Get(n)) }); a != 0 {
			t.Errorf("Get(%d)+Put: %v allocations", n, a)
		}
	}
}

// TestConcurrentOwnership: goroutines each fill the buffers they Get with
// their own byte and check it is still there before Put; a buffer handed to
// two owners at once fails the check (and the race detector).
func TestConcurrentOwnership(t *testing.T) {
	p, _ := New(512, 1<<14)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mark := byte(g + 1)
			for i := range 2000 {
				b := p.Get(100 + (i*37+g*101)%(1<<14))
				for j := range b {
					b[j] = mark
				}
				runtime.Gosched()
				if bytes.IndexFunc(b, func(r rune) bool { return r != rune(mark) }) >= 0 {
					t.Errorf("goroutine %d: buffer changed while owned", g)
					return
				}
				p.Put(b)
			}
		}()
	}
	wg.Wait()
}

func TestDefault(t *testing.T) {
	b := Get(1300)
	if len(b) != 1300 || cap(b) != 2048 {
		t.Errorf("Get(1300): len %d cap %d", len(b), cap(b))
	}
	Put(b)
	if big := Get(DefaultMaxSize + 1); cap(big) != DefaultMaxSize+1 {
		t.Errorf("a buffer above DefaultMaxSize has cap %d", cap(big))
	}
}
