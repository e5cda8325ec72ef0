package opsview

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/apitap/apitap/internal/inventory"
	"github.com/apitap/apitap/internal/mirror"
)

// Connections is every load balancer of the region and, for each target,
// whether it can be mirrored.
type Connections struct {
	Stack         string   `json:"stack"`
	Region        string   `json:"region"`
	VPC           string   `json:"vpc"`
	LoadBalancers []LBView `json:"loadBalancers"`
	// Problems are configured load balancers the region does not have.
	Problems []string `json:"problems,omitempty"`
}

// LBView is one load balancer.
type LBView struct {
	Name       string       `json:"name"`
	ARN        string       `json:"arn"`
	Type       string       `json:"type"`
	Scheme     string       `json:"scheme"`
	VPC        string       `json:"vpc"`
	SelectedBy string       `json:"selectedBy,omitempty"` // "arn", "tag", "arn, tag" or ""
	Selectable bool         `json:"selectable"`
	Why        string       `json:"why,omitempty"` // why it cannot be selected
	VNI        uint32       `json:"vni,omitempty"`
	Targets    []TargetView `json:"targets"`
}

// TargetView is one target and what apitap can do with it.
type TargetView struct {
	Group        string `json:"group,omitempty"`
	Type         string `json:"type"`
	ID           string `json:"id"`
	Port         int32  `json:"port,omitempty"`
	Health       string `json:"health"`
	ENI          string `json:"eni,omitempty"`
	ENIType      string `json:"eniType,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
	// Mirrorable is yes, no or unknown; Note says why.
	Mirrorable string   `json:"mirrorable"`
	Note       string   `json:"note,omitempty"`
	Ours       []string `json:"ours,omitempty"`    // our sessions on its ENI
	Foreign    []string `json:"foreign,omitempty"` // others' sessions on its ENI
}

// Reader is what the commands read AWS with: the orchestrator's
// inventory reader.
type Reader interface {
	Catalog(ctx context.Context) ([]inventory.LBInfo, error)
	OwnLoadBalancer(ctx context.Context) (string, error)
	Selection(ctx context.Context) ([]inventory.LoadBalancer, error)
	LBTargets(ctx context.Context, lb inventory.LBInfo) ([]inventory.TargetInfo, error)
	Instances(ctx context.Context, ids []string) (map[string]inventory.Instance, error)
	ENIsByIP(ctx context.Context, ips []string) (map[string]inventory.ENI, error)
	SessionsOn(ctx context.Context, enis []string) ([]mirror.Session, error)
	Problems() []mirror.Problem
}

// Scope is the stack a command looks at.
type Scope struct {
	Mirror mirror.Config // the stack's name and mirror target (ownership)
	Region string
	VPC    string
}

// GatherConnections reads every load balancer of the region, its targets,
// their interfaces and sessions.
func GatherConnections(ctx context.Context, rd Reader, sc Scope) (*Connections, error) {
	all, err := rd.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	own, err := rd.OwnLoadBalancer(ctx)
	if err != nil {
		return nil, err
	}
	selected, err := rd.Selection(ctx)
	if err != nil {
		return nil, err
	}
	vni := map[string]uint32{}
	for _, lb := range selected {
		vni[lb.ARN] = lb.VNI
	}
	out := &Connections{Stack: sc.Mirror.StackName, Region: sc.Region, VPC: sc.VPC}
	var instanceIDs, ips []string
	targets := map[string][]inventory.TargetInfo{}
	for _, lb := range all {
		ts, err := rd.LBTargets(ctx, lb)
		if err != nil {
			return nil, err
		}
		targets[lb.ARN] = ts
		if lb.VPC != sc.VPC || lb.ARN == own {
			continue
		}
		for _, t := range ts {
			switch t.Type {
			case "instance":
				instanceIDs = append(instanceIDs, t.ID)
			case "ip":
				ips = append(ips, t.ID)
			}
		}
	}
	instances, err := rd.Instances(ctx, instanceIDs)
	if err != nil {
		return nil, err
	}
	byIP, err := rd.ENIsByIP(ctx, ips)
	if err != nil {
		return nil, err
	}
	// The instances behind ip targets, for their types.
	var more []string
	for _, e := range byIP {
		if e.Instance != "" {
			if _, ok := instances[e.Instance]; !ok {
				more = append(more, e.Instance)
			}
		}
	}
	if len(more) > 0 {
		extra, err := rd.Instances(ctx, more)
		if err != nil {
			return nil, err
		}
		for id, in := range extra {
			instances[id] = in
		}
	}
	var enis []string
	for _, in := range instances {
		if in.ENI != "" {
			enis = append(enis, in.ENI)
		}
	}
	for _, e := range byIP {
		enis = append(enis, e.ID)
	}
	sessions, err := rd.SessionsOn(ctx, enis)
	if err != nil {
		return nil, err
	}
	for _, p := range rd.Problems() {
		if p.LB != "" && !known(all, p.LB) {
			out.Problems = append(out.Problems, p.LB+": "+p.Reason)
		}
	}
	out.LoadBalancers = BuildConnections(all, own, sc, vni, targets, instances, byIP, sessions)
	return out, nil
}

func known(all []inventory.LBInfo, arn string) bool {
	for _, lb := range all {
		if lb.ARN == arn {
			return true
		}
	}
	return false
}

// BuildConnections decides, from what was read, what each load balancer
// and target can be.
func BuildConnections(all []inventory.LBInfo, own string, sc Scope, vni map[string]uint32, targets map[string][]inventory.TargetInfo,
	instances map[string]inventory.Instance, byIP map[string]inventory.ENI, sessions []mirror.Session) []LBView {
	onENI := map[string][]mirror.Session{}
	for _, s := range sessions {
		onENI[s.ENI] = append(onENI[s.ENI], s)
	}
	names := map[string]string{}
	for _, lb := range all {
		names[lb.ARN] = lb.Name
	}
	var out []LBView
	for _, lb := range all {
		v := LBView{Name: lb.Name, ARN: lb.ARN, Type: lb.Type, Scheme: lb.Scheme, VPC: lb.VPC}
		var by []string
		if lb.ByARN {
			by = append(by, "arn")
		}
		if lb.ByTag {
			by = append(by, "tag")
		}
		v.SelectedBy = strings.Join(by, ", ")
		ts := targets[lb.ARN]
		v.Why = whyNotSelectable(lb, own, sc.VPC, ts)
		v.Selectable = v.Why == ""
		if v.SelectedBy != "" && v.Selectable {
			v.VNI = vni[lb.ARN]
		}
		for _, t := range ts {
			v.Targets = append(v.Targets, targetView(t, v, names, sc, instances, byIP, onENI))
		}
		out = append(out, v)
	}
	return out
}

// whyNotSelectable is why a load balancer cannot be mirrored, "" when it
// can.
func whyNotSelectable(lb inventory.LBInfo, own, vpc string, ts []inventory.TargetInfo) string {
	switch {
	case lb.ARN == own:
		return "the stack's own load balancer (its mirror target)"
	case lb.VPC != vpc:
		return fmt.Sprintf("in %s, not in the stack's VPC %s", orDash(lb.VPC), vpc)
	case lb.Type == inventory.TypeGateway:
		return "a gateway load balancer: its targets are appliances, not the application"
	case len(ts) == 0:
		return "no targets"
	}
	for _, t := range ts {
		if t.Type != "lambda" {
			return ""
		}
	}
	return "lambda targets only: a function has no network interface to mirror"
}

func targetView(t inventory.TargetInfo, lb LBView, names map[string]string, sc Scope, instances map[string]inventory.Instance,
	byIP map[string]inventory.ENI, onENI map[string][]mirror.Session) TargetView {
	v := TargetView{Group: t.Group, Type: t.Type, ID: t.ID, Port: t.Port, Health: t.State}
	if t.Reason != "" {
		v.Health += " (" + t.Reason + ")"
	}
	no := func(why string) TargetView { v.Mirrorable, v.Note = "no", why; return v }
	unknown := func(why string) TargetView { v.Mirrorable, v.Note = "unknown", why; return v }
	switch {
	case t.Type == "lambda":
		return no("a function has no network interface")
	case t.Type == "alb":
		v.Mirrorable, v.Note = "yes", "through "+orDash(names[t.ID])+": its own targets are mirrored"
		return v
	case !lb.Selectable:
		return no("load balancer not selectable")
	case !t.Receives():
		return no("target " + t.State + ": receives no traffic")
	}
	var eniType string
	switch t.Type {
	case "instance":
		in, ok := instances[t.ID]
		if !ok {
			return unknown("instance not found")
		}
		v.ENI, v.InstanceType, eniType = in.ENI, in.Type, "interface"
		if !in.Running() {
			return no("instance " + in.State)
		}
	case "ip":
		e, ok := byIP[t.ID]
		if !ok {
			return unknown("no network interface holds this address in the VPC")
		}
		v.ENI, eniType = e.ID, e.Type
		if in, ok := instances[e.Instance]; ok {
			v.InstanceType = in.Type
		}
	default:
		return unknown("target type " + t.Type)
	}
	v.ENIType = eniType
	for _, s := range onENI[v.ENI] {
		if sc.Mirror.Owns(s) {
			v.Ours = append(v.Ours, s.ID)
		} else {
			f := fmt.Sprintf("%s (#%d)", s.ID, s.Number)
			if o := s.Owner(); o != "" {
				f = fmt.Sprintf("%s (#%d, stack %s)", s.ID, s.Number, o)
			}
			v.Foreign = append(v.Foreign, f)
		}
	}
	sort.Strings(v.Ours)
	sort.Strings(v.Foreign)
	switch {
	case eniType != "" && eniType != "interface":
		return no("interface type " + eniType + " cannot be a source")
	case len(v.Ours) > 0:
		v.Mirrorable, v.Note = "yes", "mirrored"
		return v
	case len(v.Foreign) >= mirror.MaxSessionsPerENI:
		return no(fmt.Sprintf("%d sessions already, AWS's limit per interface", len(v.Foreign)))
	case len(v.Foreign) > 0:
		v.Mirrorable, v.Note = "yes", "other sessions on the interface: see the conflict policy"
		return v
	}
	if v.InstanceType == "" {
		v.Mirrorable, v.Note = "unknown", "no instance (e.g. Fargate): AWS decides at session creation"
		return v
	}
	switch support, why := SourceSupportOf(v.InstanceType); support {
	case Supported:
		v.Mirrorable, v.Note = "yes", why
	case NotSupported:
		return no(why)
	default:
		v.Mirrorable, v.Note = "unknown", why
	}
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Tables are the load balancers and their targets.
func (c *Connections) Tables() []*Table {
	lbs := &Table{Title: fmt.Sprintf("Load balancers of %s (stack %s, VPC %s)", c.Region, c.Stack, c.VPC),
		Header: []string{"NAME", "TYPE", "SCHEME", "VPC", "SELECTED", "VNI", "TARGETS", "NOTE"}}
	targets := &Table{Title: "Targets", Header: []string{"LOAD BALANCER", "TARGET", "TYPE", "PORT", "HEALTH", "ENI", "INSTANCE TYPE", "MIRRORABLE", "OURS", "FOREIGN", "NOTE"}}
	for _, lb := range c.LoadBalancers {
		selected := "no"
		if lb.SelectedBy != "" {
			selected = "yes (" + lb.SelectedBy + ")"
		}
		vni := ""
		if lb.VNI != 0 {
			vni = fmt.Sprint(lb.VNI)
		}
		note := lb.Why
		if note != "" {
			note = "not selectable: " + note
		} else if lb.SelectedBy == "" {
			note = "selectable"
		}
		lbs.Add(lb.Name, lb.Type, lb.Scheme, lb.VPC, selected, vni, targetSummary(lb.Targets), note)
		for _, t := range lb.Targets {
			port := ""
			if t.Port != 0 {
				port = fmt.Sprint(t.Port)
			}
			targets.Add(lb.Name, t.ID, t.Type, port, t.Health, t.ENI, t.InstanceType, t.Mirrorable,
				strings.Join(t.Ours, " "), strings.Join(t.Foreign, " "), t.Note)
		}
	}
	tables := []*Table{lbs, targets}
	if len(c.Problems) > 0 {
		p := &Table{Title: "Configured but not found", Header: []string{"LOAD BALANCER"}}
		for _, s := range c.Problems {
			p.Add(s)
		}
		tables = append(tables, p)
	}
	return tables
}

// targetSummary is "3 instance: 2 healthy, 1 unhealthy; 1 lambda".
func targetSummary(ts []TargetView) string {
	if len(ts) == 0 {
		return "0"
	}
	byType := map[string]map[string]int{}
	var types []string
	for _, t := range ts {
		if byType[t.Type] == nil {
			byType[t.Type] = map[string]int{}
			types = append(types, t.Type)
		}
		state, _, _ := strings.Cut(t.Health, " ")
		byType[t.Type][state]++
	}
	sort.Strings(types)
	var parts []string
	for _, typ := range types {
		n := 0
		var states []string
		for s, c := range byType[typ] {
			n += c
			states = append(states, fmt.Sprintf("%d %s", c, s))
		}
		sort.Strings(states)
		parts = append(parts, fmt.Sprintf("%d %s: %s", n, typ, strings.Join(states, ", ")))
	}
	return strings.Join(parts, "; ")
}

// Write prints the tables.
func (c *Connections) Write(w io.Writer) error { return writeTables(w, c.Tables()...) }
