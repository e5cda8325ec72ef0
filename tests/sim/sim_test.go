package main

import (
	"io"
	"os"
	"testing"

	"github.com/apitap/apitap/internal/awssim"
)

// strictness are the ways an AWS account may behave where AWS documents
// nothing, one per seed, each way at least twice: what it does with the
// tag filters DescribeTrafficMirrorSessions does not document, whether it
// refuses a second session with a number already used on the ENI, and
// whether a reused ClientToken is compared with its tags.
var strictness = []scenarioOptions{
	{Seed: 1, Filters: awssim.FiltersApply},
	{Seed: 2, Filters: awssim.FiltersIgnore, DuplicateNumbers: true, TokenIgnoresTags: true},
	{Seed: 3, Filters: awssim.FiltersReject, RejectCode: "InvalidFilter", DuplicateNumbers: true},
	{Seed: 4, Filters: awssim.FiltersReject, RejectCode: "InvalidParameterValue", TokenIgnoresTags: true},
	{Seed: 5, Filters: awssim.FiltersIgnore},
	{Seed: 6, Filters: awssim.FiltersApply, DuplicateNumbers: true, TokenIgnoresTags: true},
}

// TestScenarios runs the randomized scenario with fixed seeds, one per
// strictness mode: thousands of operations, events lost, duplicated, late
// and reordered, 30% of API requests throttled, handlers running
// concurrently. After the final reconcile the sessions must be exactly the
// desired ones, no foreign session touched, never a duplicate or a fourth
// session on an ENI.
func TestScenarios(t *testing.T) {
	ops := 1500
	if testing.Short() {
		ops = 300
	}
	for _, opt := range strictness {
		opt.Ops, opt.Throttle = ops, 0.3
		o, w, err := runScenario(opt, io.Discard)
		if w != nil {
			defer w.acct.Close()
		}
		t.Logf("seed %d, %s: %s", opt.Seed, opt.mode(), o)
		if err != nil {
			t.Errorf("seed %d (%s): %v", opt.Seed, opt.mode(), err)
			continue
		}
		if !o.ok() {
			t.Errorf("seed %d (%s): %s", opt.Seed, opt.mode(), o)
		}
		if o.desired == 0 {
			t.Errorf("seed %d: nothing was desired: the scenario tests nothing", opt.Seed)
		}
	}
}

// TestSimCommand checks the command-line contract (docs/contracts.md §4).
func TestSimCommand(t *testing.T) {
	if os.Getenv("APITAP_SIM_CHILD") != "" {
		return
	}
	o, w, err := runScenario(scenarioOptions{Seed: 3, Ops: 100, Throttle: 0.3}, io.Discard)
	if w != nil {
		defer w.acct.Close()
	}
	if err != nil || !o.ok() {
		t.Fatalf("%s: %v", o, err)
	}
	if got := o.String(); got[:15] != "converged=true " {
		t.Errorf("summary line %q", got)
	}
}
