package stack

import (
	"fmt"
	"reflect"
	"testing"
)

func TestFilterRules(t *testing.T) {
	type rule struct {
		id, dir string
		n       int
		cidr    string
		src     *PortRange
		dst     *PortRange
	}
	p80, p8000 := &PortRange{From: 80, To: 80}, &PortRange{From: 8000, To: 8099}
	for name, tc := range map[string]struct {
		cfg  Config
		want []rule
	}{
		"all TCP, both families": {Config{}, []rule{
			{"MirrorFilterRuleIPv41Ingress", "ingress", 100, AnyIPv4, nil, nil},
			{"MirrorFilterRuleIPv41Egress", "egress", 100, AnyIPv4, nil, nil},
			{"MirrorFilterRuleIPv61Ingress", "ingress", 101, AnyIPv6, nil, nil},
			{"MirrorFilterRuleIPv61Egress", "egress", 101, AnyIPv6, nil, nil},
		}},
		"IPv4 only": {Config{SkipIPv6: true}, []rule{
			{"MirrorFilterRuleIPv41Ingress", "ingress", 100, AnyIPv4, nil, nil},
			{"MirrorFilterRuleIPv41Egress", "egress", 100, AnyIPv4, nil, nil},
		}},
		"two ranges": {Config{MirrorPorts: []PortRange{*p80, *p8000}}, []rule{
			{"MirrorFilterRuleIPv41Ingress", "ingress", 100, AnyIPv4, nil, p80},
			{"MirrorFilterRuleIPv41Egress", "egress", 100, AnyIPv4, p80, nil},
			{"MirrorFilterRuleIPv61Ingress", "ingress", 101, AnyIPv6, nil, p80},
			{"MirrorFilterRuleIPv61Egress", "egress", 101, AnyIPv6, p80, nil},
			{"MirrorFilterRuleIPv42Ingress", "ingress", 110, AnyIPv4, nil, p8000},
			{"MirrorFilterRuleIPv42Egress", "egress", 110, AnyIPv4, p8000, nil},
			{"MirrorFilterRuleIPv62Ingress", "ingress", 111, AnyIPv6, nil, p8000},
			{"MirrorFilterRuleIPv62Egress", "egress", 111, AnyIPv6, p8000, nil},
		}},
	} {
		var got []rule
		for _, r := range FilterRules(tc.cfg) {
			got = append(got, rule{r.ID, r.Direction, r.Number, r.CIDR, r.SourcePorts, r.DestinationPorts})
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, tc.want)
		}
	}
}

// A rule's id fixes its direction and number whatever the ports: a change
// of ports is an in-place modification that never makes two rules of one
// direction share a number, even for a moment.
func TestFilterRuleIDsFixNumbers(t *testing.T) {
	seen := map[string]FilterRule{}
	for _, c := range []Config{{}, {SkipIPv6: true}, {MirrorPorts: []PortRange{{From: 443, To: 443}}},
		{MirrorPorts: []PortRange{{From: 1, To: 1000}, {From: 8080, To: 8080}}}, {SkipIPv6: true, MirrorPorts: []PortRange{{From: 1, To: 1}, {From: 2, To: 2}, {From: 3, To: 3}, {From: 4, To: 4}, {From: 5, To: 5}}}} {
		numbers := map[string]bool{}
		for _, r := range FilterRules(c) {
			if prev, ok := seen[r.ID]; ok && (prev.Number != r.Number || prev.Direction != r.Direction || prev.CIDR != r.CIDR) {
				t.Errorf("%s is %s #%d %s in one configuration and %s #%d %s in another", r.ID, prev.Direction, prev.Number, prev.CIDR, r.Direction, r.Number, r.CIDR)
			}
			seen[r.ID] = r
			key := fmt.Sprint(r.Direction, r.Number)
			if numbers[key] {
				t.Errorf("%+v: two %s rules numbered %d", c, r.Direction, r.Number)
			}
			numbers[key] = true
		}
	}
}
