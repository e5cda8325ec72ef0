package opsview

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/apitap/apitap/internal/stackconfig"
)

// Check results.
const (
	OK   = "ok"
	Warn = "warn"
	Fail = "fail"
)

// Check is one preflight check.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Preflight is every check of an account before the first deploy.
type Preflight struct {
	Stack  string  `json:"stack"`
	Region string  `json:"region"`
	Checks []Check `json:"checks"`
}

// Failed reports whether any check failed: the command exits 1.
func (p *Preflight) Failed() bool {
	for _, c := range p.Checks {
		if c.Result == Fail {
			return true
		}
	}
	return false
}

// Write prints the checks.
func (p *Preflight) Write(w io.Writer) error {
	counts := map[string]int{}
	t := &Table{Header: []string{"CHECK", "RESULT", "DETAIL", "FIX"}}
	for _, c := range p.Checks {
		counts[c.Result]++
		t.Add(c.Name, c.Result, c.Detail, c.Fix)
	}
	t.Title = fmt.Sprintf("Preflight of stack %s in %s: %d ok, %d warn, %d fail", p.Stack, p.Region, counts[OK], counts[Warn], counts[Fail])
	return t.Write(w)
}

// The AWS APIs preflight reads.
type (
	STSAPI interface {
		GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
	}
	PreflightEC2 interface {
		DescribeVpcs(context.Context, *ec2.DescribeVpcsInput, ...func(*ec2.Options)) (*ec2.DescribeVpcsOutput, error)
		DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error)
		DescribeInstanceTypeOfferings(context.Context, *ec2.DescribeInstanceTypeOfferingsInput, ...func(*ec2.Options)) (*ec2.DescribeInstanceTypeOfferingsOutput, error)
		DescribeTrafficMirrorSessions(context.Context, *ec2.DescribeTrafficMirrorSessionsInput, ...func(*ec2.Options)) (*ec2.DescribeTrafficMirrorSessionsOutput, error)
	}
	IAMAPI interface {
		GetRole(context.Context, *iam.GetRoleInput, ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	}
	LambdaAPI interface {
		GetAccountSettings(context.Context, *lambda.GetAccountSettingsInput, ...func(*lambda.Options)) (*lambda.GetAccountSettingsOutput, error)
	}
	CloudTrailAPI interface {
		DescribeTrails(context.Context, *cloudtrail.DescribeTrailsInput, ...func(*cloudtrail.Options)) (*cloudtrail.DescribeTrailsOutput, error)
		GetTrailStatus(context.Context, *cloudtrail.GetTrailStatusInput, ...func(*cloudtrail.Options)) (*cloudtrail.GetTrailStatusOutput, error)
		GetEventSelectors(context.Context, *cloudtrail.GetEventSelectorsInput, ...func(*cloudtrail.Options)) (*cloudtrail.GetEventSelectorsOutput, error)
	}
	QuotasAPI interface {
		ListServiceQuotas(context.Context, *servicequotas.ListServiceQuotasInput, ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error)
	}
)

// PreflightClients are the clients preflight reads with.
type PreflightClients struct {
	STS        STSAPI
	EC2        PreflightEC2
	IAM        IAMAPI
	Lambda     LambdaAPI
	CloudTrail CloudTrailAPI
	Quotas     QuotasAPI
	// Reader is the orchestrator's inventory reader (the selection).
	Reader StatusReader
}

// NewPreflightClients are preflight's clients on one AWS configuration.
func NewPreflightClients(cfg aws.Config, rd StatusReader) PreflightClients {
	return PreflightClients{
		STS: sts.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg), IAM: iam.NewFromConfig(cfg), Lambda: lambda.NewFromConfig(cfg),
		CloudTrail: cloudtrail.NewFromConfig(cfg), Quotas: servicequotas.NewFromConfig(cfg), Reader: rd,
	}
}

// Thresholds of the checks.
const (
	// MinUnreserved is what Lambda keeps unreserved in every account: a
	// reservation that would leave less fails
	// (docs/aws.md, "Sniffer boot, updates and access").
	MinUnreserved = 100
	// LowConcurrency warns of an account quota at which bursts of events
	// are throttled (the functions retry, but slower).
	LowConcurrency = 100
	// SessionsQuota is AWS's documented sessions per account and Region,
	// not adjustable (docs/aws.md, "Traffic Mirroring"), used when Service
	// Quotas does not list it.
	SessionsQuota = 10000
	// AutoScalingRole is the Auto Scaling service-linked role.
	AutoScalingRole = "AWSServiceRoleForAutoScaling"
)

// RunPreflight runs every check for the configuration. A check that cannot
// read what it needs fails with the error, never stops the others.
func RunPreflight(ctx context.Context, c PreflightClients, cfg stackconfig.Config, now time.Time) *Preflight {
	p := &Preflight{Stack: cfg.StackName, Region: cfg.Region}
	add := func(name, result, detail, fix string) {
		p.Checks = append(p.Checks, Check{Name: name, Result: result, Detail: detail, Fix: fix})
	}
	// The configuration itself first: the Kafka settings' consistency,
	// ports, capacities and every other rule the stack applies.
	if err := cfg.Validate(); err != nil {
		add("configuration", Fail, oneLine(err), "correct the apitap:* keys in cdk.json")
	} else {
		add("configuration", OK, fmt.Sprintf("Kafka %s, TLS %v, auth %s; %d instance types; %d filter rules", strings.Join(cfg.KafkaBrokers, ","), cfg.KafkaTLS, cfg.KafkaAuth, len(cfg.InstanceTypes), cfg.FilterRules()), "")
	}
	checkAccount(ctx, c, cfg, add)
	zonesOK := checkNetwork(ctx, c, cfg, add)
	if zonesOK {
		checkInstanceTypes(ctx, c, cfg, add)
	}
	checkRole(ctx, c, add)
	checkConcurrency(ctx, c, cfg, add)
	checkTrail(ctx, c, cfg, add)
	targets := checkSelection(ctx, c, cfg, now, add)
	checkQuota(ctx, c, targets, add)
	return p
}

type addFunc func(name, result, detail, fix string)

func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", "; ")
	return strings.TrimPrefix(s, "invalid apitap configuration (CDK context, see README \"Deploying\"):; ")
}

func checkAccount(ctx context.Context, c PreflightClients, cfg stackconfig.Config, add addFunc) {
	out, err := c.STS.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	switch {
	case err != nil:
		add("account", Fail, "the credentials do not work in "+cfg.Region+": "+err.Error(), "configure credentials for account "+cfg.Account+" (aws configure, AWS_PROFILE)")
	case aws.ToString(out.Account) != cfg.Account:
		add("account", Fail, fmt.Sprintf("the credentials are for account %s, the configuration names %s", aws.ToString(out.Account), cfg.Account),
			"use credentials of account "+cfg.Account+", or correct apitap:account")
	default:
		add("account", OK, fmt.Sprintf("%s as %s in %s", cfg.Account, aws.ToString(out.Arn), cfg.Region), "")
	}
}

// checkNetwork: the VPC and every subnet exist, the subnets in the VPC and
// in the stated zones. It reports whether the zones can be trusted.
func checkNetwork(ctx context.Context, c PreflightClients, cfg stackconfig.Config, add addFunc) bool {
	vpcs, err := c.EC2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{cfg.VPCID}})
	if err != nil || len(vpcs.Vpcs) == 0 {
		add("vpc", Fail, fmt.Sprintf("VPC %s not found in %s: %v", cfg.VPCID, cfg.Region, err), "correct apitap:vpcId (the load balancers' VPC)")
		return false
	}
	cidrs := map[string]bool{}
	for _, v := range vpcs.Vpcs {
		cidrs[aws.ToString(v.CidrBlock)] = true
		for _, a := range v.CidrBlockAssociationSet {
			cidrs[aws.ToString(a.CidrBlock)] = true
		}
	}
	var unknown []string
	for _, cidr := range cfg.VPCCIDRs {
		if !cidrs[cidr] {
			unknown = append(unknown, cidr)
		}
	}
	if len(unknown) > 0 {
		add("vpc", Fail, fmt.Sprintf("%s is not a CIDR of %s (it has %s)", strings.Join(unknown, ", "), cfg.VPCID, strings.Join(keys(cidrs), ", ")), "correct apitap:vpcCidr")
	} else {
		add("vpc", OK, fmt.Sprintf("%s with %s", cfg.VPCID, strings.Join(cfg.VPCCIDRs, ", ")), "")
	}
	ids, _ := cfg.SubnetIDs()
	out, err := c.EC2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids})
	if err != nil {
		add("subnets", Fail, "describing "+strings.Join(ids, ", ")+": "+err.Error(), "correct apitap:subnets (private subnets of the VPC, id → zone)")
		return false
	}
	found := map[string]ec2types.Subnet{}
	for _, s := range out.Subnets {
		found[aws.ToString(s.SubnetId)] = s
	}
	var bad []string
	for _, id := range ids {
		s, ok := found[id]
		switch {
		case !ok:
			bad = append(bad, id+" not found")
		case aws.ToString(s.VpcId) != cfg.VPCID:
			bad = append(bad, fmt.Sprintf("%s is in %s", id, aws.ToString(s.VpcId)))
		case aws.ToString(s.AvailabilityZone) != cfg.Subnets[id]:
			bad = append(bad, fmt.Sprintf("%s is in %s, not %s", id, aws.ToString(s.AvailabilityZone), cfg.Subnets[id]))
		}
	}
	if len(bad) > 0 {
		add("subnets", Fail, strings.Join(bad, "; "), "correct apitap:subnets")
		return false
	}
	add("subnets", OK, fmt.Sprintf("%d subnets in %s", len(ids), strings.Join(cfg.AvailabilityZones(), ", ")), "")
	return true
}

// checkInstanceTypes: every zone offers at least one of the types; types
// missing in a zone are a warning (the mixed instances policy skips them).
func checkInstanceTypes(ctx context.Context, c PreflightClients, cfg stackconfig.Config, add addFunc) {
	zones := cfg.AvailabilityZones()
	offered := map[string]map[string]bool{}
	in := &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters: []ec2types.Filter{
			{Name: aws.String("location"), Values: zones},
			{Name: aws.String("instance-type"), Values: cfg.InstanceTypes},
		},
	}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(c.EC2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			add("instance types", Fail, "describing instance type offerings: "+err.Error(), "")
			return
		}
		for _, o := range page.InstanceTypeOfferings {
			z := aws.ToString(o.Location)
			if offered[z] == nil {
				offered[z] = map[string]bool{}
			}
			offered[z][string(o.InstanceType)] = true
		}
	}
	var none, missing []string
	for _, z := range zones {
		var lacks []string
		for _, t := range cfg.InstanceTypes {
			if !offered[z][t] {
				lacks = append(lacks, t)
			}
		}
		switch {
		case len(lacks) == len(cfg.InstanceTypes):
			none = append(none, z)
		case len(lacks) > 0:
			missing = append(missing, z+" lacks "+strings.Join(lacks, ", "))
		}
	}
	switch {
	case len(none) > 0:
		add("instance types", Fail, "no configured type is offered in "+strings.Join(none, ", "), "add types offered there to apitap:instanceTypes, or use other subnets")
	case len(missing) > 0:
		add("instance types", Warn, strings.Join(missing, "; ")+" (the fleet uses the others there)", "add equivalent types to apitap:instanceTypes for more fallbacks")
	default:
		add("instance types", OK, fmt.Sprintf("all %d types offered in %s", len(cfg.InstanceTypes), strings.Join(zones, ", ")), "")
	}
}

func checkRole(ctx context.Context, c PreflightClients, add addFunc) {
	_, err := c.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(AutoScalingRole)})
	var ae interface{ ErrorCode() string }
	switch {
	case err == nil:
		add("auto scaling role", OK, AutoScalingRole+" exists (the EBS and topic keys name it)", "")
	case errors.As(err, &ae) && ae.ErrorCode() == "NoSuchEntity":
		add("auto scaling role", Fail, AutoScalingRole+" does not exist: the stack's KMS key policies name it and KMS refuses them",
			"aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com")
	default:
		add("auto scaling role", Warn, "cannot tell whether "+AutoScalingRole+" exists: "+err.Error(), "allow iam:GetRole, or create the role as the README says")
	}
}

func checkConcurrency(ctx context.Context, c PreflightClients, cfg stackconfig.Config, add addFunc) {
	out, err := c.Lambda.GetAccountSettings(ctx, &lambda.GetAccountSettingsInput{})
	if err != nil || out.AccountLimit == nil {
		add("lambda concurrency", Warn, fmt.Sprintf("cannot read the account's Lambda settings: %v", err), "allow lambda:GetAccountSettings")
		return
	}
	total := aws.ToInt32(&out.AccountLimit.ConcurrentExecutions)
	unreserved := aws.ToInt32(out.AccountLimit.UnreservedConcurrentExecutions)
	want := int32(cfg.ReconcileReservedConcurrency)
	switch {
	case want > 0 && unreserved-want < MinUnreserved:
		add("lambda concurrency", Fail, fmt.Sprintf("reserving %d leaves %d unreserved of %d; Lambda keeps %d", want, unreserved-want, total, MinUnreserved),
			"set apitap:reconcileReservedConcurrency 0, or ask for a higher concurrency quota")
	case total < LowConcurrency:
		add("lambda concurrency", Warn, fmt.Sprintf("the account's quota is %d concurrent executions: bursts of events wait for each other", total),
			"ask for a higher Lambda concurrency quota (Service Quotas)")
	default:
		add("lambda concurrency", OK, fmt.Sprintf("%d unreserved of %d", unreserved, total), "")
	}
}

// checkTrail: target registration events reach EventBridge only from a
// trail that logs management write events.
func checkTrail(ctx context.Context, c PreflightClients, cfg stackconfig.Config, add addFunc) {
	if cfg.CreateTrail {
		add("cloudtrail", OK, "the stack creates its own trail (apitap:createTrail)", "")
		return
	}
	out, err := c.CloudTrail.DescribeTrails(ctx, &cloudtrail.DescribeTrailsInput{IncludeShadowTrails: aws.Bool(true)})
	if err != nil {
		add("cloudtrail", Warn, "cannot read the trails: "+err.Error(), "allow cloudtrail:DescribeTrails")
		return
	}
	var names []string
	for _, t := range out.TrailList {
		arn := aws.ToString(t.TrailARN)
		st, err := c.CloudTrail.GetTrailStatus(ctx, &cloudtrail.GetTrailStatusInput{Name: aws.String(arn)})
		if err != nil || !aws.ToBool(st.IsLogging) {
			continue
		}
		sel, err := c.CloudTrail.GetEventSelectors(ctx, &cloudtrail.GetEventSelectorsInput{TrailName: aws.String(arn)})
		if err != nil || !logsManagementWrites(sel) {
			continue
		}
		names = append(names, aws.ToString(t.Name))
	}
	if len(names) == 0 {
		add("cloudtrail", Warn, "no trail logs management write events here: target (de)registrations reach apitap only at the scheduled reconcile (ECS tasks and instance changes do not need a trail)",
			"set apitap:createTrail true, or log management events in a trail")
		return
	}
	sort.Strings(names)
	add("cloudtrail", OK, "management write events logged by "+strings.Join(names, ", "), "")
}

func logsManagementWrites(sel *cloudtrail.GetEventSelectorsOutput) bool {
	for _, s := range sel.EventSelectors {
		if aws.ToBool(s.IncludeManagementEvents) && (s.ReadWriteType == cttypes.ReadWriteTypeAll || s.ReadWriteType == cttypes.ReadWriteTypeWriteOnly) {
			return true
		}
	}
	for _, a := range sel.AdvancedEventSelectors {
		management, writes := false, true
		for _, f := range a.FieldSelectors {
			switch aws.ToString(f.Field) {
			case "eventCategory":
				management = slices.Contains(f.Equals, "Management")
			case "readOnly":
				writes = !slices.Contains(f.Equals, "true")
			}
		}
		if management && writes {
			return true
		}
	}
	return false
}

// checkSelection: the configured load balancers exist in the VPC and have
// targets to mirror. It returns how many interfaces would be mirrored.
func checkSelection(ctx context.Context, c PreflightClients, cfg stackconfig.Config, now time.Time, add addFunc) int {
	lbs, err := c.Reader.Selection(ctx)
	if err != nil {
		add("load balancers", Fail, "reading the selection: "+err.Error(), "")
		return 0
	}
	// A load balancer named by ARN that cannot be mirrored is an error in
	// the configuration; one matched by tag only is skipped, and said.
	byARN := map[string]bool{}
	for _, arn := range cfg.LoadBalancerARNs {
		byARN[arn] = true
	}
	var problems, skipped []string
	for _, p := range c.Reader.Problems() {
		if byARN[p.LB] {
			problems = append(problems, p.LB+": "+p.Reason)
		} else {
			skipped = append(skipped, p.LB+": "+p.Reason)
		}
	}
	ts, err := c.Reader.Targets(ctx, lbs, nil)
	if err != nil {
		add("load balancers", Fail, "reading their targets: "+err.Error(), "")
		return 0
	}
	sources, err := c.Reader.Sources(ctx, lbs, ts, now)
	if err != nil {
		add("load balancers", Fail, "reading their targets' interfaces: "+err.Error(), "")
		return 0
	}
	switch {
	case len(problems) > 0:
		add("load balancers", Fail, strings.Join(problems, "; "), "correct apitap:loadBalancerArns / apitap:loadBalancerTags (make connections lists what can be selected)")
	case len(lbs) == 0:
		add("load balancers", Fail, "no load balancer matches the selection", "check apitap:loadBalancerArns / apitap:loadBalancerTags (make connections)")
	case len(sources) == 0:
		add("load balancers", Warn, fmt.Sprintf("%d selected, no target with a network interface to mirror yet", len(lbs)), "")
	case len(skipped) > 0:
		add("load balancers", Warn, fmt.Sprintf("%d selected, %d network interfaces to mirror; matched by tag but skipped: %s", len(lbs), len(sources), strings.Join(skipped, "; ")),
			"remove the tag from those, or ignore this")
	default:
		add("load balancers", OK, fmt.Sprintf("%d selected, %d network interfaces to mirror", len(lbs), len(sources)), "")
	}
	return len(sources)
}

// checkQuota: the account's sessions leave room for the selection.
func checkQuota(ctx context.Context, c PreflightClients, targets int, add addFunc) {
	quota, note := float64(SessionsQuota), fmt.Sprintf(" (quota %d as documented)", SessionsQuota)
	if v, ok := listedSessionsQuota(ctx, c.Quotas); ok {
		quota, note = v, " (quota from Service Quotas)"
	}
	used := 0
	p := ec2.NewDescribeTrafficMirrorSessionsPaginator(c.EC2, &ec2.DescribeTrafficMirrorSessionsInput{MaxResults: aws.Int32(1000)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			add("mirror sessions quota", Warn, "counting the account's sessions: "+err.Error(), "")
			return
		}
		used += len(page.TrafficMirrorSessions)
	}
	left := int(quota) - used
	detail := fmt.Sprintf("%d of %.0f sessions used, %d needed%s", used, quota, targets, note)
	switch {
	case targets > left:
		add("mirror sessions quota", Fail, detail, "select fewer load balancers: the quota cannot be raised")
	case float64(left-targets) < quota/10:
		add("mirror sessions quota", Warn, detail+": less than 10% left after the deploy", "")
	default:
		add("mirror sessions quota", OK, detail, "")
	}
}

// SessionsQuotaName is how Service Quotas names the sessions quota: AWS
// documents no quota code for it, so it is found by name among the EC2
// and VPC quotas, if it is listed at all.
const SessionsQuotaName = "traffic mirror sessions"

func listedSessionsQuota(ctx context.Context, q QuotasAPI) (float64, bool) {
	for _, svc := range []string{"ec2", "vpc"} {
		p := servicequotas.NewListServiceQuotasPaginator(q, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String(svc)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				break
			}
			for _, sq := range page.Quotas {
				if strings.Contains(strings.ToLower(aws.ToString(sq.QuotaName)), SessionsQuotaName) && sq.Value != nil {
					return aws.ToFloat64(sq.Value), true
				}
			}
		}
	}
	return 0, false
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
