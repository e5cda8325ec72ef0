package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/stackconfig"
)

// Failure is one failure to diagnose: a stack event's root cause
// (FromStackEvent) or an Auto Scaling launch activity (FromActivity).
type Failure struct {
	// Token is the stack operation's ClientRequestToken; "" for an
	// activity or an operation started without one.
	Token string
	// Resource is the logical id of the failed resource, or the Auto
	// Scaling group's name for an activity; PhysicalID and ResourceType
	// as the event names them.
	Resource, PhysicalID, ResourceType string
	// Code is an error or activity status code, if any; Message the text
	// AWS wrote (ResourceStatusReason, StatusMessage).
	Code, Message string
	// Zone where it happened, when the source says it outside the message
	// (an activity's Details "Availability Zone").
	Zone string
	Time time.Time
	// Activity is true for an Auto Scaling activity: its caller is the
	// group's service-linked role, not the deploying principal.
	Activity bool
}

// FromStackEvent is the failure of a stack event (a Cause's Event).
func FromStackEvent(e StackEvent) Failure {
	return Failure{Token: e.ClientRequestToken, Resource: e.LogicalID, PhysicalID: e.PhysicalID,
		ResourceType: e.ResourceType, Message: e.Reason, Time: e.Timestamp}
}

// FromActivity is the failure of an Auto Scaling "EC2 Instance Launch
// Unsuccessful" event: its group, StatusCode, StatusMessage and the
// Details' "Availability Zone".
func FromActivity(group, statusCode, statusMessage, zone string, at time.Time) Failure {
	return Failure{Resource: group, ResourceType: "AWS::AutoScaling::AutoScalingGroup",
		Code: statusCode, Message: statusMessage, Zone: zone, Time: at, Activity: true}
}

// Diagnosis is what failed, why, and what fixes it.
type Diagnosis struct {
	Class Class
	// Resource: "SnifferGroup (apitap-sniffers)", the logical id with the
	// physical id when known, or the Auto Scaling group.
	Resource string
	// Evidence quotes the message AWS wrote, and its code.
	Evidence string
	// Fix says what to do, concretely (a policy, a command, the types and
	// zones that remain).
	Fix string
	// Detail is the classification the fix was built from.
	Detail Classification
	// Token of the stack operation, "" for an activity.
	Token string
}

// Key identifies a diagnosis for de-duplication: the same failure of the
// same operation, or, without an operation, the same condition (class,
// resource and what the class depends on: type and zone, action and
// principal, quota) yields the same key, so that the event, the stack
// status change and the Auto Scaling activity of one failure notify once.
func (d Diagnosis) Key() string {
	resource, _, _ := strings.Cut(d.Resource, " ")
	if d.Token != "" {
		return strings.Join([]string{"op", d.Token, string(d.Class), resource}, "|")
	}
	var cond string
	switch d.Class {
	case InsufficientCapacity, TypeNotOffered:
		cond = d.Detail.InstanceType + "@" + d.Detail.Zone
	case AccessDenied:
		cond = d.Detail.Action + " by " + d.Detail.Principal
	case MirrorQuota, ResourceLimit:
		cond = d.Detail.Quota
	case Unknown:
		cond = d.Evidence
	}
	return strings.Join([]string{"cond", string(d.Class), resource, cond}, "|")
}

// Diagnose classifies f and writes its fix for the stack configured by cfg
// (its instance types, subnets, account and partition).
func Diagnose(f Failure, cfg stackconfig.Config) Diagnosis {
	c := Classify(f.Code, f.Message)
	if c.Zone == "" {
		c.Zone = f.Zone
	}
	d := Diagnosis{Class: c.Class, Resource: f.Resource, Detail: c, Token: f.Token}
	if f.PhysicalID != "" && f.PhysicalID != f.Resource {
		d.Resource += " (" + f.PhysicalID + ")"
	}
	d.Evidence = fmt.Sprintf("%q", f.Message)
	if f.Code != "" {
		d.Evidence = f.Code + ": " + d.Evidence
	}
	d.Fix = fix(c, cfg, f.Activity)
	return d
}

func fix(c Classification, cfg stackconfig.Config, activity bool) string {
	switch c.Class {
	case KMSLaunch:
		return "Let the Auto Scaling service-linked role use the key that encrypts the sniffers' volumes " +
			"(a redeploy restores the stack's own key policy). Add these statements to its key policy:\n" +
			string(mustIndent(autoScalingKeyStatements(partitionOf(cfg), accountOf(cfg))))
	case ServiceLinkedRoleMissing:
		return "The Auto Scaling service-linked role does not exist yet, and a key policy naming it is refused. " +
			"Create it, then deploy again:\n" + CreateSLRCommand
	case InsufficientCapacity, TypeNotOffered:
		return placementFix(c, cfg)
	case MirrorQuota:
		q := c.Quota
		if q == "" {
			q = "a Traffic Mirroring quota"
		}
		return fmt.Sprintf("The Traffic Mirroring quota %s is reached. It cannot be raised: delete unused traffic "+
			"mirror sessions, targets or filters of this account and Region (or rules of the filter), or mirror fewer "+
			"port ranges (apitap:mirrorPorts, apitap:mirrorIpv6 false).", q)
	case AccessDenied:
		caller := "the deploying principal (the stack's CloudFormation execution role)"
		if activity {
			caller = AutoScalingRoleARN(partitionOf(cfg), accountOf(cfg))
		}
		return accessFix(c, caller)
	case ResourceLimit:
		q := c.Quota
		if q == "" {
			q = "an account quota"
		}
		return fmt.Sprintf("%s is reached. Ask for an increase in Service Quotas, or free some of it (for the fleet: "+
			"fewer or smaller sniffers, apitap:maxCapacity, apitap:instanceTypes), then retry.", q)
	}
	return "No known cause: read the evidence and the resource's own events."
}

func placementFix(c Classification, cfg stackconfig.Config) string {
	var b strings.Builder
	switch {
	case c.Class == TypeNotOffered && c.InstanceType == "":
		b.WriteString("EC2 does not support this configuration (instance type, AMI architecture, tenancy) in the zone. ")
	case c.Class == TypeNotOffered:
		fmt.Fprintf(&b, "%s is not offered in %s. ", c.InstanceType, c.Zone)
	default:
		fmt.Fprintf(&b, "EC2 has no %s capacity in %s right now. ", orUnknown(c.InstanceType, "instance"), orUnknown(c.Zone, "the zone"))
	}
	if len(c.OtherZones) > 0 {
		fmt.Fprintf(&b, "EC2 suggests %s. ", strings.Join(c.OtherZones, ", "))
	}
	ids, _ := cfg.SubnetIDs()
	p := PlanPlacement(Placement{InstanceTypes: cfg.InstanceTypes, Subnets: ids}, cfg.InstanceTypes, cfg.Subnets, c.InstanceType, c.Zone)
	if !p.Change {
		b.WriteString(p.Why)
		return b.String()
	}
	zones := zonesOf(p.Placement.Subnets, cfg.Subnets)
	// The plan's words are those of a done action; here they say what to
	// do (by hand, or by the capacity remedy when apitap:remediate has it).
	fmt.Fprintf(&b, "Of the configured types and zones, these remain: instance types %s; subnets %s (zones %s). The capacity remedy (apitap:remediate) does this: %s",
		strings.Join(p.Placement.InstanceTypes, ", "), strings.Join(p.Placement.Subnets, ", "), strings.Join(zones, ", "), p.Why)
	if c.Class == InsufficientCapacity {
		b.WriteString(" Capacity comes back: retrying later with the full list works too.")
	}
	return b.String()
}

// accessFix: caller is who made the call when the message does not say.
func accessFix(c Classification, caller string) string {
	action := orUnknown(c.Action, "the denied action")
	principal := orUnknown(c.Principal, caller)
	resource := ""
	if c.Resource != "" {
		resource = " on " + c.Resource
	}
	if c.DeniedBy != "" {
		return fmt.Sprintf("An explicit deny in a %s refuses %s to %s%s: an Allow does not help; the deny must exclude it.",
			c.DeniedBy, action, principal, resource)
	}
	s := fmt.Sprintf("Allow %s to %s%s.", action, principal, resource)
	if c.Action == "iam:CreateServiceLinkedRole" {
		s += " Or create the role beforehand: " + CreateSLRCommand
	}
	return s
}

// CreateSLRCommand creates the Auto Scaling service-linked role
// (docs/aws.md, "Notifications").
const CreateSLRCommand = "aws iam create-service-linked-role --aws-service-name autoscaling.amazonaws.com"

func zonesOf(subnets []string, zone map[string]string) []string {
	var out []string
	for _, s := range subnets {
		if z := zone[s]; z != "" && !slices.Contains(out, z) {
			out = append(out, z)
		}
	}
	return out
}

func orUnknown(s, what string) string {
	if s == "" {
		return what
	}
	return s
}

func accountOf(cfg stackconfig.Config) string { return orUnknown(cfg.Account, "<account>") }

func partitionOf(cfg stackconfig.Config) string { return cfg.Partition() }
