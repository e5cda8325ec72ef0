package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/embedded"
)

// printDemo reads the records back from the embedded broker and prints a
// summary and two records: what `make demo` shows a new user.
func (s *sniffer) printDemo(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msgs, err := embedded.ReadAll(ctx, s.broker.Addr(), s.o.kafkaCfg.Topic)
	if err != nil {
		return fmt.Errorf("reading records back from the embedded broker: %w", err)
	}
	methods := map[string]int{}
	paths := map[string]int{}
	statuses := map[string]int{}
	var samples []string
	for _, m := range msgs {
		var r map[string]string
		if err := json.Unmarshal(m.Value, &r); err != nil {
			return fmt.Errorf("record at offset %d is not a flat JSON object of strings: %w", m.Offset, err)
		}
		methods[r["method"]]++
		p := r["path"]
		if i := strings.IndexByte(p, '?'); i >= 0 {
			p = p[:i]
		}
		paths[p]++
		statuses[r["statusCode"]]++
		if len(samples) < 2 && (len(samples) == 0 || r["method"] != "GET") {
			var pretty strings.Builder
			enc := json.NewEncoder(&pretty)
			enc.SetEscapeHTML(false)
			enc.SetIndent("  ", "  ")
			if err := enc.Encode(r); err != nil {
				return err
			}
			samples = append(samples, strings.TrimSpace(pretty.String()))
		}
	}
	w := s.stdout
	fmt.Fprintf(w, "read %d records back from topic %s on the embedded broker\n", len(msgs), s.o.kafkaCfg.Topic)
	fmt.Fprintf(w, "methods:  %s\n", counts(methods))
	fmt.Fprintf(w, "statuses: %s\n", counts(statuses))
	fmt.Fprintf(w, "paths (%d distinct, query strings left out):\n", len(paths))
	for _, kv := range sorted(paths) {
		fmt.Fprintf(w, "  %5d  %s\n", kv.n, kv.k)
	}
	for i, r := range samples {
		fmt.Fprintf(w, "record %d:\n  %s\n", i+1, r)
	}
	return nil
}

type kv struct {
	k string
	n int
}

func sorted(m map[string]int) []kv {
	var out []kv
	for k, n := range m {
		out = append(out, kv{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].k < out[j].k
	})
	return out
}

func counts(m map[string]int) string {
	var parts []string
	for _, e := range sorted(m) {
		parts = append(parts, fmt.Sprintf("%s=%d", e.k, e.n))
	}
	return strings.Join(parts, " ")
}
