package stack_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The rules' event patterns, matched against every sample event under
// events/ by moto's implementation of EventBridge pattern matching (a
// matcher we did not write): each sample reaches exactly the rule meant
// for it.
func TestRulesMatchSampleEvents(t *testing.T) {
	s := synth(t, "full")
	const sampleStack = "arn:aws:cloudformation:us-east-1:123456789012:stack/apitap/5b0c7e20-9d3f-11f0-8a1b-0e4c6f2d3a11"
	patterns := map[string]any{}
	for _, r := range s.ofType("AWS::Events::Rule") {
		if r["EventPattern"] == nil {
			continue
		}
		p := render(t, s, r["EventPattern"])
		// The stack rule names this stack by id: the samples' stack.
		raw := strings.ReplaceAll(jsonOf(p), refValue(t, s, "AWS::StackId"), sampleStack)
		patterns[strings.TrimPrefix(r["Name"].(string), s.cfg.StackName+"-")] = json.RawMessage(raw)
	}
	samples, err := filepath.Glob("../../events/*.json")
	must(t, err)
	events := map[string]json.RawMessage{}
	for _, f := range samples {
		b, err := os.ReadFile(f)
		must(t, err)
		events[filepath.Base(f)] = b
	}
	const script = `import json, sys
from moto.events.models import EventPattern
req = json.load(sys.stdin)
out = {}
for name, event in req["events"].items():
    out[name] = sorted(r for r, p in req["patterns"].items() if EventPattern.load(json.dumps(p)).matches_event(event))
print(json.dumps(out))`
	in, err := json.Marshal(map[string]any{"patterns": patterns, "events": events})
	must(t, err)
	cmd := exec.Command(pyBin(t, "python"), "-c", script)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("moto's matcher: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var matched map[string][]string
	must(t, json.Unmarshal(out, &matched))

	want := func(sample string) []string {
		switch {
		case strings.HasPrefix(sample, "ec2-state-"):
			return []string{"ec2-state"}
		case strings.HasPrefix(sample, "autoscaling-"):
			return []string{"autoscaling"}
		case strings.HasPrefix(sample, "cloudtrail-"):
			return []string{"targets"}
		case strings.HasPrefix(sample, "cfn-stack-"), strings.HasPrefix(sample, "cfn-resource-"):
			return []string{"stack"}
		case strings.HasPrefix(sample, "ecs-task-state-"):
			return []string{"ecs-tasks"}
		}
		// Custom resource requests and the scheduled event reach
		// functions other ways.
		return nil
	}
	var names []string
	for n := range matched {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if got, w := matched[n], want(n); strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s reaches rules %v, want %v", n, got, w)
		}
	}
	if len(names) < 30 {
		t.Errorf("only %d samples", len(names))
	}
}
