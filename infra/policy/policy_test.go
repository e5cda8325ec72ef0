package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

var params = Params{Partition: "aws", Account: "123456789012", Region: "eu-west-1", StackName: "apitap"}

const small = `{
 "Parameters": {
  "Ami": {"Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>", "Default": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"}
 },
 "Resources": {
  "Role": {"Type": "AWS::IAM::Role", "Properties": {"Path": "/apitap/apitap/"}},
  "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": "apitap-teardown", "Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
  "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/lambda/apitap-teardown"}},
  "Teardown": {"Type": "Custom::ApitapTeardown", "Properties": {"ServiceToken": {"Fn::GetAtt": ["Fn", "Arn"]}}},
  "Meta": {"Type": "AWS::CDK::Metadata"}
 }
}`

func generate(t *testing.T, tmpl string) Document {
	t.Helper()
	d, err := Generate([]byte(tmpl), params)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestScopedToTheTemplate(t *testing.T) {
	d := generate(t, small)
	want := map[string]string{
		"iam:CreateRole":             `["arn:aws:iam::123456789012:role/apitap/apitap/*"]`,
		"iam:PassRole":               `["arn:aws:iam::123456789012:role/apitap/apitap/*"]`,
		"lambda:CreateFunction":      `["arn:aws:lambda:eu-west-1:123456789012:function:apitap-teardown","arn:aws:lambda:eu-west-1:123456789012:function:apitap-teardown:*"]`,
		"lambda:InvokeFunction":      `["arn:aws:lambda:eu-west-1:123456789012:function:apitap-teardown"]`,
		"logs:PutRetentionPolicy":    `["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/apitap-teardown","arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/apitap-teardown:*"]`,
		"s3:GetObject":               `["arn:aws:s3:::cdk-hnb659fds-assets-123456789012-eu-west-1/*"]`,
		"ssm:GetParameters":          `["arn:aws:ssm:eu-west-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64"]`,
		"sts:AssumeRole":             `["arn:aws:iam::123456789012:role/cdk-hnb659fds-deploy-role-123456789012-eu-west-1","arn:aws:iam::123456789012:role/cdk-hnb659fds-file-publishing-role-123456789012-eu-west-1"]`,
		"cloudformation:DeleteStack": `["arn:aws:cloudformation:eu-west-1:123456789012:stack/apitap/*"]`,
	}
	for action, res := range want {
		b, _ := json.Marshal(d.ResourcesOf(action))
		if string(b) != res {
			t.Errorf("%s on %s, want %s", action, b, res)
		}
	}
	for _, a := range d.Actions() {
		if ExcludedReason(a) != "" {
			t.Errorf("excluded action %s granted", a)
		}
	}
	for _, a := range []string{"iam:AttachRolePolicy", "iam:PutUserPolicy", "lambda:GetLayerVersion", "kms:Decrypt"} {
		if len(d.ResourcesOf(a)) > 0 {
			t.Errorf("%s granted", a)
		}
	}
}

func TestRefusesWhatItCannotScope(t *testing.T) {
	for name, tmpl := range map[string]string{
		"unknown type":          `{"Resources": {"X": {"Type": "AWS::RDS::DBInstance", "Properties": {}}}}`,
		"unnamed function":      `{"Resources": {"F": {"Type": "AWS::Lambda::Function", "Properties": {}}}}`,
		"role without path":     `{"Resources": {"R": {"Type": "AWS::IAM::Role", "Properties": {}}}}`,
		"foreign service token": `{"Resources": {"C": {"Type": "Custom::X", "Properties": {"ServiceToken": {"Fn::ImportValue": "x"}}}}}`,
	} {
		if _, err := Generate([]byte(tmpl), params); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSplit(t *testing.T) {
	d := generate(t, small)
	parts := d.Split(1500)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	seen := map[string]bool{}
	for _, p := range parts {
		if p.Size() > 1500 {
			t.Errorf("part of %d characters", p.Size())
		}
		for _, a := range p.Actions() {
			seen[a] = true
		}
	}
	for _, a := range d.Actions() {
		if !seen[a] {
			t.Errorf("%s lost in the split", a)
		}
	}
}

func TestCovered(t *testing.T) {
	if !covered("ec2:DescribeVpcs", []string{"ec2:Describe*", "ec2:DescribeVpcs"}) || covered("ec2:Describe*", []string{"ec2:Describe*"}) {
		t.Error("covered")
	}
	if !coveredResource("arn:x:alarm:apitap-a", map[string]bool{"arn:x:alarm:apitap-*": true, "arn:x:alarm:apitap-a": true}) {
		t.Error("coveredResource")
	}
	if !strings.HasPrefix(sidOf("elasticloadbalancing"), "Elastic") {
		t.Error(sidOf("elasticloadbalancing"))
	}
}
