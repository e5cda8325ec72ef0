package stackconfig

import (
	"strings"
	"testing"
)

// ctx is a context getter over a map, as cdk.json would give it.
func ctx(m map[string]any) func(string) any {
	return func(k string) any { return m[k] }
}

func validContext() map[string]any {
	return map[string]any{
		"apitap:account":          "123456789012",
		"apitap:region":           "eu-west-1",
		"apitap:vpcId":            "vpc-0123456789abcdef0",
		"apitap:vpcCidr":          "10.0.0.0/16",
		"apitap:subnets":          map[string]any{"subnet-0aaaaaaaaaaaaaaa1": "eu-west-1a", "subnet-0bbbbbbbbbbbbbbb2": "eu-west-1b"},
		"apitap:loadBalancerArns": []any{"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/0123456789abcdef"},
		"apitap:kafkaBrokers":     []any{"b-1.example:9092"},
	}
}

func TestFromContextDefaults(t *testing.T) {
	c, err := FromContext(ctx(validContext()))
	if err != nil {
		t.Fatal(err)
	}
	if c.StackName != "apitap" || c.KafkaTopic != "akto.api.logs" || c.KafkaAuth != KafkaAuthNone ||
		c.MinCapacity != 2 || c.DesiredCapacity != 2 || c.MaxCapacity != 6 || c.SessionNumber != 1 ||
		c.ConflictPolicy != "skip" || c.ReconcileSchedule != "rate(5 minutes)" || c.LogRetentionDays != 30 ||
		c.AktoAccountID != "1000000" || len(c.InstanceTypes) < 3 || c.CreateTrail {
		t.Errorf("defaults: %+v", c)
	}
	if c.FilterRules() != 4 || c.SkipIPv6 {
		t.Errorf("all TCP over IPv4 and IPv6 needs 4 rules, got %d (SkipIPv6 %v)", c.FilterRules(), c.SkipIPv6)
	}
}

// Values given with `cdk -c key=value` arrive as strings.
func TestFromContextStrings(t *testing.T) {
	m := validContext()
	m["apitap:subnets"] = "subnet-0aaaaaaaaaaaaaaa1=eu-west-1a, subnet-0bbbbbbbbbbbbbbb2=eu-west-1b"
	m["apitap:kafkaBrokers"] = "b-1:9094,b-2:9094"
	m["apitap:kafkaTls"] = "true"
	m["apitap:minCapacity"] = "3"
	m["apitap:mirrorPorts"] = "80,8000-8099"
	m["apitap:loadBalancerTags"] = "team=shop,env=prod"
	m["apitap:snifferEnv"] = `{"SNIFFER_REDACT_HEADERS":"authorization,cookie"}`
	c, err := FromContext(ctx(m))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Subnets) != 2 || len(c.KafkaBrokers) != 2 || !c.KafkaTLS || c.MinCapacity != 3 || c.MaxCapacity != 6 ||
		len(c.MirrorPorts) != 2 || c.MirrorPorts[1] != (PortRange{8000, 8099}) || c.LoadBalancerTags["env"] != "prod" ||
		c.SnifferEnv["SNIFFER_REDACT_HEADERS"] != "authorization,cookie" {
		t.Errorf("parsed: %+v", c)
	}
	if c.FilterRules() != 8 {
		t.Errorf("2 port ranges need 8 rules, got %d", c.FilterRules())
	}
	m["apitap:mirrorIpv6"] = "false"
	m["apitap:mirrorPorts"] = "80,443,8080,8443,9000"
	if c, err = FromContext(ctx(m)); err != nil || !c.SkipIPv6 || c.FilterRules() != 10 {
		t.Errorf("5 IPv4-only port ranges: %d rules, %v", c.FilterRules(), err)
	}
}

func TestValidateErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		set  map[string]any
		want string
	}{
		"no vpc":                 {map[string]any{"apitap:vpcId": nil}, "apitap:vpcId"},
		"one zone":               {map[string]any{"apitap:subnets": map[string]any{"subnet-0aaaaaaaaaaaaaaa1": "eu-west-1a", "subnet-0bbbbbbbbbbbbbbb2": "eu-west-1a"}}, "at least two availability zones"},
		"zone of another region": {map[string]any{"apitap:subnets": map[string]any{"subnet-0aaaaaaaaaaaaaaa1": "us-east-1a", "subnet-0bbbbbbbbbbbbbbb2": "eu-west-1b"}}, "not an availability zone of region"},
		"no selection":           {map[string]any{"apitap:loadBalancerArns": nil}, "apitap:loadBalancerArns"},
		"lb elsewhere":           {map[string]any{"apitap:loadBalancerArns": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/0123"}, "is not in account"},
		"open cidr":              {map[string]any{"apitap:vpcCidr": "0.0.0.0/0"}, "whole internet"},
		"x86 type":               {map[string]any{"apitap:instanceTypes": "c7g.large,c5.large"}, `"c5.large" is not an arm64 Graviton`},
		"capacity":               {map[string]any{"apitap:minCapacity": 5, "apitap:maxCapacity": 3}, "minCapacity"},
		"12 rules":               {map[string]any{"apitap:mirrorPorts": "80,443,8080"}, "need 12 filter rules (an ingress and an egress rule for IPv4 and IPv6 each), a traffic mirror filter holds at most 10: at most 2 ranges fit"},
		"12 IPv4 rules":          {map[string]any{"apitap:mirrorPorts": "80,443,8080,8443,9000,9090", "apitap:mirrorIpv6": false}, "at most 5 ranges fit"},
		"ipv6 not a bool":        {map[string]any{"apitap:mirrorIpv6": "v6"}, "apitap:mirrorIpv6"},
		"overlap":                {map[string]any{"apitap:mirrorPorts": "8000-8100,8080"}, "overlaps"},
		"bad port":               {map[string]any{"apitap:mirrorPorts": "http"}, "is not a port"},
		"scram without secret":   {map[string]any{"apitap:kafkaAuth": "scram-sha-512", "apitap:kafkaTls": true}, "apitap:kafkaSecretArn"},
		"iam without tls":        {map[string]any{"apitap:kafkaAuth": "iam", "apitap:mskClusterArn": "arn:aws:kafka:eu-west-1:123456789012:cluster/c/0123abcd-0123-4567-89ab-0123456789ab-2"}, "apitap:kafkaTls"},
		"bad auth":               {map[string]any{"apitap:kafkaAuth": "kerberos"}, "kerberos"},
		"session number":         {map[string]any{"apitap:sessionNumber": 40000}, "apitap:sessionNumber"},
		"conflict":               {map[string]any{"apitap:conflictPolicy": "steal"}, "apitap:conflictPolicy"},
		"schedule":               {map[string]any{"apitap:reconcileSchedule": "every 5 minutes"}, "apitap:reconcileSchedule"},
		"retention":              {map[string]any{"apitap:logRetentionDays": 31}, "apitap:logRetentionDays"},
		"email":                  {map[string]any{"apitap:notificationEmail": "ops"}, "apitap:notificationEmail"},
		"stack name":             {map[string]any{"apitap:stackName": "my_stack"}, "apitap:stackName"},
		"long stack name":        {map[string]any{"apitap:stackName": strings.Repeat("a", 49)}, "apitap:stackName"},
		"reserved env":           {map[string]any{"apitap:snifferEnv": map[string]any{"SNIFFER_KAFKA": "x:1"}}, "set by the stack"},
		"injected env":           {map[string]any{"apitap:snifferEnv": map[string]any{"SNIFFER_X": "a\nrm -rf /"}}, "newline"},
		"not a bool":             {map[string]any{"apitap:createTrail": "yes please"}, "true or false"},
		"broker":                 {map[string]any{"apitap:kafkaBrokers": "broker"}, "is not host:port"},
	} {
		t.Run(name, func(t *testing.T) {
			m := validContext()
			for k, v := range tc.set {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			_, err := FromContext(ctx(m))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestNames(t *testing.T) {
	n := NamesFor(Config{StackName: "apitap", Account: "123456789012", Region: "eu-west-1"})
	if n.LoadBalancer != "apitap-mirror" || n.TargetGroup != "apitap-sniffers" || n.Functions["reconcile"] != "apitap-reconcile" ||
		n.RolePath != "/apitap/apitap/" || n.TrailBucket != "apitap-trail-123456789012-eu-west-1" {
		t.Errorf("%+v", n)
	}
	long := NamesFor(Config{StackName: strings.Repeat("abcdefgh", 6), Account: "123456789012", Region: "ap-southeast-2"})
	for _, name := range []string{long.LoadBalancer, long.TargetGroup} {
		if len(name) > 32 || strings.HasPrefix(name, "-") || strings.Contains(name, "--") {
			t.Errorf("ELB name %q", name)
		}
	}
	if len(long.TrailBucket) > 63 || long.TrailBucket != strings.ToLower(long.TrailBucket) {
		t.Errorf("bucket name %q", long.TrailBucket)
	}
	if len(long.Functions["instance-events"]) > 64 {
		t.Errorf("function name %q", long.Functions["instance-events"])
	}
}
