package inventory

import (
	"testing"

	elbv2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

func TestAskable(t *testing.T) {
	instance := elbv2types.TargetGroup{TargetType: elbv2types.TargetTypeEnumInstance}
	ipv4 := elbv2types.TargetGroup{TargetType: elbv2types.TargetTypeEnumIp}
	ipv4Explicit := elbv2types.TargetGroup{TargetType: elbv2types.TargetTypeEnumIp, IpAddressType: elbv2types.TargetGroupIpAddressTypeEnumIpv4}
	ipv6 := elbv2types.TargetGroup{TargetType: elbv2types.TargetTypeEnumIp, IpAddressType: elbv2types.TargetGroupIpAddressTypeEnumIpv6}
	for _, tc := range []struct {
		name string
		tg   elbv2types.TargetGroup
		id   string
		want bool
	}{
		{"instance id, instance group", instance, "i-0abc0000000000001", true},
		{"address, instance group", instance, "10.0.1.25", false},
		{"instance id, ip group", ipv4, "i-0abc0000000000001", false},
		{"IPv4, ip group without address type", ipv4, "10.0.1.25", true},
		{"IPv4, IPv4 group", ipv4Explicit, "10.0.1.25", true},
		{"IPv6, IPv4 group", ipv4, "2600:1f18:4a3:6901:8d2c:5e1f:3b7a:9c40", false},
		{"IPv6, IPv6 group", ipv6, "2600:1f18:4a3:6901:8d2c:5e1f:3b7a:9c40", true},
		{"IPv4, IPv6 group", ipv6, "10.0.1.25", false},
		{"IPv4-mapped IPv6 is IPv4", ipv4, "::ffff:10.0.1.25", true},
	} {
		if got := askable(tc.tg, tc.id); got != tc.want {
			t.Errorf("%s: askable(%s) = %v, want %v", tc.name, tc.id, got, tc.want)
		}
	}
}
