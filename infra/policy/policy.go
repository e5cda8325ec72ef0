// Package policy derives the least-privilege IAM policy for deploying and
// destroying apitap's stack from its synthesized CloudFormation template:
// for every resource type in the template, the permissions CloudFormation's
// handlers for that type need (create, read, update, delete, as the
// CloudFormation registry schemas list them; handlers.json), each scoped
// to the ARNs of the template's own resources where IAM allows it.
//
// The policy is meant as the CloudFormation execution policy of a CDK
// bootstrap (`cdk bootstrap --cloudformation-execution-policies`), and it
// also holds what the deploying user needs beyond that (assuming the
// bootstrap's deploy and file-publishing roles, and this stack's
// CloudFormation operations), so that one pasted policy serves both.
package policy

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// handlers.json: for each resource type the stack uses, the permissions
// of its CloudFormation handlers, from the resource provider schemas (as
// shipped by cfn-lint). A test compares it with those schemas.
//
//go:embed handlers.json
var handlersJSON []byte

// Handlers are the permissions of CloudFormation's handlers, by resource
// type and handler (create, read, update, delete).
type Handlers map[string]map[string][]string

// LoadHandlers returns the embedded handler permissions.
func LoadHandlers() Handlers {
	var h Handlers
	if err := json.Unmarshal(handlersJSON, &h); err != nil {
		panic(fmt.Sprintf("policy: handlers.json: %v", err))
	}
	return h
}

// Params are what the template does not say.
type Params struct {
	Partition, Account, Region string
	StackName                  string
	// Qualifier is the CDK bootstrap qualifier (default hnb659fds).
	Qualifier string
}

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of it.
type Statement struct {
	Sid       string                    `json:"Sid"`
	Effect    string                    `json:"Effect"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// Excluded are handler permissions the policy leaves out, each with its
// reason: they serve features of the resource types this stack does not
// use (AWS asks for them only when a template uses the feature), or they
// would let the holder escalate its own privileges. A key ending in '*'
// matches a prefix.
var Excluded = map[string]string{
	"managed-fleets:*": "the Auto Scaling group is not a managed fleet",
	"vpc-lattice:*":    "the Auto Scaling group registers no VPC Lattice targets",
	"s3tables:*":       "the trail bucket has no S3 metadata tables",
	"s3:CreateBucketMetadataTableConfiguration":        "the trail bucket has no S3 metadata tables",
	"s3:DeleteBucketMetadataTableConfiguration":        "the trail bucket has no S3 metadata tables",
	"s3:GetBucketMetadataTableConfiguration":           "the trail bucket has no S3 metadata tables",
	"s3:UpdateBucketMetadata*":                         "the trail bucket has no S3 metadata tables",
	"s3:REST.PUT.OBJECT":                               "not an IAM action (an S3 access log operation name in the Logs schema)",
	"firehose:TagDeliveryStream":                       "the log groups deliver to no Firehose stream",
	"logs:CreateLogDelivery":                           "the log groups have no vended log deliveries",
	"logs:AssociateKmsKey":                             "the log groups use CloudWatch Logs' own encryption",
	"logs:DisassociateKmsKey":                          "the log groups use CloudWatch Logs' own encryption",
	"logs:PutBearerTokenAuthentication":                "the log groups use no bearer token authentication",
	"cognito-idp:DescribeUserPoolClient":               "the listener has no Cognito authentication action",
	"elasticfilesystem:DescribeMountTargets":           "the functions mount no EFS file system",
	"s3files:ListMountTargets":                         "the functions mount no S3 file system",
	"organizations:*":                                  "the optional trail is not an organization trail",
	"iam:PutUserPolicy":                                "the stack's policies attach to its roles only",
	"iam:GetUserPolicy":                                "the stack's policies attach to its roles only",
	"iam:DeleteUserPolicy":                             "the stack's policies attach to its roles only",
	"iam:PutGroupPolicy":                               "the stack's policies attach to its roles only",
	"iam:GetGroupPolicy":                               "the stack's policies attach to its roles only",
	"iam:DeleteGroupPolicy":                            "the stack's policies attach to its roles only",
	"iam:AttachRolePolicy":                             "the stack's roles have no managed policies; attaching one (e.g. AdministratorAccess) would be an escalation path",
	"iam:DetachRolePolicy":                             "the stack's roles have no managed policies",
	"iam:PutRolePermissionsBoundary":                   "the stack's roles have no permissions boundary",
	"iam:DeleteRolePermissionsBoundary":                "the stack's roles have no permissions boundary; deleting one would be an escalation path",
	"lambda:GetLayerVersion":                           "the functions use no layers",
	"lambda:PassCapacityProvider":                      "the functions use no capacity provider",
	"lambda:AssociateRuntimeAlias":                     "the functions use no runtime alias",
	"lambda:PutFunctionScalingConfig":                  "the functions use no capacity provider scaling",
	"lambda:GetFunctionScalingConfig":                  "the functions use no capacity provider scaling",
	"kms:CreateGrant":                                  "listed for AWS::Lambda::Function: used only with a customer managed key for the environment (KmsKeyArn), which the functions do not set",
	"kms:Decrypt":                                      "listed for AWS::Lambda::Function: only with KmsKeyArn, not set",
	"kms:Encrypt":                                      "listed for AWS::Lambda::Function: only with KmsKeyArn, not set",
	"kms:GenerateDataKey":                              "listed for AWS::Lambda::Function: only with KmsKeyArn, not set",
	"ec2:DescribeIpamPools":                            "the NLB uses no IPAM pools",
	"kinesis:*":                                        "the diagnoses table streams to no Kinesis data stream",
	"kms:RevokeGrant":                                  "listed for AWS::DynamoDB::Table: only with a customer managed key (SSESpecification), not set",
	"elasticloadbalancing:ModifyIpPools":               "the NLB uses no IPAM pools",
	"elasticloadbalancing:ModifyCapacityReservation":   "the NLB has no capacity reservation",
	"elasticloadbalancing:DescribeCapacityReservation": "the NLB has no capacity reservation",
}

// ExcludedReason is the reason an action is left out, "" if it is not.
func ExcludedReason(action string) string {
	if r, ok := Excluded[action]; ok {
		return r
	}
	for k, r := range Excluded {
		if strings.HasSuffix(k, "*") && strings.HasPrefix(strings.ToLower(action), strings.ToLower(strings.TrimSuffix(k, "*"))) {
			return r
		}
	}
	return ""
}

// readAnywhere are the services whose read actions (Describe*, List*,
// Get*) are granted on every resource: most of them support no
// resource-level permissions, and none of them reads data (unlike
// logs:GetLogEvents, s3:GetObject, lambda:GetFunction or
// ssm:GetParameter, which stay scoped).
var readAnywhere = map[string]bool{
	"ec2": true, "elasticloadbalancing": true, "autoscaling": true, "cloudwatch": true,
	"kms": true, "iam": true, "events": true, "sns": true, "sqs": true, "cloudtrail": true,
}

type resource struct {
	Type           string         `json:"Type"`
	Properties     map[string]any `json:"Properties"`
	DeletionPolicy string         `json:"DeletionPolicy"`
}

type template struct {
	Parameters map[string]struct {
		Type    string `json:"Type"`
		Default string `json:"Default"`
	} `json:"Parameters"`
	Resources map[string]resource `json:"Resources"`
}

type generator struct {
	p        Params
	t        template
	handlers Handlers
	grants   map[string]map[string]bool // action -> resources
	errs     []error
}

// Generate returns the policy for the template. It fails on a resource
// type it does not know, and on a resource it cannot scope.
func Generate(templateJSON []byte, p Params) (Document, error) {
	if p.Qualifier == "" {
		p.Qualifier = "hnb659fds"
	}
	if p.Partition == "" {
		p.Partition = "aws"
	}
	if p.Account == "" || p.Region == "" || p.StackName == "" {
		return Document{}, errors.New("policy: account, region and stack name are required")
	}
	g := &generator{p: p, handlers: LoadHandlers(), grants: map[string]map[string]bool{}}
	if err := json.Unmarshal(templateJSON, &g.t); err != nil {
		return Document{}, fmt.Errorf("policy: reading the template: %w", err)
	}
	g.stackOperations()
	ids := make([]string, 0, len(g.t.Resources))
	for id := range g.t.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g.resource(id, g.t.Resources[id])
	}
	if err := errors.Join(g.errs...); err != nil {
		return Document{}, err
	}
	return g.document(), nil
}

func (g *generator) grant(action string, resources ...string) {
	if g.grants[action] == nil {
		g.grants[action] = map[string]bool{}
	}
	for _, r := range resources {
		g.grants[action][r] = true
	}
}

func (g *generator) arn(service, res string) string {
	return fmt.Sprintf("arn:%s:%s:%s:%s:%s", g.p.Partition, service, g.p.Region, g.p.Account, res)
}

func (g *generator) iamARN(res string) string {
	return fmt.Sprintf("arn:%s:iam::%s:%s", g.p.Partition, g.p.Account, res)
}

// stackOperations are what the deploying user (or the CDK's deploy role)
// does to this stack, and what CloudFormation reads for it.
func (g *generator) stackOperations() {
	stackARN := g.arn("cloudformation", "stack/"+g.p.StackName+"/*")
	for _, a := range []string{
		"cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
		"cloudformation:DeleteChangeSet", "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
		"cloudformation:DescribeStackResources", "cloudformation:GetTemplate", "cloudformation:DeleteStack",
	} {
		g.grant(a, stackARN)
	}
	g.grant("cloudformation:GetTemplateSummary", "*")
	for _, role := range []string{"deploy-role", "file-publishing-role"} {
		g.grant("sts:AssumeRole", g.iamARN(fmt.Sprintf("role/cdk-%s-%s-%s-%s", g.p.Qualifier, role, g.p.Account, g.p.Region)))
	}
	// Lambda reads the functions' code from the bootstrap's asset bucket
	// with the caller's permissions.
	g.grant("s3:GetObject", fmt.Sprintf("arn:%s:s3:::cdk-%s-assets-%s-%s/*", g.p.Partition, g.p.Qualifier, g.p.Account, g.p.Region))
	// Parameters CloudFormation resolves from SSM (the AMI, the bootstrap
	// version).
	for _, prm := range g.t.Parameters {
		if !strings.HasPrefix(prm.Type, "AWS::SSM::Parameter::") || !strings.HasPrefix(prm.Default, "/") {
			continue
		}
		acct := g.p.Account
		if strings.HasPrefix(prm.Default, "/aws/service/") {
			acct = "" // public parameters
		}
		arn := fmt.Sprintf("arn:%s:ssm:%s:%s:parameter%s", g.p.Partition, g.p.Region, acct, prm.Default)
		g.grant("ssm:GetParameters", arn)
		g.grant("ssm:GetParameter", arn)
	}
}

func (g *generator) resource(id string, r resource) {
	if r.Type == "AWS::CDK::Metadata" {
		return // handled by CloudFormation itself
	}
	if strings.HasPrefix(r.Type, "Custom::") || r.Type == "AWS::CloudFormation::CustomResource" {
		fn := g.functionName(r.Properties["ServiceToken"])
		if fn == "" {
			g.errs = append(g.errs, fmt.Errorf("policy: %s (%s): the service token is not a function of the template", id, r.Type))
			return
		}
		g.grant("lambda:InvokeFunction", g.arn("lambda", "function:"+fn))
		return
	}
	h, ok := g.handlers[r.Type]
	if !ok {
		g.errs = append(g.errs, fmt.Errorf("policy: %s: resource type %s has no handler permissions in handlers.json", id, r.Type))
		return
	}
	own, err := g.scope(id, r)
	if err != nil {
		g.errs = append(g.errs, err)
		return
	}
	for _, perms := range h {
		for _, action := range perms {
			if ExcludedReason(action) != "" {
				continue
			}
			action = normalize(action)
			g.grant(action, g.resourcesFor(action, r, own)...)
		}
	}
}

// normalize writes an action's service prefix in lower case (the
// CloudTrail schema says "CloudTrail:CreateTrail").
func normalize(action string) string {
	svc, name, ok := strings.Cut(action, ":")
	if !ok {
		return action
	}
	return strings.ToLower(svc) + ":" + name
}

// resourcesFor are the resources an action of resource r is granted on.
func (g *generator) resourcesFor(action string, r resource, own []string) []string {
	svc, name, _ := strings.Cut(action, ":")
	switch action {
	case "iam:PassRole", "iam:GetRole":
		return g.rolePatterns()
	case "iam:CreateServiceLinkedRole":
		return []string{
			g.iamARN("role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"),
			g.iamARN("role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"),
		}
	case "ec2:RunInstances":
		return []string{
			g.arn("ec2", "instance/*"), g.arn("ec2", "volume/*"), g.arn("ec2", "network-interface/*"),
			g.arn("ec2", "subnet/*"), g.arn("ec2", "security-group/*"), g.arn("ec2", "launch-template/*"),
			fmt.Sprintf("arn:%s:ec2:%s::image/*", g.p.Partition, g.p.Region),
		}
	case "ec2:CreateTags", "ec2:DeleteTags":
		// Instances and volumes are tagged at launch through the launch
		// template.
		return append(own, g.arn("ec2", "instance/*"), g.arn("ec2", "volume/*"), g.arn("ec2", "network-interface/*"))
	case "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms":
		if r.Type != "AWS::CloudWatch::Alarm" {
			// Target tracking policies create their alarms through the
			// caller.
			return []string{g.arn("cloudwatch", "alarm:TargetTracking-"+g.p.StackName+"-*")}
		}
	case "s3:GetObject", "s3:GetObjectVersion":
		if r.Type == "AWS::Lambda::Function" {
			return []string{fmt.Sprintf("arn:%s:s3:::cdk-%s-assets-%s-%s/*", g.p.Partition, g.p.Qualifier, g.p.Account, g.p.Region)}
		}
	case "cloudwatch:GetMetricData":
		return []string{"*"}
	}
	if strings.HasPrefix(action, "ssm:Get") {
		var out []string
		for _, prm := range g.t.Parameters {
			if strings.HasPrefix(prm.Type, "AWS::SSM::Parameter::") && strings.HasPrefix(prm.Default, "/aws/service/") {
				out = append(out, fmt.Sprintf("arn:%s:ssm:%s::parameter%s", g.p.Partition, g.p.Region, prm.Default))
			}
		}
		return out
	}
	isRead := strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "List") || strings.HasPrefix(name, "Get")
	if isRead && readAnywhere[svc] {
		return []string{"*"}
	}
	if svc == "logs" && strings.HasPrefix(name, "Describe") {
		return []string{g.arn("logs", "log-group:*")}
	}
	if svc == "kms" && name == "CreateKey" {
		return []string{"*"} // no resource exists yet
	}
	if svc == "ec2" && (strings.HasPrefix(name, "Describe") || strings.HasPrefix(name, "Get")) {
		return []string{"*"}
	}
	if r.Type == "AWS::DynamoDB::Table" && (svc == "logs" || svc == "s3") {
		// The table imports nothing (ImportSourceSpecification): its
		// handler's S3 and Logs permissions serve imports only.
		return nil
	}
	if svc != serviceOf(r.Type) && !(svc == "ec2" && serviceOf(r.Type) == "ec2") {
		// Another service's action that no rule above scoped: grant it on
		// the resource's own ARNs only if it reads; otherwise refuse.
		g.errs = append(g.errs, fmt.Errorf("policy: %s: no scope for action %s", r.Type, action))
		return nil
	}
	return own
}

// serviceOf is the IAM service prefix of a resource type.
func serviceOf(typ string) string {
	parts := strings.Split(typ, "::")
	if len(parts) < 2 {
		return ""
	}
	switch parts[1] {
	case "ElasticLoadBalancingV2", "ElasticLoadBalancing":
		return "elasticloadbalancing"
	case "Events":
		return "events"
	}
	return strings.ToLower(parts[1])
}

// document groups actions granted on the same resources into statements.
func (g *generator) document() Document {
	groups := map[string][]string{} // resources key -> actions
	res := map[string][]string{}
	for action, set := range g.grants {
		var rs []string
		for r := range set {
			if !coveredResource(r, set) {
				rs = append(rs, r)
			}
		}
		sort.Strings(rs)
		key := strings.Join(rs, "\n")
		groups[key] = append(groups[key], action)
		res[key] = rs
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	// Order by the first action, for a stable, readable document.
	for _, k := range keys {
		var kept []string
		for _, a := range groups[k] {
			if !covered(a, groups[k]) {
				kept = append(kept, a)
			}
		}
		sort.Strings(kept)
		groups[k] = kept
	}
	sort.Slice(keys, func(i, j int) bool { return groups[keys[i]][0] < groups[keys[j]][0] })
	doc := Document{Version: "2012-10-17"}
	counts := map[string]int{}
	for _, k := range keys {
		svc, _, _ := strings.Cut(groups[k][0], ":")
		sid := sidOf(svc)
		counts[sid]++
		if counts[sid] > 1 {
			sid = fmt.Sprintf("%s%d", sid, counts[sid])
		}
		doc.Statement = append(doc.Statement, Statement{Sid: sid, Effect: "Allow", Action: groups[k], Resource: res[k]})
	}
	return doc
}

func sidOf(svc string) string {
	var b strings.Builder
	up := true
	for _, r := range svc {
		if r == '-' {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}

// Actions are every action of the document, sorted.
func (d Document) Actions() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range d.Statement {
		for _, a := range s.Action {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ResourcesOf are the resources an action is granted on.
func (d Document) ResourcesOf(action string) []string {
	var out []string
	for _, s := range d.Statement {
		for _, a := range s.Action {
			if a == action {
				out = append(out, s.Resource...)
			}
		}
	}
	sort.Strings(out)
	return out
}

// MaxManagedPolicySize is IAM's limit on a managed policy document, in
// characters without white space.
const MaxManagedPolicySize = 6144

// Size is the document's length as IAM counts it (no white space).
func (d Document) Size() int {
	b, _ := json.Marshal(d)
	return len(b)
}

// Split packs the statements into documents of at most limit characters
// each (IAM's managed policy limit by default), splitting a statement's
// actions where one alone is too large. Attach all of them.
func (d Document) Split(limit int) []Document {
	if limit <= 0 {
		limit = MaxManagedPolicySize
	}
	var parts []Document
	cur := Document{Version: d.Version}
	flush := func() {
		if len(cur.Statement) > 0 {
			parts = append(parts, cur)
			cur = Document{Version: d.Version}
		}
	}
	var add func(s Statement)
	add = func(s Statement) {
		try := Document{Version: d.Version, Statement: append(append([]Statement(nil), cur.Statement...), s)}
		if try.Size() <= limit {
			cur = try
			return
		}
		if len(cur.Statement) > 0 {
			flush()
			add(s)
			return
		}
		// One statement alone is too large: halve its actions.
		if len(s.Action) < 2 {
			cur = try // cannot shrink further; IAM will say so
			flush()
			return
		}
		h := len(s.Action) / 2
		a, b := s, s
		a.Action, b.Action = s.Action[:h], s.Action[h:]
		a.Sid, b.Sid = s.Sid+"A", s.Sid+"B"
		add(a)
		add(b)
	}
	for _, s := range d.Statement {
		add(s)
	}
	flush()
	return parts
}

// covered reports whether action is matched by a wildcard action (ending
// in '*') among actions.
func covered(action string, actions []string) bool {
	for _, w := range actions {
		if w != action && strings.HasSuffix(w, "*") && strings.HasPrefix(action, strings.TrimSuffix(w, "*")) {
			return true
		}
	}
	return false
}

// coveredResource reports whether another resource of set, ending in '*',
// matches r.
func coveredResource(r string, set map[string]bool) bool {
	for w := range set {
		if w != r && strings.HasSuffix(w, "*") && strings.HasPrefix(r, strings.TrimSuffix(w, "*")) {
			return true
		}
	}
	return false
}
