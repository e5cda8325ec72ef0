package main

import (
	"io"
	"os"
	"testing"
)

// TestScenarios runs the randomized scenario with fixed seeds: thousands
// of operations, events lost, duplicated, late and reordered, 30% of API
// requests throttled, handlers running concurrently. After the final
// reconcile the sessions must be exactly the desired ones, no foreign
// session touched, never a duplicate or a fourth session on an ENI.
func TestScenarios(t *testing.T) {
	ops := 1500
	if testing.Short() {
		ops = 300
	}
	for _, seed := range []uint64{1, 2} {
		o, w, err := runScenario(scenarioOptions{Seed: seed, Ops: ops, Throttle: 0.3}, io.Discard)
		if w != nil {
			defer w.acct.Close()
		}
		t.Logf("seed %d: %s", seed, o)
		if err != nil {
			t.Errorf("seed %d: %v", seed, err)
			continue
		}
		if !o.ok() {
			t.Errorf("seed %d: %s", seed, o)
		}
		if o.desired == 0 {
			t.Errorf("seed %d: nothing was desired: the scenario tests nothing", seed)
		}
	}
}

// TestSimCommand checks the command-line contract (contracts.md §4).
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
