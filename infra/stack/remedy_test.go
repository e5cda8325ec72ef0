package stack_test

import (
	"strings"
	"testing"
)

// A remediation class's permissions exist only when the configuration
// enables it ("full" enables all four, "scram" none); the diagnosis
// itself (read, record, publish) is always there.
func TestRemediationPermissionsOnlyWhenEnabled(t *testing.T) {
	for variant, enabled := range map[string]bool{"full": true, "scram": false} {
		s := synth(t, variant)
		for _, fn := range []string{"InstanceEventsRole", "StackEventsRole", "ReconcileRole"} {
			sids := map[string]bool{}
			for _, st := range policyStatements(s)[roleID(s, fn)] {
				if sid, _ := st["Sid"].(string); sid != "" {
					sids[sid] = true
				}
			}
			for _, always := range []string{"RecordDiagnoses", "PublishDiagnoses", "ReadStackEvents"} {
				if !sids[always] {
					t.Errorf("%s %s: no %s", variant, fn, always)
				}
			}
			for _, remedy := range []string{"RemedyCapacity", "RemedyKms", "RemedySessions", "RemedySniffers"} {
				if sids[remedy] != enabled {
					t.Errorf("%s %s: %s present %v, want %v", variant, fn, remedy, sids[remedy], enabled)
				}
			}
		}
		for id, r := range s.model.Resources {
			if r.Type == "AWS::IAM::Policy" && strings.HasPrefix(id, "Teardown") && strings.Contains(jsonOf(r.Properties), "Remedy") {
				t.Errorf("%s: the teardown may remediate", variant)
			}
		}
	}
}
