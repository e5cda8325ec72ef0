package stack_test

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// What a configuration change replaces, by CloudFormation's own resource
// schemas (their createOnlyProperties, shipped with cfn-lint): a resource
// is replaced when its logical id is new, when a create-only property
// changes, or when a create-only property refers to a replaced resource.
// "full" and "scram" differ in every setting that could touch mirroring:
// mirror ports, IPv6, session number, conflict policy, Kafka, trail,
// e-mail, schedule and log retention; the stack name is the same.
func TestConfigurationChangeKeepsMirroring(t *testing.T) {
	a, b := synth(t, "full"), synth(t, "scram")
	for _, change := range [][2]*synthesized{{a, b}, {b, a}} {
		from, to := change[0], change[1]
		replaced := replacements(t, from, to)
		var list []string
		for id, why := range replaced {
			list = append(list, id+" ("+why+")")
		}
		sort.Strings(list)
		t.Logf("a change from %s to %s removes or replaces: %s", from.variant, to.variant, strings.Join(list, ", "))
		for id, r := range from.model.Resources {
			switch r.Type {
			case "AWS::EC2::TrafficMirrorFilter", "AWS::EC2::TrafficMirrorTarget", "AWS::ElasticLoadBalancingV2::LoadBalancer",
				"AWS::ElasticLoadBalancingV2::Listener", "AWS::ElasticLoadBalancingV2::TargetGroup", "AWS::EC2::TrafficMirrorFilterRule":
				if why, ok := replaced[id]; ok && why != removed {
					t.Errorf("%s to %s: %s %s is replaced: %s", from.variant, to.variant, r.Type, id, why)
				}
			}
		}
	}
	filter := a.logicalID("AWS::EC2::TrafficMirrorFilter")
	if fa, fb := a.model.Resources[filter], b.model.Resources[filter]; !reflect.DeepEqual(fa, fb) {
		t.Errorf("the mirror filter differs:\n%s\n%s", jsonOf(fa), jsonOf(fb))
	}
	// The rules both configurations have keep their direction and number:
	// an update modifies them in place.
	for id, ra := range a.ofType("AWS::EC2::TrafficMirrorFilterRule") {
		if rb, ok := b.ofType("AWS::EC2::TrafficMirrorFilterRule")[id]; ok &&
			(ra["RuleNumber"] != rb["RuleNumber"] || ra["TrafficDirection"] != rb["TrafficDirection"]) {
			t.Errorf("rule %s: %v %v becomes %v %v", id, ra["TrafficDirection"], ra["RuleNumber"], rb["TrafficDirection"], rb["RuleNumber"])
		}
	}
}

const removed = "removed"

// replacements are the resources of a that an update to b replaces, with
// why.
func replacements(t *testing.T, a, b *synthesized) map[string]string {
	t.Helper()
	types := map[string]bool{}
	for _, r := range a.model.Resources {
		types[r.Type] = true
	}
	createOnly := createOnlyProperties(t, types)
	out := map[string]string{}
	for id, ra := range a.model.Resources {
		rb, ok := b.model.Resources[id]
		switch {
		case !ok:
			out[id] = removed
		case ra.Type != rb.Type:
			out[id] = "type changes"
		default:
			for _, p := range createOnly[ra.Type] {
				if !reflect.DeepEqual(ra.Properties[p], rb.Properties[p]) {
					out[id] = p + " changes"
					break
				}
			}
		}
	}
	// A create-only reference to a replaced resource replaces the
	// referrer too.
	for changed := true; changed; {
		changed = false
		for id, rb := range b.model.Resources {
			if _, done := out[id]; done {
				continue
			}
			if _, existed := a.model.Resources[id]; !existed {
				continue
			}
			for _, p := range createOnly[rb.Type] {
				for _, ref := range references(rb.Properties[p]) {
					if _, r := out[ref]; r {
						out[id] = p + " refers to replaced " + ref
						changed = true
					}
				}
			}
		}
	}
	return out
}

// createOnlyProperties reads CloudFormation's resource schemas through
// cfn-lint's copy of them: top-level property names only (a nested
// create-only path counts as its top-level property, which can only
// report more replacements, never fewer).
func createOnlyProperties(t *testing.T, types map[string]bool) map[string][]string {
	t.Helper()
	var names []string
	for typ := range types {
		if strings.HasPrefix(typ, "Custom::") {
			typ = "AWS::CloudFormation::CustomResource"
		}
		names = append(names, typ)
	}
	const script = `import json, sys
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER as m
out = {}
for t in sys.argv[1:]:
    s = m.get_resource_schema("us-east-1", t).schema
    out[t] = sorted({p.split("/")[2] for p in s.get("createOnlyProperties", [])})
print(json.dumps(out))`
	cmd := exec.Command(pyBin(t, "python"), append([]string{"-c", script}, names...)...)
	raw, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("reading resource schemas: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("reading resource schemas: %v", err)
	}
	out := map[string][]string{}
	must(t, json.Unmarshal(raw, &out))
	for typ := range types {
		if strings.HasPrefix(typ, "Custom::") {
			out[typ] = out["AWS::CloudFormation::CustomResource"]
		}
	}
	return out
}

// references are the logical ids v refers to with Ref or Fn::GetAtt.
func references(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, x := range v {
			out = append(out, references(x)...)
		}
	case map[string]any:
		if ref, ok := v["Ref"].(string); ok {
			out = append(out, ref)
		}
		if ga, ok := v["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
			out = append(out, ga[0].(string))
		}
		for _, x := range v {
			out = append(out, references(x)...)
		}
	}
	return out
}
