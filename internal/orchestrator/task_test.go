package orchestrator

import (
	"testing"
	"time"
)

func TestNextLook(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 12, 31, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		done   int
		max    int
		stopBy time.Time
		want   time.Duration
		ok     bool
	}{
		{"first of three", 1, 3, time.Time{}, 10 * time.Second, true},
		{"second of three: the wait doubles", 2, 3, time.Time{}, 20 * time.Second, true},
		{"all three done", 3, 3, time.Time{}, 0, false},
		{"one look only (a standalone task)", 1, 1, time.Time{}, 0, false},
		{"deadline after the wait", 1, 3, now.Add(11 * time.Second), 10 * time.Second, true},
		{"deadline at the end of the wait", 1, 3, now.Add(10 * time.Second), 0, false},
		{"deadline before the second wait ends", 2, 3, now.Add(15 * time.Second), 0, false},
		{"no look done: a caller's bug, no wait", 0, 3, time.Time{}, 0, false},
	} {
		got, ok := nextLook(tc.done, tc.max, 10*time.Second, now, tc.stopBy)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: nextLook(%d, %d) = %s, %v; want %s, %v", tc.name, tc.done, tc.max, got, ok, tc.want, tc.ok)
		}
	}
	// The defaults look at 0, 10 and 30 seconds: within the instance-events
	// function's 120 s timeout with room to spare.
	var at time.Duration
	for done := 1; ; done++ {
		wait, ok := nextLook(done, DefaultTargetLooks, DefaultTargetLookDelay, now, time.Time{})
		if !ok {
			break
		}
		at += wait
	}
	if at != 30*time.Second {
		t.Errorf("the last default look is at %s, want 30s", at)
	}
}
