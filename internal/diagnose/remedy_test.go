package diagnose

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

var subnetZones = map[string]string{
	"subnet-0abc000000000001a": "us-east-1a",
	"subnet-0abc000000000002a": "us-east-1a",
	"subnet-0abc000000000001b": "us-east-1b",
	"subnet-0abc000000000001c": "us-east-1c",
}

func TestPlanPlacement(t *testing.T) {
	allTypes := []string{"c7g.large", "c6g.large", "m7g.large"}
	allSubnets := []string{"subnet-0abc000000000001a", "subnet-0abc000000000002a", "subnet-0abc000000000001b", "subnet-0abc000000000001c"}
	for _, tc := range []struct {
		name             string
		current          Placement
		configured       []string
		failedType, zone string
		change           bool
		want             Placement // when change
		why              string
	}{
		{name: "drop the failed type, keep order and zones", current: Placement{allTypes, allSubnets}, configured: allTypes,
			failedType: "c6g.large", zone: "us-east-1a", change: true,
			want: Placement{[]string{"c7g.large", "m7g.large"}, allSubnets}, why: "Dropped instance type c6g.large"},
		{name: "the last type: drop the zone's subnets instead", current: Placement{[]string{"c7g.large"}, allSubnets}, configured: allTypes,
			failedType: "c7g.large", zone: "us-east-1a", change: true,
			want: Placement{[]string{"c7g.large"}, []string{"subnet-0abc000000000001b", "subnet-0abc000000000001c"}}, why: "only instance type"},
		{name: "no type named: drop the zone", current: Placement{allTypes, allSubnets}, configured: allTypes,
			zone: "us-east-1b", change: true,
			want: Placement{allTypes, []string{"subnet-0abc000000000001a", "subnet-0abc000000000002a", "subnet-0abc000000000001c"}}, why: "Dropped the subnets of us-east-1b"},
		{name: "only configured entries are kept", current: Placement{[]string{"c7g.large", "x2gd.large", "c6g.large"}, append([]string{"subnet-0fff00000000000ff"}, allSubnets...)},
			configured: allTypes, failedType: "c7g.large", change: true,
			want: Placement{[]string{"c6g.large"}, allSubnets}},
		{name: "never empty: last type, last zone", current: Placement{[]string{"c7g.large"}, []string{"subnet-0abc000000000001a", "subnet-0abc000000000002a"}},
			configured: allTypes, failedType: "c7g.large", zone: "us-east-1a", why: "no change"},
		{name: "never empty: last type, no zone", current: Placement{[]string{"c7g.large"}, allSubnets}, configured: allTypes,
			failedType: "c7g.large", why: "no change"},
		{name: "a type the fleet does not use", current: Placement{[]string{"c7g.large", "c6g.large"}, allSubnets}, configured: allTypes,
			failedType: "m7g.large", zone: "us-east-1a", why: "nothing to drop"},
		{name: "a type the configuration does not name is not dropped for it", current: Placement{[]string{"c7g.large", "x2gd.large"}, allSubnets}, configured: allTypes,
			failedType: "x2gd.large", why: "not among the fleet's configured"},
		{name: "a zone the fleet does not use", current: Placement{allTypes, allSubnets}, configured: allTypes, zone: "us-east-1f", why: "nothing to drop"},
		{name: "nothing named", current: Placement{allTypes, allSubnets}, configured: allTypes, why: "Neither"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := Placement{append([]string(nil), tc.current.InstanceTypes...), append([]string(nil), tc.current.Subnets...)}
			p := PlanPlacement(tc.current, tc.configured, subnetZones, tc.failedType, tc.zone)
			if !reflect.DeepEqual(tc.current, before) {
				t.Fatal("the input was modified")
			}
			if p.Change != tc.change || !strings.Contains(p.Why, tc.why) {
				t.Fatalf("plan = %+v", p)
			}
			if !reflect.DeepEqual(p.Previous, tc.current) {
				t.Errorf("Previous = %+v", p.Previous)
			}
			if !tc.change {
				if !reflect.DeepEqual(p.Placement, tc.current) || p.Undo != "" {
					t.Errorf("no change, but placement %+v, undo %q", p.Placement, p.Undo)
				}
				return
			}
			if !reflect.DeepEqual(p.Placement, tc.want) {
				t.Errorf("placement = %+v, want %+v", p.Placement, tc.want)
			}
			checkPlacement(t, p, tc.configured, tc.failedType, tc.zone)
		})
	}
}

// checkPlacement holds for every change: nothing empty, nothing
// unconfigured, the failure gone, and Undo names what was there.
func checkPlacement(t *testing.T, p PlacementPlan, configured []string, failedType, zone string) {
	t.Helper()
	if len(p.Placement.InstanceTypes) == 0 || len(p.Placement.Subnets) == 0 {
		t.Errorf("empty placement %+v", p.Placement)
	}
	for _, ty := range p.Placement.InstanceTypes {
		if !contains(configured, ty) {
			t.Errorf("unconfigured type %s", ty)
		}
	}
	for _, s := range p.Placement.Subnets {
		if _, ok := subnetZones[s]; !ok {
			t.Errorf("unconfigured subnet %s", s)
		}
	}
	typeGone := !contains(p.Placement.InstanceTypes, failedType)
	zoneGone := !contains(zonesOf(p.Placement.Subnets, subnetZones), zone)
	if !typeGone && !zoneGone {
		t.Errorf("neither %s nor %s was dropped: %+v", failedType, zone, p.Placement)
	}
	for _, s := range append(p.Previous.InstanceTypes, p.Previous.Subnets...) {
		if !strings.Contains(p.Undo, s) {
			t.Errorf("Undo %q does not name %s", p.Undo, s)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

const slr = "arn:aws:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

// The default key policy: the account may administer the key.
const defaultPolicy = `{
  "Version": "2012-10-17",
  "Id": "key-default-1",
  "Statement": [
    {"Sid": "Enable IAM User Permissions", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
  ]
}`

func TestPlanKeyPolicy(t *testing.T) {
	// AWS's own example statements, under other Sids, with lists.
	documented := `{"Version":"2012-10-17","Statement":[
	  {"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":["` + slr + `"]},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"},
	  {"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{"AWS":["` + slr + `"]},"Action":["kms:CreateGrant"],"Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":true}}}]}`
	for _, tc := range []struct {
		name   string
		policy string
		added  []string
		err    bool
	}{
		{name: "default policy: both added", policy: defaultPolicy, added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "AWS's example under other Sids: already present", policy: documented},
		{name: "kms:* for the role covers both", policy: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*"}]}`},
		{name: "a single statement unwrapped", policy: `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}}`,
			added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "grants missing", policy: `{"Statement":[{"Sid":"AutoScalingServiceLinkedRoleUse","Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}]}`,
			added: []string{SidAutoScalingGrants}},
		{name: "our Sid without enough actions is replaced", policy: `{"Statement":[{"Sid":"AutoScalingServiceLinkedRoleUse","Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":["kms:Decrypt"],"Resource":"*"}]}`,
			added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "a conditioned use statement does not count", policy: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + slr + `"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"ec2.us-east-1.amazonaws.com"}}}]}`,
			added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "another account's role does not count", policy: strings.ReplaceAll(documented, "123456789012", "210987654321"),
			added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "a Deny does not count", policy: strings.ReplaceAll(documented, `"Allow"`, `"Deny"`),
			added: []string{SidAutoScalingUse, SidAutoScalingGrants}},
		{name: "not JSON", policy: `{"Statement":`, err: true},
		{name: "not an object", policy: `[]`, err: true},
		{name: "Statement a string", policy: `{"Statement":"x"}`, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanKeyPolicy([]byte(tc.policy), "aws", "123456789012")
			if tc.err {
				if err == nil {
					t.Fatalf("no error, plan %+v", p)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Change != (len(tc.added) > 0) || !reflect.DeepEqual(p.Added, tc.added) {
				t.Fatalf("plan: change %v, added %v, want %v (%s)", p.Change, p.Added, tc.added, p.Why)
			}
			if !p.Change {
				if string(p.Policy) != tc.policy || !strings.HasPrefix(p.Why, "Already present") {
					t.Errorf("unchanged plan rewrote the policy or says %q", p.Why)
				}
				return
			}
			// Idempotent: applying the result again changes nothing.
			again, err := PlanKeyPolicy(p.Policy, "aws", "123456789012")
			if err != nil || again.Change {
				t.Errorf("second application: change %v, err %v, added %v", again.Change, err, again.Added)
			}
			// Every other element and every statement of the input that is
			// not a replaced one of ours is kept as it was.
			in, out := decodePolicy(t, []byte(tc.policy)), decodePolicy(t, p.Policy)
			for k, v := range in {
				if k != "Statement" && !reflect.DeepEqual(out[k], v) {
					t.Errorf("%s = %v, was %v", k, out[k], v)
				}
			}
			for _, st := range statements(in) {
				if sid, _ := st["Sid"].(string); contains(p.Added, sid) {
					continue
				}
				if !slices.ContainsFunc(statements(out), func(o map[string]any) bool { return reflect.DeepEqual(o, st) }) {
					t.Errorf("statement %v was dropped", st)
				}
			}
			if n := len(statements(out)); n != len(statements(in))+len(p.Added)-replaced(in, p.Added) {
				t.Errorf("%d statements", n)
			}
		})
	}
}

// The statements are the ones infra/stack/fleet.go writes: same Sids,
// actions and condition.
func TestKeyStatements(t *testing.T) {
	got := string(mustIndent(autoScalingKeyStatements("aws-us-gov", "123456789012")))
	for _, want := range []string{
		`"Sid": "AutoScalingServiceLinkedRoleUse"`, `"Sid": "AutoScalingServiceLinkedRoleGrants"`,
		`"AWS": "arn:aws-us-gov:iam::123456789012:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"`,
		`"kms:Encrypt"`, `"kms:Decrypt"`, `"kms:ReEncrypt*"`, `"kms:GenerateDataKey*"`, `"kms:DescribeKey"`, `"kms:CreateGrant"`,
		`"kms:GrantIsForAWSResource": "true"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("statements lack %s:\n%s", want, got)
		}
	}
}

func TestCooldown(t *testing.T) {
	now := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		period time.Duration
		last   time.Time
		ok     bool
		wait   time.Duration
	}{
		{name: "never acted", ok: true},
		{name: "within the default period", last: now.Add(-10 * time.Minute), wait: 20 * time.Minute},
		{name: "exactly the period later", last: now.Add(-DefaultCooldown), ok: true},
		{name: "long ago", last: now.Add(-24 * time.Hour), ok: true},
		{name: "custom period", period: 5 * time.Minute, last: now.Add(-6 * time.Minute), ok: true},
		{name: "custom period, too soon", period: 5 * time.Minute, last: now.Add(-4 * time.Minute), wait: time.Minute},
		{name: "last in the future", last: now.Add(time.Minute), wait: DefaultCooldown + time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, wait := Cooldown{Period: tc.period}.Allow(tc.last, now)
			if ok != tc.ok || wait != tc.wait {
				t.Errorf("Allow = %v, %v; want %v, %v", ok, wait, tc.ok, tc.wait)
			}
		})
	}
}

func decodePolicy(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func statements(doc map[string]any) []map[string]any {
	var out []map[string]any
	switch s := doc["Statement"].(type) {
	case map[string]any:
		out = append(out, s)
	case []any:
		for _, e := range s {
			out = append(out, e.(map[string]any))
		}
	}
	return out
}

// replaced counts the statements of doc with an added Sid.
func replaced(doc map[string]any, added []string) int {
	n := 0
	for _, s := range statements(doc) {
		if sid, _ := s["Sid"].(string); contains(added, sid) {
			n++
		}
	}
	return n
}
