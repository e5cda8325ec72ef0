package diagnose

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Placement is where the fleet launches: the instance types of its mixed
// instances policy's overrides, in priority order, and its subnets.
type Placement struct {
	InstanceTypes []string
	Subnets       []string
}

// PlacementPlan is what PlanPlacement decided.
type PlacementPlan struct {
	// Change is false when nothing is to be done (Why says why); Placement
	// is then Previous.
	Change    bool
	Placement Placement
	Previous  Placement
	// Why explains the choice; Undo says how to go back.
	Why, Undo string
}

// PlanPlacement moves the fleet away from a failed instance type or zone
// (InsufficientCapacity, TypeNotOffered). The rules:
//
//  1. Only configured entries are kept (configuredTypes, configuredSubnets
//     id→zone): a remedy never launches what the stack's configuration
//     does not name; order is the current order.
//  2. A failed type among the current types is dropped, when another type
//     remains. The zones stay: the mirror target's load balancer wants
//     sniffers in every zone (docs/aws.md, "Traffic Mirroring").
//  3. Otherwise (no type named, or it is the last one) the failed zone's
//     subnets are dropped, when a subnet of another zone remains.
//  4. Otherwise nothing changes, and Why says what would have been empty.
//
// Undo restores Previous: the remedy is for while the failure lasts.
func PlanPlacement(current Placement, configuredTypes []string, configuredSubnets map[string]string, failedType, failedZone string) PlacementPlan {
	p := PlacementPlan{Placement: current, Previous: current}
	types := filter(current.InstanceTypes, func(t string) bool { return slices.Contains(configuredTypes, t) })
	subnets := filter(current.Subnets, func(s string) bool { _, ok := configuredSubnets[s]; return ok })
	switch {
	case failedType != "" && !slices.Contains(types, failedType):
		p.Why = fmt.Sprintf("%s is not among the fleet's configured instance types (%s): nothing to drop.", failedType, strings.Join(types, ", "))
		return p
	case failedType != "" && len(types) > 1:
		p.Placement = Placement{InstanceTypes: filter(types, func(t string) bool { return t != failedType }), Subnets: subnets}
		p.Why = fmt.Sprintf("Dropped instance type %s; the fleet launches the next type in every zone.", failedType)
	case failedZone != "":
		rest := filter(subnets, func(s string) bool { return configuredSubnets[s] != failedZone })
		switch {
		case len(rest) == len(subnets):
			p.Why = fmt.Sprintf("No subnet of the fleet is in %s: nothing to drop.", failedZone)
			return p
		case len(rest) == 0:
			p.Why = fmt.Sprintf("Every subnet of the fleet is in %s and no other instance type remains: no change; add instance types (apitap:instanceTypes) or subnets (apitap:subnets).", failedZone)
			return p
		}
		p.Placement = Placement{InstanceTypes: types, Subnets: rest}
		p.Why = fmt.Sprintf("Dropped the subnets of %s; that zone has no sniffers until undone.", failedZone)
		if failedType != "" {
			p.Why = fmt.Sprintf("%s is the fleet's only instance type; dropped the subnets of %s instead, so that zone has no sniffers until undone.", failedType, failedZone)
		}
	case failedType != "":
		p.Why = fmt.Sprintf("%s is the fleet's only instance type and no zone is named: no change; add instance types (apitap:instanceTypes).", failedType)
		return p
	default:
		p.Why = "Neither an instance type nor a zone is named: no change."
		return p
	}
	p.Change = true
	p.Undo = fmt.Sprintf("Restore instance types %s and subnets %s.",
		strings.Join(current.InstanceTypes, ", "), strings.Join(current.Subnets, ", "))
	return p
}

func filter(in []string, keep func(string) bool) []string {
	out := []string{}
	for _, s := range in {
		if keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// Sids of the key policy statements for the Auto Scaling service-linked
// role, as infra/stack/fleet.go writes them.
const (
	SidAutoScalingUse    = "AutoScalingServiceLinkedRoleUse"
	SidAutoScalingGrants = "AutoScalingServiceLinkedRoleGrants"
)

// AutoScalingRoleARN is the ARN of the Auto Scaling service-linked role.
func AutoScalingRoleARN(partition, account string) string {
	return fmt.Sprintf("arn:%s:iam::%s:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", partition, account)
}

// keyStatement is a key policy statement in the order AWS documents it.
type keyStatement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Principal map[string]string            `json:"Principal"`
	Action    []string                     `json:"Action"`
	Resource  string                       `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

var (
	useActions   = []string{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"}
	grantActions = []string{"kms:CreateGrant"}
)

// autoScalingKeyStatements are the two statements that let the Auto
// Scaling service-linked role launch instances with volumes encrypted by a
// key (docs/aws.md, "Diagnosis").
func autoScalingKeyStatements(partition, account string) []keyStatement {
	p := map[string]string{"AWS": AutoScalingRoleARN(partition, account)}
	return []keyStatement{
		{Sid: SidAutoScalingUse, Effect: "Allow", Principal: p, Action: useActions, Resource: "*"},
		{Sid: SidAutoScalingGrants, Effect: "Allow", Principal: p, Action: grantActions, Resource: "*",
			Condition: map[string]map[string]string{"Bool": {"kms:GrantIsForAWSResource": "true"}}},
	}
}

// KeyPolicyPlan is what PlanKeyPolicy decided.
type KeyPolicyPlan struct {
	// Change is false when the policy already lets the role do both; Policy
	// is then the input, byte for byte.
	Change bool
	Policy []byte
	// Added are the Sids of the statements added (or replaced).
	Added []string
	Why   string
}

// PlanKeyPolicy adds to a key policy what the Auto Scaling service-linked
// role of account needs, and nothing else: the use statement when some of
// its actions are not allowed to the role without a condition, the grants
// statement when kms:CreateGrant is not allowed to it (unconditionally or
// for AWS resources). A statement with one of the Sids that does not
// provide its part is replaced; every other statement is kept. Applying
// the result again changes nothing. Explicit denies are not looked at.
func PlanKeyPolicy(policy []byte, partition, account string) (KeyPolicyPlan, error) {
	var doc map[string]any
	if err := json.Unmarshal(policy, &doc); err != nil {
		return KeyPolicyPlan{}, fmt.Errorf("reading the key policy: %w", err)
	}
	if doc == nil {
		return KeyPolicyPlan{}, errors.New("reading the key policy: not a JSON object")
	}
	var stmts []any
	switch s := doc["Statement"].(type) {
	case nil:
	case []any:
		stmts = s
	case map[string]any: // a policy may hold one statement unwrapped
		stmts = []any{s}
	default:
		return KeyPolicyPlan{}, fmt.Errorf("reading the key policy: Statement is a %T", s)
	}
	role := AutoScalingRoleARN(partition, account)
	want := autoScalingKeyStatements(partition, account)
	needUse := !allowed(stmts, role, useActions, noCondition)
	needGrants := !allowed(stmts, role, grantActions, grantCondition)
	if !needUse && !needGrants {
		return KeyPolicyPlan{Policy: policy, Why: "Already present: the key policy lets " + role + " use the key and create grants for AWS resources."}, nil
	}
	var add []keyStatement
	if needUse {
		add = append(add, want[0])
	}
	if needGrants {
		add = append(add, want[1])
	}
	plan := KeyPolicyPlan{Change: true}
	out := make([]any, 0, len(stmts)+len(add))
	for _, s := range stmts {
		if m, ok := s.(map[string]any); ok && slices.ContainsFunc(add, func(k keyStatement) bool { return m["Sid"] == k.Sid }) {
			continue // ours, but not enough: replaced below
		}
		out = append(out, s)
	}
	for _, k := range add {
		out = append(out, k)
		plan.Added = append(plan.Added, k.Sid)
	}
	doc["Statement"] = out
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return KeyPolicyPlan{}, err
	}
	plan.Policy = b
	plan.Why = "Added " + strings.Join(plan.Added, " and ") + " for " + role + "."
	return plan, nil
}

// allowed reports whether Allow statements for principal, whose conditions
// pass cond, together allow every action of actions.
func allowed(stmts []any, principal string, actions []string, cond func(any) bool) bool {
	var patterns []string
	for _, s := range stmts {
		m, ok := s.(map[string]any)
		if !ok || m["Effect"] != "Allow" || m["NotAction"] != nil || m["NotPrincipal"] != nil || !cond(m["Condition"]) {
			continue
		}
		p, _ := m["Principal"].(map[string]any)
		if p == nil || !slices.Contains(stringList(p["AWS"]), principal) {
			continue
		}
		patterns = append(patterns, stringList(m["Action"])...)
	}
	for _, a := range actions {
		if !slices.ContainsFunc(patterns, func(p string) bool { return actionMatches(p, a) }) {
			return false
		}
	}
	return true
}

// actionMatches: IAM action patterns are case-insensitive with * and ?
// wildcards; a wildcard in the wanted action ("kms:ReEncrypt*") is matched
// literally or by a broader pattern.
func actionMatches(pattern, action string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(action))
	return err == nil && ok
}

func noCondition(c any) bool { return c == nil }

// grantCondition accepts no condition or exactly Bool
// kms:GrantIsForAWSResource true (what AWS documents for the role).
func grantCondition(c any) bool {
	if c == nil {
		return true
	}
	m, _ := c.(map[string]any)
	b, _ := m["Bool"].(map[string]any)
	if len(m) != 1 || len(b) != 1 {
		return false
	}
	v := b["kms:GrantIsForAWSResource"]
	return v == true || v == "true" || reflect.DeepEqual(v, []any{"true"}) || reflect.DeepEqual(v, []any{true})
}

// stringList reads a policy element that is a string or a list of strings.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func mustIndent(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic(err) // only for types that cannot be marshalled
	}
	return b
}

// DefaultCooldown is the least time between two remedies of one class: a
// stack update and its rollback take about as long, and a second remedy
// before the first has shown its effect would act on stale failures.
const DefaultCooldown = 30 * time.Minute

// Cooldown allows at most one action per Period (zero: DefaultCooldown).
type Cooldown struct {
	Period time.Duration
}

// Allow reports whether an action may be taken at now when the last one
// of its class was at last (zero: never), and otherwise how long to wait.
// A last time in the future (clocks disagree) waits a full period from it.
func (c Cooldown) Allow(last, now time.Time) (ok bool, wait time.Duration) {
	period := c.Period
	if period <= 0 {
		period = DefaultCooldown
	}
	if last.IsZero() {
		return true, 0
	}
	next := last.Add(period)
	if !now.Before(next) {
		return true, 0
	}
	return false, next.Sub(now)
}
