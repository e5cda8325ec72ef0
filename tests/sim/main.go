// Command sim runs one randomized orchestrator scenario against the
// simulated AWS account: thousands of operations (instances launched,
// stopped, terminated; targets registered and deregistered; load balancers
// selected and deselected; foreign sessions appearing), events delivered
// late, duplicated, reordered or lost, 30% of API requests throttled and
// handlers running concurrently. It ends with one line (docs/contracts.md §4):
//
//	converged=true desired=N actual=N foreign_touched=0 duplicates=0 over_limit=0 api_calls=N
//
// and exits 1 when an invariant does not hold.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"

	"github.com/apitap/apitap/internal/awssim"
)

func main() {
	seed := flag.Uint64("seed", 1, "random seed (the scenario is reproducible from it)")
	ops := flag.Int("ops", 1000, "number of random operations")
	lbs := flag.Int("lbs", 12, "number of load balancers")
	throttle := flag.Float64("throttle", 0.3, "fraction of API requests throttled")
	verbose := flag.Bool("v", false, "print the functions' warnings")
	filters := flag.String("filters", string(awssim.FiltersApply), "what the account does with filters AWS does not document (tag filters on DescribeTrafficMirrorSessions): apply, ignore (as moto does) or reject")
	rejectCode := flag.String("reject-code", "InvalidFilter", "error code of a refused filter (-filters reject): InvalidFilter or InvalidParameterValue")
	dups := flag.Bool("duplicate-numbers", false, "let the account create a second session with a session number already used on the ENI")
	tokenTags := flag.Bool("token-ignores-tags", false, "compare a reused ClientToken's parameters without the tags (replay the original session instead of IdempotentParameterMismatch)")
	flag.Parse()
	if !slices.Contains(awssim.FilterModes, awssim.FilterMode(*filters)) {
		fmt.Fprintf(os.Stderr, "sim: -filters %q: want apply, ignore or reject\n", *filters)
		os.Exit(2)
	}
	logs := io.Discard
	if *verbose {
		logs = os.Stderr
	}
	o, w, err := runScenario(scenarioOptions{Seed: *seed, Ops: *ops, LBs: *lbs, Throttle: *throttle,
		Filters: awssim.FilterMode(*filters), RejectCode: *rejectCode, DuplicateNumbers: *dups, TokenIgnoresTags: *tokenTags}, logs)
	if w != nil {
		defer w.acct.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sim:", err)
	}
	fmt.Println(o)
	if err != nil || !o.ok() {
		os.Exit(1)
	}
}

func (o outcome) ok() bool {
	return o.converged && o.desired == o.actual && o.foreignTouched == 0 && o.duplicates == 0 && o.overLimit == 0
}

func sortStrings(s []string) { sort.Strings(s) }
