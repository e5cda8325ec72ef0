package awssim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The Auto Scaling API, as far as apitap reads and changes it: which
// target groups and Classic load balancers a group attaches its instances
// to (the orchestrator), and a sniffer fleet's instance types, subnets,
// sizes and instances (diagnosis and remediation). The SDK's autoscaling
// client (v1.81.0) speaks the Query protocol, Version 2011-01-01.
//
// Groups are made from Go: AddAutoScalingGroup (attachments; the members
// are the EC2 instances put in the group with SetInstanceGroup) and
// AddFleetGroup (sizes, a mixed instances policy and subnets; members from
// AddGroupInstance). The account launches nothing: it never replaces an
// instance or acts on the desired capacity.
var autoscalingService = service{
	name:    "autoscaling",
	version: "2011-01-01",
	xmlns:   "http://autoscaling.amazonaws.com/doc/2011-01-01/",
	actions: map[string]handler{
		"DescribeAutoScalingGroups":           describeAutoScalingGroups,
		"UpdateAutoScalingGroup":              updateAutoScalingGroup,
		"SetInstanceHealth":                   setInstanceHealth,
		"TerminateInstanceInAutoScalingGroup": terminateInstanceInAutoScalingGroup,
	},
	mutating: map[string]bool{
		"UpdateAutoScalingGroup": true, "SetInstanceHealth": true, "TerminateInstanceInAutoScalingGroup": true,
	},
}

// Auto Scaling's generic client error (HTTP 400), which it also answers
// for names and instances it does not know; and its error for a bad
// NextToken (DescribeAutoScalingGroups' errors).
const (
	CodeASGValidation       = "ValidationError"
	CodeASGInvalidNextToken = "InvalidNextToken"
)

// Health and lifecycle states of a group's instance (Instance data type:
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Instance.html).
const (
	ASGHealthy     = "Healthy"
	ASGUnhealthy   = "Unhealthy"
	ASGInService   = "InService"
	ASGTerminating = "Terminating"
)

// Limits: DescribeAutoScalingGroups' MaxRecords (default 50, maximum 100)
// and a mixed instances policy's overrides (at most 40, LaunchTemplate
// data type: https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LaunchTemplate.html).
const (
	asgPageDefault  = 50
	asgPageMax      = 100
	asgMaxOverrides = 40
)

type autoScalingGroup struct {
	name         string
	targetGroups []string
	classics     []string
	created      time.Time

	// fleet is set for groups from AddFleetGroup: their sizes are kept,
	// not derived from their members.
	fleet                     bool
	minSize, maxSize, desired int
	types                     []string // the overrides' instance types; nil: no mixed instances policy
	subnets                   []string
	members                   []*groupInstance
	terminated                []string
}

type groupInstance struct {
	id, az, lifecycle, health string
}

// GroupInstance is one instance of an Auto Scaling group.
type GroupInstance struct {
	InstanceID       string
	AvailabilityZone string
	LifecycleState   string // InService, Terminating, ...
	HealthStatus     string // Healthy or Unhealthy
}

// AutoScalingGroup is a group's state, as DescribeAutoScalingGroups
// reports it, plus the instances terminated through the API.
type AutoScalingGroup struct {
	Name                               string
	MinSize, MaxSize, DesiredCapacity  int
	InstanceTypes                      []string // the mixed instances policy's overrides; nil when it has none
	Subnets                            []string // VPCZoneIdentifier, split
	TargetGroupARNs, LoadBalancerNames []string
	Instances                          []GroupInstance
	Terminated                         []string // TerminateInstanceInAutoScalingGroup's instances, in order
}

// instancesOf lists a group's instances: those added with AddGroupInstance
// (or touched through the API), then the account's live EC2 instances put
// in the group with SetInstanceGroup, which are in service and healthy.
// The account does not place EC2 instances in zones: those report the
// region's first zone.
func (s *state) instancesOf(g *autoScalingGroup) []*groupInstance {
	out := slices.Clone(g.members)
	for _, in := range s.instances.values() {
		if in.asg == g.name && in.state != StateTerminated &&
			!slices.ContainsFunc(g.members, func(m *groupInstance) bool { return m.id == in.id }) &&
			!slices.Contains(g.terminated, in.id) {
			out = append(out, &groupInstance{id: in.id, az: s.a.opts.Zones[0], lifecycle: ASGInService, health: ASGHealthy})
		}
	}
	return out
}

// view is a group's state now. Groups from AddAutoScalingGroup report
// MinSize 0, DesiredCapacity their number of instances and MaxSize one
// more.
func (s *state) view(g *autoScalingGroup) AutoScalingGroup {
	v := AutoScalingGroup{
		Name: g.name, InstanceTypes: slices.Clone(g.types), Subnets: slices.Clone(g.subnets),
		TargetGroupARNs: slices.Clone(g.targetGroups), LoadBalancerNames: slices.Clone(g.classics),
		Terminated: slices.Clone(g.terminated),
	}
	for _, m := range s.instancesOf(g) {
		v.Instances = append(v.Instances, GroupInstance{InstanceID: m.id, AvailabilityZone: m.az, LifecycleState: m.lifecycle, HealthStatus: m.health})
	}
	if g.fleet {
		v.MinSize, v.MaxSize, v.DesiredCapacity = g.minSize, g.maxSize, g.desired
	} else {
		v.MinSize, v.MaxSize, v.DesiredCapacity = 0, len(v.Instances)+1, len(v.Instances)
	}
	return v
}

// findGroupInstance finds the group of an instance and its entry, making
// an entry for an EC2 instance put in the group with SetInstanceGroup.
func (s *state) findGroupInstance(id string) (*autoScalingGroup, *groupInstance) {
	for _, name := range slices.Sorted(maps.Keys(s.asgs)) {
		g := s.asgs[name]
		for _, m := range s.instancesOf(g) {
			if m.id != id {
				continue
			}
			if !slices.Contains(g.members, m) {
				g.members = append(g.members, m)
			}
			return g, m
		}
	}
	return nil, nil
}

type qASGInstance struct {
	InstanceID           string `xml:"InstanceId"`
	AvailabilityZone     string `xml:"AvailabilityZone"`
	LifecycleState       string `xml:"LifecycleState"`
	HealthStatus         string `xml:"HealthStatus"`
	ProtectedFromScaleIn bool   `xml:"ProtectedFromScaleIn"`
}

type qLTSpec struct {
	LaunchTemplateName string `xml:"LaunchTemplateName"`
	Version            string `xml:"Version"`
}

type qLTOverride struct {
	InstanceType string `xml:"InstanceType"`
}

type qMixedInstancesPolicy struct {
	Spec      qLTSpec       `xml:"LaunchTemplate>LaunchTemplateSpecification"`
	Overrides []qLTOverride `xml:"LaunchTemplate>Overrides>member"`
}

type qASG struct {
	Name                   string                 `xml:"AutoScalingGroupName"`
	ARN                    string                 `xml:"AutoScalingGroupARN"`
	MixedInstancesPolicy   *qMixedInstancesPolicy `xml:"MixedInstancesPolicy,omitempty"`
	MinSize                int                    `xml:"MinSize"`
	MaxSize                int                    `xml:"MaxSize"`
	DesiredCapacity        int                    `xml:"DesiredCapacity"`
	DefaultCooldown        int                    `xml:"DefaultCooldown"`
	AvailabilityZones      []string               `xml:"AvailabilityZones>member"`
	LoadBalancerNames      []string               `xml:"LoadBalancerNames>member"`
	TargetGroupARNs        []string               `xml:"TargetGroupARNs>member"`
	HealthCheckType        string                 `xml:"HealthCheckType"`
	HealthCheckGracePeriod int                    `xml:"HealthCheckGracePeriod"`
	Instances              []qASGInstance         `xml:"Instances>member"`
	CreatedTime            string                 `xml:"CreatedTime"`
	VPCZoneIdentifier      string                 `xml:"VPCZoneIdentifier,omitempty"`
}

type describeASGsOut struct {
	Groups    []qASG `xml:"AutoScalingGroups>member"`
	NextToken string `xml:"NextToken,omitempty"`
}

func (s *state) asgARN(name string) string {
	return fmt.Sprintf("arn:aws:autoscaling:%s:%s:autoScalingGroup:0:autoScalingGroupName/%s", s.a.opts.Region, s.a.opts.AccountID, name)
}

// qGroup is the group as DescribeAutoScalingGroups returns it. Fields the
// account does not model have the API's defaults for a group created
// without them (DefaultCooldown 300, HealthCheckType EC2, grace period 0:
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html).
// The mixed instances policy's launch template is named after the group,
// version $Default: the account keeps no launch templates.
// AvailabilityZones are the zones of the group's subnets that the account
// has, else of its instances.
func (s *state) qGroup(g *autoScalingGroup) qASG {
	v := s.view(g)
	q := qASG{
		Name: g.name, ARN: s.asgARN(g.name),
		MinSize: v.MinSize, MaxSize: v.MaxSize, DesiredCapacity: v.DesiredCapacity,
		DefaultCooldown: 300, HealthCheckType: "EC2", CreatedTime: awsTime(g.created),
		TargetGroupARNs: v.TargetGroupARNs, LoadBalancerNames: v.LoadBalancerNames,
		VPCZoneIdentifier: strings.Join(g.subnets, ","),
	}
	if g.types != nil {
		q.MixedInstancesPolicy = &qMixedInstancesPolicy{Spec: qLTSpec{LaunchTemplateName: g.name, Version: "$Default"}}
		for _, t := range g.types {
			q.MixedInstancesPolicy.Overrides = append(q.MixedInstancesPolicy.Overrides, qLTOverride{InstanceType: t})
		}
	}
	zones := map[string]bool{}
	for _, id := range g.subnets {
		if sn, ok := s.subnets.get(id); ok {
			zones[sn.zone] = true
		}
	}
	for _, in := range v.Instances {
		q.Instances = append(q.Instances, qASGInstance{InstanceID: in.InstanceID, AvailabilityZone: in.AvailabilityZone,
			LifecycleState: in.LifecycleState, HealthStatus: in.HealthStatus})
		if len(g.subnets) == 0 || len(zones) == 0 {
			zones[in.AvailabilityZone] = true
		}
	}
	q.AvailabilityZones = slices.Sorted(maps.Keys(zones))
	return q
}

// describeAutoScalingGroups answers with the named groups (names the
// account does not have are left out), or with every group in name order,
// MaxRecords (default 50, at most 100) at a time with a NextToken.
// Filters are not modelled.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeAutoScalingGroups.html
func describeAutoScalingGroups(s *state, form url.Values) (any, error) {
	if len(indices(form, "Filters.member")) > 0 {
		return nil, badRequest(CodeASGValidation, "awssim does not model Filters in DescribeAutoScalingGroups")
	}
	maxRecords, set, err := intParam(form, "MaxRecords")
	if err != nil {
		return nil, badRequest(CodeASGValidation, "Invalid MaxRecords %s", form.Get("MaxRecords"))
	}
	if !set {
		maxRecords = asgPageDefault
	}
	if maxRecords < 1 || maxRecords > asgPageMax {
		return nil, badRequest(CodeASGValidation, "1 validation error detected: Value '%d' at 'maxRecords' failed to satisfy constraint: Member must have value between 1 and %d", maxRecords, asgPageMax)
	}
	cursor, err := decodeToken(form.Get("NextToken"), CodeASGInvalidNextToken)
	if err != nil {
		return nil, err
	}
	names := list(form, "AutoScalingGroupNames.member")
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(s.asgs))
	}
	names = afterCursor(names, cursor)
	kept, next := page(names, int(maxRecords), func(n string) bool { return s.asgs[n] != nil })
	out := &describeASGsOut{Groups: []qASG{}, NextToken: encodeToken(next)}
	for _, name := range kept {
		out.Groups = append(out.Groups, s.qGroup(s.asgs[name]))
	}
	return out, nil
}

func (s *state) asgByName(name string) (*autoScalingGroup, error) {
	if name == "" {
		return nil, badRequest(CodeASGValidation, "1 validation error detected: Value null at 'autoScalingGroupName' failed to satisfy constraint: Member must not be null")
	}
	g, ok := s.asgs[name]
	if !ok {
		return nil, badRequest(CodeASGValidation, "AutoScalingGroup name not found - AutoScalingGroup %s not found", name)
	}
	return g, nil
}

// updateAutoScalingGroup changes a group's sizes, subnets
// (VPCZoneIdentifier, comma-separated; not checked against the account's
// subnets) and the instance types of its mixed instances policy
// (MixedInstancesPolicy.LaunchTemplate.Overrides replaces the list; the
// policy's other members are accepted and not kept). As the reference
// says, a new MinSize above the desired capacity raises it and a new
// MaxSize below lowers it when DesiredCapacity is not given; a desired
// capacity outside [MinSize, MaxSize] is refused (ValidationError). The
// reference documents no error for an unknown group; the account answers
// ValidationError. Updating a group from AddAutoScalingGroup makes its
// sizes its own from then on.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html
func updateAutoScalingGroup(s *state, form url.Values) (any, error) {
	g, err := s.asgByName(form.Get("AutoScalingGroupName"))
	if err != nil {
		return nil, err
	}
	v := s.view(g)
	minSize, maxSize, desired := v.MinSize, v.MaxSize, v.DesiredCapacity
	var desiredSet bool
	for _, p := range []struct {
		name string
		dst  *int
		set  *bool
	}{{"MinSize", &minSize, nil}, {"MaxSize", &maxSize, nil}, {"DesiredCapacity", &desired, &desiredSet}} {
		n, set, err := intParam(form, p.name)
		if err != nil {
			return nil, badRequest(CodeASGValidation, "Invalid %s %s", p.name, form.Get(p.name))
		}
		if set {
			*p.dst = int(n)
			if p.set != nil {
				*p.set = true
			}
		}
	}
	if minSize < 0 || minSize > maxSize {
		return nil, badRequest(CodeASGValidation, "The MinSize (%d) must be less than or equal to the MaxSize (%d).", minSize, maxSize)
	}
	if !desiredSet {
		desired = min(max(desired, minSize), maxSize)
	}
	if desired < minSize || desired > maxSize {
		return nil, badRequest(CodeASGValidation, "Desired capacity:%d must be between the specified min size:%d and max size:%d", desired, minSize, maxSize)
	}
	const overrides = "MixedInstancesPolicy.LaunchTemplate.Overrides"
	var types []string
	typesSet := false
	if _, ok := form[overrides]; ok { // an empty list
		typesSet = true
	}
	for _, n := range indices(form, overrides+".member") {
		typesSet = true
		if t := form.Get(fmt.Sprintf("%s.member.%d.InstanceType", overrides, n)); t != "" {
			types = append(types, t)
		}
	}
	if len(types) > asgMaxOverrides {
		return nil, badRequest(CodeASGValidation, "1 validation error detected: Value at 'mixedInstancesPolicy.launchTemplate.overrides' failed to satisfy constraint: Member must have length less than or equal to %d", asgMaxOverrides)
	}
	if _, ok := form["VPCZoneIdentifier"]; ok {
		g.subnets = splitSubnets(form.Get("VPCZoneIdentifier"))
	}
	if typesSet {
		g.types = append([]string{}, types...)
	}
	g.fleet, g.minSize, g.maxSize, g.desired = true, minSize, maxSize, desired
	return nil, nil
}

func splitSubnets(v string) []string {
	var out []string
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// setInstanceHealth sets the health status of a group's instance, Healthy
// or Unhealthy. The account keeps the status and does nothing else: AWS
// would replace an unhealthy instance. ShouldRespectGracePeriod is
// accepted (the account has no grace period). The reference documents no
// error for an instance in no group; the account answers ValidationError.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SetInstanceHealth.html
func setInstanceHealth(s *state, form url.Values) (any, error) {
	id, health := form.Get("InstanceId"), form.Get("HealthStatus")
	if health != ASGHealthy && health != ASGUnhealthy {
		return nil, badRequest(CodeASGValidation, "The health status '%s' is not valid: it must be Healthy or Unhealthy.", health)
	}
	_, m := s.findGroupInstance(id)
	if m == nil {
		return nil, badRequest(CodeASGValidation, "Instance Id not found - No managed instance found for instance ID: %s", id)
	}
	m.health = health
	return nil, nil
}

type qActivity struct {
	ActivityID           string `xml:"ActivityId"`
	AutoScalingGroupName string `xml:"AutoScalingGroupName"`
	AutoScalingGroupARN  string `xml:"AutoScalingGroupARN"`
	Description          string `xml:"Description"`
	Cause                string `xml:"Cause"`
	StartTime            string `xml:"StartTime"`
	StatusCode           string `xml:"StatusCode"`
	Progress             int    `xml:"Progress"`
}

type terminateOut struct {
	Activity qActivity `xml:"Activity"`
}

// terminateInstanceInAutoScalingGroup terminates a group's instance: the
// instance is marked Terminating and leaves the group at once (it is
// recorded in AutoScalingGroup.Terminated), and an EC2 instance of that id
// in the account is terminated. With ShouldDecrementDesiredCapacity the
// desired capacity drops by one, refused (ValidationError) below MinSize;
// without, the desired capacity stays and AWS would launch a replacement,
// which the account does not. The answer is the scaling activity,
// InProgress.
// https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html
func terminateInstanceInAutoScalingGroup(s *state, form url.Values) (any, error) {
	id := form.Get("InstanceId")
	decrement := form.Get("ShouldDecrementDesiredCapacity")
	if decrement != "true" && decrement != "false" {
		return nil, badRequest(CodeASGValidation, "1 validation error detected: Value null at 'shouldDecrementDesiredCapacity' failed to satisfy constraint: Member must not be null")
	}
	g, m := s.findGroupInstance(id)
	if m == nil {
		return nil, badRequest(CodeASGValidation, "Instance Id not found - No managed instance found for instance ID: %s", id)
	}
	v := s.view(g)
	if decrement == "true" && v.DesiredCapacity-1 < v.MinSize {
		return nil, badRequest(CodeASGValidation, "Currently, desiredCapacity (%d) is less than or equal to minSize (%d). Can't decrement desiredCapacity.", v.DesiredCapacity, v.MinSize)
	}
	if in, ok := s.instances.get(id); ok {
		if err := s.setInstanceState(in, StateTerminated); err != nil {
			return nil, err
		}
	}
	m.lifecycle = ASGTerminating
	// A group from AddAutoScalingGroup keeps its sizes from here on, so
	// that terminating without decrementing leaves DesiredCapacity as is.
	g.fleet, g.minSize, g.maxSize, g.desired = true, v.MinSize, v.MaxSize, v.DesiredCapacity
	if decrement == "true" {
		g.desired--
	}
	g.members = slices.DeleteFunc(g.members, func(x *groupInstance) bool { return x == m })
	g.terminated = append(g.terminated, id)
	s.seq["asg-activity"]++
	n := s.seq["asg-activity"]
	now := s.now()
	return &terminateOut{Activity: qActivity{
		ActivityID:           fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
		AutoScalingGroupName: g.name, AutoScalingGroupARN: s.asgARN(g.name),
		Description: "Terminating EC2 instance: " + id,
		Cause:       fmt.Sprintf("At %s instance %s was taken out of service in response to a user request.", now.Format("2006-01-02T15:04:05Z"), id),
		StartTime:   awsTime(now), StatusCode: "InProgress",
	}}, nil
}

// AddAutoScalingGroup makes an Auto Scaling group that attaches its
// instances to the given target groups and Classic load balancers (the
// attaching itself is Register / SetClassicInstances, as AWS does it).
func (a *Account) AddAutoScalingGroup(name string, targetGroupARNs, classicNames []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.st.asgs[name]; ok {
		return fmt.Errorf("awssim: auto scaling group %s exists", name)
	}
	a.st.asgs[name] = &autoScalingGroup{name: name, targetGroups: slices.Clone(targetGroupARNs), classics: slices.Clone(classicNames), created: a.st.now()}
	return nil
}

// AddFleetGroup makes an Auto Scaling group with a mixed instances policy
// whose overrides are types (nil: no policy), in the given subnets, with
// the given sizes (min <= desired <= max). Its instances come from
// AddGroupInstance.
func (a *Account) AddFleetGroup(name string, types, subnets []string, minSize, maxSize, desired int) error {
	if minSize < 0 || minSize > desired || desired > maxSize {
		return fmt.Errorf("awssim: group %s: sizes must satisfy 0 <= min %d <= desired %d <= max %d", name, minSize, desired, maxSize)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.st.asgs[name]; ok || name == "" {
		return fmt.Errorf("awssim: auto scaling group %q is empty or exists", name)
	}
	a.st.asgs[name] = &autoScalingGroup{
		name: name, created: a.st.now(), fleet: true, minSize: minSize, maxSize: maxSize, desired: desired,
		types: slices.Clone(types), subnets: slices.Clone(subnets),
	}
	return nil
}

// AddGroupInstance puts an instance in service in a group, in zone az,
// with health Healthy or Unhealthy. The instance need not exist in EC2.
func (a *Account) AddGroupInstance(group, instanceID, az, health string) error {
	if health != ASGHealthy && health != ASGUnhealthy {
		return fmt.Errorf("awssim: health %q is neither %s nor %s", health, ASGHealthy, ASGUnhealthy)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.st.asgs[group]
	if !ok {
		return fmt.Errorf("awssim: no auto scaling group %s", group)
	}
	if og, _ := a.st.findGroupInstance(instanceID); og != nil {
		return fmt.Errorf("awssim: instance %s is already in group %s", instanceID, og.name)
	}
	g.members = append(g.members, &groupInstance{id: instanceID, az: az, lifecycle: ASGInService, health: health})
	return nil
}

// Group returns a group's current state; false when there is no such
// group.
func (a *Account) Group(name string) (AutoScalingGroup, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, ok := a.st.asgs[name]
	if !ok {
		return AutoScalingGroup{}, false
	}
	return a.st.view(g), true
}

// SetInstanceGroup makes an instance a member of an Auto Scaling group.
func (a *Account) SetInstanceGroup(instanceID, group string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	in, ok := a.st.instances.get(instanceID)
	if !ok {
		return fmt.Errorf("awssim: no instance %s", instanceID)
	}
	if _, ok := a.st.asgs[group]; !ok {
		return fmt.Errorf("awssim: no auto scaling group %s", group)
	}
	in.asg = group
	if in.tags == nil {
		in.tags = map[string]string{}
	}
	in.tags["aws:autoscaling:groupName"] = group
	return nil
}
