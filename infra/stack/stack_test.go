package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/apitap/apitap/infra/policy"
	"github.com/apitap/apitap/infra/stack"
)

// Two configurations cover every option: "full" (MSK IAM, trail, e-mail,
// mirror ports) and "scram" (SASL/SCRAM, everything else default). Each
// is synthesized once per test binary (jsii synth is slow) and shared.
const (
	mskARN    = "arn:aws:kafka:eu-west-1:123456789012:cluster/apitap-msk/0123abcd-0123-4567-89ab-0123456789ab-2"
	secretARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_apitap-AbCdEf"
	vpcCIDR   = "10.20.0.0/16"
	region    = "eu-west-1"
	account   = "123456789012"
)

func config(variant string) stack.Config {
	c := stack.Config{
		StackName: "apitap-test",
		Account:   account, Region: region,
		VPCID:    "vpc-0123456789abcdef0",
		VPCCIDRs: []string{vpcCIDR},
		Subnets: map[string]string{
			"subnet-0aaaaaaaaaaaaaaa1": "eu-west-1a", "subnet-0bbbbbbbbbbbbbbb2": "eu-west-1b", "subnet-0ccccccccccccccc3": "eu-west-1c",
		},
		LoadBalancerARNs: []string{"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/shop/0123456789abcdef"},
		LoadBalancerTags: map[string]string{"apitap": "mirror"},
		KafkaBrokers:     []string{"b-1.msk.example:9098", "b-2.msk.example:9098"},
		KafkaTLS:         true,
		InstanceTypes:    []string{"c7g.large", "c6g.large", "m7g.large"},
		MinCapacity:      2, MaxCapacity: 4,
		AktoAccountID: "1000042",
		SnifferEnv:    map[string]string{"SNIFFER_REDACT_HEADERS": "authorization,cookie"},
	}
	switch variant {
	case "full":
		c.KafkaAuth = stack.KafkaAuthIAM
		c.MSKClusterARN = mskARN
		c.CreateTrail = true
		c.NotificationEmail = "ops@example.com"
		c.MirrorPorts = []stack.PortRange{{From: 80, To: 80}, {From: 8000, To: 8099}}
		c.SessionNumber = 7
		c.ConflictPolicy = "coexist"
		c.ReconcileSchedule = "rate(10 minutes)"
		c.LogRetentionDays = 90
		c.ReconcileReservedConcurrency = 1
		c.Remediate = []string{"capacity", "kms", "sessions", "sniffers"}
		// Volume control: every key, so the contract test feeds them all
		// through the sniffer's own flag parser.
		half := 0.5
		c.SampleRate = &half
		c.IncludeHosts, c.ExcludeHosts = []string{"*.shop.example"}, []string{"health.shop.example"}
		c.IncludePaths, c.ExcludePaths = []string{"/api/*"}, []string{"/api/internal/*"}
		c.Methods, c.ExcludeStatus = []string{"GET", "POST"}, []string{"5xx", "404"}
		c.DropBodyContentTypes = []string{"image/*", "application/pdf"}
		c.VNIRateLimit, c.VNIRateBurst = 500, 1000
	case "scram":
		c.KafkaAuth = stack.KafkaAuthSCRAMSHA512
		c.KafkaSecretARN = secretARN
		c.KafkaSecretKMSKeyARN = "arn:aws:kms:eu-west-1:123456789012:key/0123abcd-0123-4567-89ab-0123456789ab"
		c.SkipIPv6 = true
	}
	return c.WithDefaults()
}

type synthesized struct {
	variant string
	cfg     stack.Config
	st      *stack.Stack
	tmpl    assertions.Template
	json    []byte
	model   tmplModel
}

type tmplModel struct {
	Resources map[string]struct {
		Type       string         `json:"Type"`
		Properties map[string]any `json:"Properties"`
		DependsOn  any            `json:"DependsOn"`
		Metadata   map[string]any `json:"Metadata"`
	} `json:"Resources"`
	Outputs    map[string]any `json:"Outputs"`
	Parameters map[string]any `json:"Parameters"`
}

var cache = map[string]*synthesized{}

// synth builds the variant's stack in its own app, with cdk-nag applied,
// and placeholder assets (the template does not depend on their content).
func synth(t *testing.T, variant string) *synthesized {
	t.Helper()
	if s, ok := cache[variant]; ok {
		return s
	}
	dir, err := os.MkdirTemp("", "apitap-assets-")
	if err != nil {
		t.Fatal(err)
	}
	assets := stack.Assets{
		SnifferBinary: filepath.Join(dir, "sniffer"),
		SnifferUnit:   "../../sniffer/apitap-sniffer.service",
		FunctionsDir:  filepath.Join(dir, "functions"),
	}
	must(t, os.WriteFile(assets.SnifferBinary, []byte("placeholder"), 0o755))
	for _, k := range stack.FunctionKeys {
		must(t, os.MkdirAll(filepath.Join(assets.FunctionsDir, k), 0o755))
		must(t, os.WriteFile(filepath.Join(assets.FunctionsDir, k, "bootstrap"), []byte(k), 0o755))
	}
	out, err := os.MkdirTemp("", "apitap-cdkout-")
	if err != nil {
		t.Fatal(err)
	}
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(out), AnalyticsReporting: jsii.Bool(false)})
	cfg := config(variant)
	st, err := stack.New(app, stack.Props{Config: cfg, Assets: assets})
	if err != nil {
		t.Fatal(err)
	}
	stack.Check(app)
	tmpl := assertions.Template_FromStack(st.Stack, nil)
	b, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	s := &synthesized{variant: variant, cfg: cfg, st: st, tmpl: tmpl, json: b}
	must(t, json.Unmarshal(b, &s.model))
	cache[variant] = s
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// has asserts that a resource of the type has the properties (a deep
// partial match, assertions.Match semantics).
func has(t *testing.T, s *synthesized, typ string, props map[string]any) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s with %v: %v", typ, props, r)
		}
	}()
	s.tmpl.HasResourceProperties(jsii.String(typ), props)
}

func count(t *testing.T, s *synthesized, typ string, n int) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: %v", typ, r)
		}
	}()
	s.tmpl.ResourceCountIs(jsii.String(typ), jsii.Number(float64(n)))
}

func (s *synthesized) ofType(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.model.Resources {
		if r.Type == typ {
			out[id] = r.Properties
		}
	}
	return out
}

func (s *synthesized) logicalID(typ string) string {
	for id := range s.ofType(typ) {
		return id
	}
	return ""
}

func dependsOn(s *synthesized, id string) []string {
	switch d := s.model.Resources[id].DependsOn.(type) {
	case string:
		return []string{d}
	case []any:
		var out []string
		for _, x := range d {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestLoadBalancer(t *testing.T) {
	s := synth(t, "full")
	has(t, s, "AWS::ElasticLoadBalancingV2::LoadBalancer", map[string]any{
		"Type": "network", "Scheme": "internal", "Name": "apitap-test-mirror",
		"Subnets": []any{"subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"},
		"LoadBalancerAttributes": assertions.Match_ArrayWith(&[]any{
			map[string]any{"Key": "load_balancing.cross_zone.enabled", "Value": "true"},
		}),
	})
	has(t, s, "AWS::ElasticLoadBalancingV2::Listener", map[string]any{"Port": 4789, "Protocol": "UDP"})
	has(t, s, "AWS::ElasticLoadBalancingV2::TargetGroup", map[string]any{
		"Protocol": "UDP", "Port": 4789, "TargetType": "instance",
		"HealthCheckProtocol": "TCP", "HealthCheckPort": "8081",
		"TargetGroupAttributes": assertions.Match_ArrayWith(&[]any{
			map[string]any{"Key": "stickiness.enabled", "Value": "true"},
			map[string]any{"Key": "stickiness.type", "Value": "source_ip"},
		}),
	})
	for _, tg := range s.ofType("AWS::ElasticLoadBalancingV2::TargetGroup") {
		var delay int
		for _, a := range tg["TargetGroupAttributes"].([]any) {
			if kv := a.(map[string]any); kv["Key"] == "deregistration_delay.timeout_seconds" {
				fmt.Sscan(kv["Value"].(string), &delay)
			}
		}
		if delay < 120 {
			t.Errorf("deregistration delay %d s, want >= 120", delay)
		}
	}
	// No security group on the NLB (one cannot be added later without
	// replacing it), and the CDK flag that would add one by default is
	// pinned off in cdk.json, so a CDK upgrade cannot change it.
	for id, lb := range s.ofType("AWS::ElasticLoadBalancingV2::LoadBalancer") {
		if sg, ok := lb["SecurityGroups"]; ok {
			t.Errorf("%s has security groups %v", id, jsonOf(sg))
		}
	}
	var cdkJSON struct {
		Context map[string]any `json:"context"`
	}
	raw, err := os.ReadFile("../../cdk.json")
	must(t, err)
	must(t, json.Unmarshal(raw, &cdkJSON))
	const flag = "@aws-cdk/aws-elasticloadbalancingv2:networkLoadBalancerWithSecurityGroupByDefault"
	if v, ok := cdkJSON.Context[flag]; !ok || v != false {
		t.Errorf("cdk.json: %s is %v, want false", flag, v)
	}
}

func TestLaunchTemplate(t *testing.T) {
	s := synth(t, "full")
	key := s.logicalID("AWS::KMS::Key")
	keys := s.ofType("AWS::KMS::Key")
	var volumeKey string
	for id, k := range keys {
		if strings.Contains(k["Description"].(string), "EBS") {
			volumeKey = id
		}
	}
	_ = key
	has(t, s, "AWS::EC2::LaunchTemplate", map[string]any{
		"LaunchTemplateData": map[string]any{
			"MetadataOptions": map[string]any{"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
			"BlockDeviceMappings": []any{map[string]any{"DeviceName": "/dev/xvda", "Ebs": map[string]any{
				"Encrypted": true, "VolumeType": "gp3", "KmsKeyId": map[string]any{"Fn::GetAtt": []any{volumeKey, "Arn"}},
			}}},
			"NetworkInterfaces": []any{assertions.Match_ObjectLike(&map[string]any{"AssociatePublicIpAddress": false})},
		},
	})
	// The AMI is a CloudFormation parameter resolved from SSM at deploy
	// time: Amazon Linux 2023 for arm64.
	var amiParam string
	for id, p := range s.model.Parameters {
		if d, _ := p.(map[string]any)["Default"].(string); strings.Contains(d, "al2023") {
			if !strings.HasSuffix(d, "-arm64") || p.(map[string]any)["Type"] != "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>" {
				t.Errorf("AMI parameter %v", p)
			}
			amiParam = id
		}
	}
	has(t, s, "AWS::EC2::LaunchTemplate", map[string]any{"LaunchTemplateData": map[string]any{"ImageId": map[string]any{"Ref": amiParam}}})
}

func TestVolumeKeyPolicy(t *testing.T) {
	s := synth(t, "full")
	slr := "arn:aws:iam::" + account + ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
	found := 0
	for id, k := range s.ofType("AWS::KMS::Key") {
		if !strings.Contains(k["Description"].(string), "EBS") {
			continue
		}
		if k["EnableKeyRotation"] != true {
			t.Errorf("%s: no key rotation", id)
		}
		for _, st := range k["KeyPolicy"].(map[string]any)["Statement"].([]any) {
			st := st.(map[string]any)
			if jsonOf(st["Principal"]) != jsonOf(map[string]any{"AWS": slr}) {
				continue
			}
			acts := actionsOf(st)
			sort.Strings(acts)
			switch jsonOf(acts) {
			case `["kms:Decrypt","kms:DescribeKey","kms:Encrypt","kms:GenerateDataKey*","kms:ReEncrypt*"]`:
				found++
			case `["kms:CreateGrant"]`:
				if jsonOf(st["Condition"]) == `{"Bool":{"kms:GrantIsForAWSResource":"true"}}` {
					found++
				}
			}
		}
	}
	if found != 2 {
		t.Errorf("the volume key's policy lacks the Auto Scaling service-linked role's statements (%d of 2)", found)
	}
}

func TestAutoScalingGroup(t *testing.T) {
	s := synth(t, "full")
	var overrides []any
	for _, it := range s.cfg.InstanceTypes {
		overrides = append(overrides, map[string]any{"InstanceType": it})
	}
	has(t, s, "AWS::AutoScaling::AutoScalingGroup", map[string]any{
		"AutoScalingGroupName": "apitap-test-sniffers",
		"MinSize":              "2", "MaxSize": "4",
		"HealthCheckType":   "ELB",
		"VPCZoneIdentifier": []any{"subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"},
		"TargetGroupARNs":   []any{map[string]any{"Ref": s.logicalID("AWS::ElasticLoadBalancingV2::TargetGroup")}},
		"MixedInstancesPolicy": map[string]any{
			"LaunchTemplate":        map[string]any{"Overrides": overrides},
			"InstancesDistribution": map[string]any{"OnDemandPercentageAboveBaseCapacity": 100},
		},
		"NotificationConfigurations": assertions.Match_AnyValue(),
	})
	// Target tracking on CPU scales out only; scale-in is a slow step.
	has(t, s, "AWS::AutoScaling::ScalingPolicy", map[string]any{
		"PolicyType": "TargetTrackingScaling",
		"TargetTrackingConfiguration": map[string]any{
			"PredefinedMetricSpecification": map[string]any{"PredefinedMetricType": "ASGAverageCPUUtilization"},
			"TargetValue":                   stack.CPUTargetPercent, "DisableScaleIn": true,
		},
	})
	has(t, s, "AWS::AutoScaling::ScalingPolicy", map[string]any{
		"PolicyType":      "StepScaling",
		"StepAdjustments": []any{map[string]any{"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}},
	})
	has(t, s, "AWS::CloudWatch::Alarm", map[string]any{
		"MetricName": "CPUUtilization", "Threshold": stack.CPUScaleInPercent,
		"EvaluationPeriods": stack.ScaleInPeriods, "ComparisonOperator": "LessThanOrEqualToThreshold",
	})
}

func TestSecurityGroup(t *testing.T) {
	s := synth(t, "full")
	sgs := s.ofType("AWS::EC2::SecurityGroup")
	if len(sgs) != 1 {
		t.Fatalf("%d security groups", len(sgs))
	}
	for _, sg := range sgs {
		var got []string
		for _, r := range sg["SecurityGroupIngress"].([]any) {
			r := r.(map[string]any)
			got = append(got, fmt.Sprintf("%v %v-%v %v", r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIp"]))
		}
		sort.Strings(got)
		want := []string{"tcp 8081-8081 " + vpcCIDR, "udp 4789-4789 " + vpcCIDR}
		if jsonOf(got) != jsonOf(want) {
			t.Errorf("ingress %v, want %v", got, want)
		}
		for _, r := range sg["SecurityGroupEgress"].([]any) {
			if r := r.(map[string]any); r["IpProtocol"] == "-1" {
				t.Errorf("all-traffic egress %v", r)
			}
		}
	}
}

func userData(t *testing.T, s *synthesized) string {
	t.Helper()
	for _, lt := range s.ofType("AWS::EC2::LaunchTemplate") {
		b64 := lt["LaunchTemplateData"].(map[string]any)["UserData"].(map[string]any)["Fn::Base64"]
		switch v := b64.(type) {
		case string:
			return v
		case map[string]any:
			var b strings.Builder
			for _, part := range v["Fn::Join"].([]any)[1].([]any) {
				if str, ok := part.(string); ok {
					b.WriteString(str)
				} else {
					b.WriteString("TOKEN")
				}
			}
			return b.String()
		}
	}
	t.Fatal("no user data")
	return ""
}

func TestUserData(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		ud := userData(t, s)
		for _, want := range []string{
			"net.core.rmem_max=67108864", "sysctl -q -p /etc/sysctl.d/90-apitap.conf",
			"retry aws s3 cp --only-show-errors --region eu-west-1 's3://", "install -m 0755 /tmp/apitap-sniffer /usr/local/bin/apitap-sniffer",
			"install -m 0600 /dev/null /etc/apitap/sniffer.env",
			"SNIFFER_KAFKA=b-1.msk.example:9098,b-2.msk.example:9098", "SNIFFER_TOPIC=akto.api.logs",
			"SNIFFER_KAFKA_TLS=true", "SNIFFER_ACCOUNT_ID=1000042", "SNIFFER_HEALTH_ADDR=:8081",
			"SNIFFER_REDACT_HEADERS=authorization,cookie", "AWS_REGION=eu-west-1",
			"ExecStart=/usr/local/bin/apitap-sniffer", // the repository's unit
			"systemctl enable --now apitap-sniffer.service apitap-sniffer-metrics.timer apitap-logrotate.timer",
			"StandardOutput=append:/var/log/apitap/sniffer.log", `"log_group_name": "/apitap/apitap-test/sniffers"`,
			"retry dnf install -y -q amazon-cloudwatch-agent", "http://127.0.0.1:9090/readyz", "signal SUCCESS",
			"region=eu-west-1 stack=apitap-test resource=SnifferGroup",
			"--namespace apitap/sniffer --metric-name Drops",
		} {
			if !strings.Contains(ud, want) {
				t.Errorf("%s: user data lacks %q", variant, want)
			}
		}
		switch variant {
		case "full":
			if !strings.Contains(ud, "SNIFFER_KAFKA_SASL=AWS_MSK_IAM") || strings.Contains(ud, "secretsmanager") {
				t.Errorf("MSK IAM user data:\n%s", ud)
			}
		case "scram":
			if !strings.Contains(ud, "SNIFFER_KAFKA_SASL=SCRAM-SHA-512") || !strings.Contains(ud, "aws secretsmanager get-secret-value --region eu-west-1 --secret-id '"+secretARN+"'") ||
				!strings.Contains(ud, "retry secret") {
				t.Errorf("SCRAM user data:\n%s", ud)
			}
		}
		// The script parses.
		cmd := exec.Command("bash", "-n")
		cmd.Stdin = strings.NewReader(ud)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: bash -n: %v\n%s", variant, err, out)
		}
	}
}

// policyStatements are the statements of the roles' policies, by role
// logical id.
func policyStatements(s *synthesized) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, p := range s.ofType("AWS::IAM::Policy") {
		for _, role := range p["Roles"].([]any) {
			id := role.(map[string]any)["Ref"].(string)
			for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				out[id] = append(out[id], st.(map[string]any))
			}
		}
	}
	return out
}

func actionsOf(st map[string]any) []string {
	switch a := st["Action"].(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

func roleID(s *synthesized, prefix string) string {
	for id := range s.ofType("AWS::IAM::Role") {
		if strings.HasPrefix(id, prefix) {
			return id
		}
	}
	return ""
}

func TestInstanceRole(t *testing.T) {
	for variant, want := range map[string][]string{
		"full": {"cloudformation:SignalResource", "cloudwatch:PutMetricData", "kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:DescribeTopic", "kafka-cluster:WriteData",
			"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents", "s3:GetObject", "ssm:UpdateInstanceInformation",
			"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"},
		"scram": {"cloudformation:SignalResource", "cloudwatch:PutMetricData", "kms:Decrypt", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents",
			"s3:GetObject", "secretsmanager:GetSecretValue", "ssm:UpdateInstanceInformation",
			"ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"},
	} {
		s := synth(t, variant)
		var got []string
		for _, st := range policyStatements(s)[roleID(s, "SnifferRole")] {
			got = append(got, actionsOf(st)...)
			switch jsonOf(st["Action"]) {
			case `"cloudwatch:PutMetricData"`:
				if !strings.Contains(jsonOf(st["Condition"]), `"cloudwatch:namespace":"apitap/sniffer"`) {
					t.Errorf("PutMetricData without namespace condition: %v", st)
				}
			case `"cloudformation:SignalResource"`:
				// This stack only, by its id.
				if jsonOf(st["Resource"]) != `{"Ref":"AWS::StackId"}` {
					t.Errorf("SignalResource on %v", st["Resource"])
				}
			case `["logs:CreateLogStream","logs:DescribeLogStreams","logs:PutLogEvents"]`:
				if r := jsonOf(st["Resource"]); !strings.Contains(r, "SnifferLogs") {
					t.Errorf("log shipping on %s", r)
				}
			case `"s3:GetObject"`:
				if strings.Contains(jsonOf(st["Resource"]), `/*"`) {
					t.Errorf("s3:GetObject beyond the sniffer binary: %v", st["Resource"])
				}
			}
		}
		sort.Strings(got)
		if jsonOf(got) != jsonOf(want) {
			t.Errorf("%s: sniffer role actions %v, want %v", variant, got, want)
		}
	}
	s := synth(t, "full")
	has(t, s, "AWS::IAM::Policy", map[string]any{"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{
		assertions.Match_ObjectLike(&map[string]any{"Action": []any{"kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"},
			"Resource": "arn:aws:kafka:eu-west-1:123456789012:topic/apitap-msk/0123abcd-0123-4567-89ab-0123456789ab-2/akto.api.logs"}),
	})}})
}

func TestMirrorTargetAndFilter(t *testing.T) {
	s := synth(t, "full")
	nlb := s.logicalID("AWS::ElasticLoadBalancingV2::LoadBalancer")
	has(t, s, "AWS::EC2::TrafficMirrorTarget", map[string]any{"NetworkLoadBalancerArn": map[string]any{"Ref": nlb}})
	target := s.logicalID("AWS::EC2::TrafficMirrorTarget")
	if d := dependsOn(s, target); len(d) == 0 || !strings.Contains(jsonOf(d), "Vxlan") {
		t.Errorf("the mirror target must depend on the UDP listener, depends on %v", d)
	}
	count(t, s, "AWS::EC2::TrafficMirrorFilter", 1)
	count(t, s, "AWS::EC2::TrafficMirrorFilterRule", 8) // 2 port ranges x 2 directions x IPv4 and IPv6
	for _, cidr := range []string{"0.0.0.0/0", "::/0"} {
		for _, dir := range []string{"ingress", "egress"} {
			ports := "DestinationPortRange"
			if dir == "egress" {
				ports = "SourcePortRange"
			}
			has(t, s, "AWS::EC2::TrafficMirrorFilterRule", map[string]any{"TrafficDirection": dir, "SourceCidrBlock": cidr, "DestinationCidrBlock": cidr,
				ports: map[string]any{"FromPort": 80, "ToPort": 80}})
		}
	}
	has(t, s, "AWS::EC2::TrafficMirrorFilterRule", map[string]any{"TrafficDirection": "ingress", "Protocol": 6, "RuleAction": "accept",
		"DestinationPortRange": map[string]any{"FromPort": 8000, "ToPort": 8099}})
	has(t, s, "AWS::EC2::TrafficMirrorFilterRule", map[string]any{"TrafficDirection": "egress", "Protocol": 6, "RuleAction": "accept",
		"SourcePortRange": map[string]any{"FromPort": 8000, "ToPort": 8099}})

	all := synth(t, "scram") // all TCP, IPv4 only
	count(t, all, "AWS::EC2::TrafficMirrorFilterRule", 2)
	for _, r := range all.ofType("AWS::EC2::TrafficMirrorFilterRule") {
		if r["Protocol"] != float64(6) || r["SourcePortRange"] != nil || r["DestinationPortRange"] != nil || r["DestinationCidrBlock"] != "0.0.0.0/0" {
			t.Errorf("all-TCP rule %v", r)
		}
	}
}

func TestFunctions(t *testing.T) {
	s := synth(t, "full")
	fns := s.ofType("AWS::Lambda::Function")
	if len(fns) != 7 {
		t.Fatalf("%d functions", len(fns))
	}
	roles := map[string]bool{}
	for id, f := range fns {
		if f["Runtime"] != "provided.al2023" || jsonOf(f["Architectures"]) != `["arm64"]` || f["Handler"] != "bootstrap" {
			t.Errorf("%s: runtime %v %v %v", id, f["Runtime"], f["Architectures"], f["Handler"])
		}
		role := jsonOf(f["Role"])
		if roles[role] {
			t.Errorf("%s shares its role", id)
		}
		roles[role] = true
		env := f["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, k := range []string{"APITAP_STACK_NAME", "APITAP_MIRROR_TARGET_ID", "APITAP_MIRROR_FILTER_ID", "APITAP_VPC_ID",
			"APITAP_LB_ARNS", "APITAP_LB_TAGS", "APITAP_SESSION_NUMBER", "APITAP_CONFLICT_POLICY", "APITAP_ACCOUNT_ID"} {
			if _, ok := env[k]; !ok {
				t.Errorf("%s: no %s", id, k)
			}
		}
		if env["APITAP_STACK_NAME"] != "apitap-test" || env["APITAP_SESSION_NUMBER"] != "7" || env["APITAP_CONFLICT_POLICY"] != "coexist" ||
			env["APITAP_LB_TAGS"] != "apitap=mirror" {
			t.Errorf("%s: environment %v", id, env)
		}
		reserved, hasReserved := f["ReservedConcurrentExecutions"]
		if (f["FunctionName"] == "apitap-test-reconcile") != (hasReserved && reserved == float64(1)) {
			t.Errorf("%s: reserved concurrency %v", f["FunctionName"], reserved)
		}
		if f["FunctionName"] == "apitap-test-teardown" && f["Timeout"] != float64(stack.TeardownTimeoutS) {
			t.Errorf("teardown timeout %v", f["Timeout"])
		}
		if lc, _ := f["LoggingConfig"].(map[string]any); lc["LogGroup"] == nil {
			t.Errorf("%s: no log group", id)
		}
	}
	// The default reserves nothing: any reservation can fail a deploy in
	// an account with a low concurrency quota.
	for id, f := range synth(t, "scram").ofType("AWS::Lambda::Function") {
		if r, ok := f["ReservedConcurrentExecutions"]; ok {
			t.Errorf("default stack: %s reserves %v", id, r)
		}
	}
	for _, lg := range s.ofType("AWS::Logs::LogGroup") {
		if lg["RetentionInDays"] != float64(90) {
			t.Errorf("log group retention %v", lg["RetentionInDays"])
		}
	}
	count(t, s, "AWS::Logs::LogGroup", 8) // the seven functions' and the sniffers'
	has(t, s, "AWS::Logs::LogGroup", map[string]any{"LogGroupName": "/apitap/apitap-test/sniffers", "RetentionInDays": 90})
	queue := s.logicalID("AWS::SQS::Queue")
	count(t, s, "AWS::Lambda::EventInvokeConfig", 7)
	for _, c := range s.ofType("AWS::Lambda::EventInvokeConfig") {
		// The commands are invoked by people, synchronously: no retries.
		if strings.Contains(jsonOf(c["FunctionName"]), "Connections") && c["MaximumRetryAttempts"] != float64(0) {
			t.Errorf("connections retries: %v", jsonOf(c))
		}
	}
	has(t, s, "AWS::Lambda::EventInvokeConfig", map[string]any{
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{"Destination": map[string]any{"Fn::GetAtt": []any{queue, "Arn"}}}},
	})
}

// The functions' roles: no wildcard actions, no ec2:*; sessions created
// only with this stack's tag and deleted only when they carry it.
func TestFunctionRoles(t *testing.T) {
	s := synth(t, "full")
	stmts := policyStatements(s)
	for _, prefix := range []string{"InstanceEventsRole", "StackEventsRole", "ReconcileRole", "TeardownRole"} {
		id := roleID(s, prefix)
		if id == "" {
			t.Fatalf("no role %s", prefix)
		}
		var sawDelete, sawCreateTags bool
		for _, st := range stmts[id] {
			for _, a := range actionsOf(st) {
				if strings.Contains(a, "*") {
					t.Errorf("%s: wildcard action %s", prefix, a)
				}
				switch a {
				case "ec2:DeleteTrafficMirrorSession":
					sawDelete = true
					if !strings.Contains(jsonOf(st["Condition"]), `{"StringEquals":{"aws:ResourceTag/apitap:stack":"apitap-test"}}`) {
						t.Errorf("%s: delete without the stack tag condition: %v", prefix, st)
					}
				case "ec2:CreateTags":
					sawCreateTags = true
					if jsonOf(st["Resource"]) != `"arn:aws:ec2:eu-west-1:123456789012:traffic-mirror-session/*"` ||
						!strings.Contains(jsonOf(st["Condition"]), `"ec2:CreateAction":"CreateTrafficMirrorSession"`) {
						t.Errorf("%s: CreateTags beyond session creation: %v", prefix, st)
					}
				case "ec2:CreateTrafficMirrorSession":
					if strings.Contains(jsonOf(st["Resource"]), "traffic-mirror-session") &&
						!strings.Contains(jsonOf(st["Condition"]), `"aws:RequestTag/apitap:stack":"apitap-test"`) {
						t.Errorf("%s: session creation without the stack tag: %v", prefix, st)
					}
				}
			}
		}
		if !sawDelete || (prefix != "TeardownRole" && !sawCreateTags) {
			t.Errorf("%s: delete %v, create tags %v", prefix, sawDelete, sawCreateTags)
		}
	}
}

func TestEventRules(t *testing.T) {
	s := synth(t, "full")
	count(t, s, "AWS::Events::Rule", 6)
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-ecs-tasks", "EventPattern": map[string]any{
		"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Task State Change"}, "detail": map[string]any{"lastStatus": []any{"RUNNING", "STOPPED"}}},
		"Targets": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"Arn": map[string]any{"Fn::GetAtt": assertions.Match_ArrayWith(&[]any{assertions.Match_StringLikeRegexp(jsii.String("^InstanceEvents"))})}})})})
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-ec2-state", "EventPattern": map[string]any{
		"source": []any{"aws.ec2"}, "detail-type": []any{"EC2 Instance State-change Notification"}}})
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-autoscaling", "EventPattern": map[string]any{
		"source": []any{"aws.autoscaling"}, "detail-type": assertions.Match_ArrayWith(&[]any{"EC2 Instance Launch Successful", "EC2 Instance Terminate Successful"})}})
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-targets", "EventPattern": map[string]any{
		"detail-type": []any{"AWS API Call via CloudTrail"},
		"detail": map[string]any{"eventSource": []any{"elasticloadbalancing.amazonaws.com"},
			"eventName": []any{"RegisterTargets", "DeregisterTargets", "RegisterInstancesWithLoadBalancer", "DeregisterInstancesFromLoadBalancer"}}}})
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-stack", "EventPattern": map[string]any{
		"source": []any{"aws.cloudformation"}, "detail": map[string]any{"stack-id": []any{map[string]any{"Ref": "AWS::StackId"}}}}})
	has(t, s, "AWS::Events::Rule", map[string]any{"Name": "apitap-test-reconcile", "ScheduleExpression": "rate(10 minutes)"})
}

// On deletion the rules and the session-creating functions go first, then
// the teardown (it depends on the mirror target and filter, so it runs
// before they are deleted).
func TestTeardownOrder(t *testing.T) {
	s := synth(t, "full")
	cr := s.logicalID("Custom::ApitapTeardown")
	if cr == "" {
		t.Fatal("no teardown custom resource")
	}
	props := jsonOf(s.model.Resources[cr].Properties)
	for _, ref := range []string{s.logicalID("AWS::EC2::TrafficMirrorTarget"), s.logicalID("AWS::EC2::TrafficMirrorFilter")} {
		if !strings.Contains(props, `{"Ref":"`+ref+`"}`) {
			t.Errorf("teardown does not depend on %s: %s", ref, props)
		}
	}
	if !strings.Contains(props, "TeardownFunction") {
		t.Errorf("service token: %s", props)
	}
	// CloudFormation waits ServiceTimeout seconds for the answer (at most
	// 15 minutes here), and the function answers before its own timeout,
	// which ends before that.
	timeout, _ := strconv.ParseFloat(fmt.Sprint(s.model.Resources[cr].Properties["ServiceTimeout"]), 64)
	fnTimeout := s.ofType("AWS::Lambda::Function")[strings.TrimSuffix(strings.TrimPrefix(jsonOf(s.model.Resources[cr].Properties["ServiceToken"]), `{"Fn::GetAtt":["`), `","Arn"]}`)]["Timeout"]
	if timeout == 0 || timeout > 900 || fnTimeout == nil || fnTimeout.(float64) >= timeout {
		t.Errorf("teardown: ServiceTimeout %v, function timeout %v", s.model.Resources[cr].Properties["ServiceTimeout"], fnTimeout)
	}
	for id, r := range s.model.Resources {
		isCreator := r.Type == "AWS::Lambda::Function" && !strings.HasPrefix(id, "TeardownFunction")
		if r.Type == "AWS::Events::Rule" || isCreator {
			if !strings.Contains(jsonOf(dependsOn(s, id)), `"`+cr+`"`) {
				t.Errorf("%s does not depend on the teardown", id)
			}
		}
	}
}

func TestNotificationsAlarmsDashboard(t *testing.T) {
	s := synth(t, "full")
	has(t, s, "AWS::SNS::Topic", map[string]any{"TopicName": "apitap-test-notifications", "KmsMasterKeyId": assertions.Match_AnyValue()})
	has(t, s, "AWS::SNS::Subscription", map[string]any{"Protocol": "email", "Endpoint": "ops@example.com"})
	count(t, synth(t, "scram"), "AWS::SNS::Subscription", 0)
	for _, name := range []string{"sniffers-unhealthy", "sniffers-none-healthy", "sniffer-drops", "failed-events",
		"instance-events-errors", "stack-events-errors", "reconcile-errors", "teardown-errors"} {
		has(t, s, "AWS::CloudWatch::Alarm", map[string]any{"AlarmName": "apitap-test-" + name,
			"AlarmActions": []any{map[string]any{"Ref": s.logicalID("AWS::SNS::Topic")}}})
	}
	has(t, s, "AWS::CloudWatch::Alarm", map[string]any{"AlarmName": "apitap-test-sniffers-unhealthy", "MetricName": "UnHealthyHostCount", "Namespace": "AWS/NetworkELB"})
	has(t, s, "AWS::CloudWatch::Alarm", map[string]any{"AlarmName": "apitap-test-sniffer-drops", "MetricName": "Drops", "Namespace": "apitap/sniffer"})
	has(t, s, "AWS::CloudWatch::Dashboard", map[string]any{"DashboardName": "apitap-test"})
}

func TestTrailOptional(t *testing.T) {
	s := synth(t, "full")
	has(t, s, "AWS::CloudTrail::Trail", map[string]any{"TrailName": "apitap-test-trail", "IsLogging": true, "EnableLogFileValidation": true})
	has(t, s, "AWS::S3::Bucket", map[string]any{"PublicAccessBlockConfiguration": map[string]any{
		"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true}})
	count(t, synth(t, "scram"), "AWS::CloudTrail::Trail", 0)
	count(t, synth(t, "scram"), "AWS::S3::Bucket", 0)
}

func TestOutputs(t *testing.T) {
	s := synth(t, "full")
	for _, o := range []string{"MirrorTargetId", "MirrorFilterId", "NlbDnsName", "NotificationTopicArn"} {
		if _, ok := s.model.Outputs[o]; !ok {
			t.Errorf("no output %s", o)
		}
	}
}

// Data stays in the VPC.
func TestNothingInternetFacing(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		for id, r := range s.model.Resources {
			switch r.Type {
			case "AWS::EC2::EIP", "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::Subnet", "AWS::EC2::VPC":
				t.Errorf("%s: %s", id, r.Type)
			case "AWS::ElasticLoadBalancingV2::LoadBalancer":
				if r.Properties["Scheme"] != "internal" {
					t.Errorf("%s scheme %v", id, r.Properties["Scheme"])
				}
			}
		}
		if strings.Contains(string(s.json), `"CidrIp":"0.0.0.0/0","Description":"VXLAN`) {
			t.Error("VXLAN open to the internet")
		}
	}
}

// cdk-nag AwsSolutions: no unsuppressed error, and every suppression says
// why.
func TestNag(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		ann := assertions.Annotations_FromStack(s.st.Stack)
		errs := ann.FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(".*")))
		for _, e := range *errs {
			t.Errorf("%s: %s: %v", variant, *e.Id, e.Entry.Data)
		}
		warns := ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*|CdkNagValidationFailure.*")))
		for _, w := range *warns {
			t.Errorf("%s: nag warning %s: %v", variant, *w.Id, w.Entry.Data)
		}
		n := 0
		for id, r := range s.model.Resources {
			nag, _ := r.Metadata["cdk_nag"].(map[string]any)
			rules, _ := nag["rules_to_suppress"].([]any)
			for _, rule := range rules {
				n++
				rule := rule.(map[string]any)
				if reason, _ := rule["reason"].(string); len(reason) < 30 {
					t.Errorf("%s: suppression %v without a reason", id, rule["id"])
				}
			}
			ck, _ := r.Metadata["checkov"].(map[string]any)
			skips, _ := ck["skip"].([]any)
			for _, sk := range skips {
				sk := sk.(map[string]any)
				if c, _ := sk["comment"].(string); len(c) < 30 {
					t.Errorf("%s: checkov skip %v without a reason", id, sk["id"])
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no suppression metadata in the template", variant)
		}
	}
}

// The deploying policy covers every resource type of both templates and
// is scoped.
func TestDeployPolicy(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		doc, err := policy.Generate(s.json, policy.Params{Partition: "aws", Account: account, Region: region, StackName: s.cfg.StackName})
		if err != nil {
			t.Fatalf("%s: %v", variant, err)
		}
		actions := doc.Actions()
		for _, a := range []string{"iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:*", "ec2:*", "*"} {
			for _, got := range actions {
				if got == a {
					t.Errorf("%s: policy grants %s", variant, a)
				}
			}
		}
		for _, a := range doc.WildcardActions() {
			svc, name, _ := strings.Cut(a, ":")
			read := strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get")
			if !read && a != "kms:CreateKey" {
				t.Errorf("%s: %s granted on every resource", variant, a)
			}
			if svc == "s3" || svc == "logs" || svc == "lambda" || svc == "ssm" || svc == "secretsmanager" {
				t.Errorf("%s: data-reading %s granted on every resource", variant, a)
			}
		}
		if r := doc.ResourcesOf("iam:PassRole"); jsonOf(r) != `["arn:aws:iam::123456789012:role/apitap/apitap-test/*"]` {
			t.Errorf("%s: PassRole on %v", variant, r)
		}
		if r := doc.ResourcesOf("lambda:InvokeFunction"); jsonOf(r) != `["arn:aws:lambda:eu-west-1:123456789012:function:apitap-test-teardown"]` {
			t.Errorf("%s: InvokeFunction on %v", variant, r)
		}
		for i, p := range doc.Split(policy.MaxManagedPolicySize) {
			if p.Size() > policy.MaxManagedPolicySize {
				t.Errorf("%s: part %d has %d characters", variant, i+1, p.Size())
			}
		}
	}
}
