package opsview_test

import (
	"strings"
	"testing"
	"time"

	"github.com/apitap/apitap/internal/opsview"
)

func TestVerdict(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		s     opsview.LBStatus
		known bool
		want  string
		why   string
	}{
		"mirroring":                  {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour), Records: 120}, true, opsview.VerdictMirroring, ""},
		"new sessions, no traffic":   {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-4 * time.Minute)}, true, opsview.VerdictNoTraffic, "traffic shows within"},
		"old sessions, no traffic":   {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour)}, true, opsview.VerdictSilent, "security group"},
		"old sessions, metrics gone": {opsview.LBStatus{Targets: 2, Sessions: 2, Oldest: now.Add(-time.Hour)}, false, opsview.VerdictSilent, "could not be read"},
		"no targets":                 {opsview.LBStatus{}, true, opsview.VerdictNotMirrored, "no target"},
		"not created yet":            {opsview.LBStatus{Targets: 2, Missing: 2}, true, opsview.VerdictNotMirrored, "not created yet"},
		"conflicts":                  {opsview.LBStatus{Targets: 1, Conflicts: 1}, true, opsview.VerdictNotMirrored, "foreign sessions"},
		"unsupported":                {opsview.LBStatus{Targets: 1, Unsupported: 1}, true, opsview.VerdictNotMirrored, "cannot be a mirror source"},
	} {
		got, why := opsview.Verdict(tc.s, tc.known, now)
		if got != tc.want || !strings.Contains(strings.Join(why, "; "), tc.why) {
			t.Errorf("%s: %s %v, want %s with %q", name, got, why, tc.want, tc.why)
		}
	}
}
