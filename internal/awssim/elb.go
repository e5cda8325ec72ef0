package awssim

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

var elbv2Service = service{
	name:    "elbv2",
	version: "2015-12-01",
	xmlns:   "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/",
	actions: map[string]handler{
		"DescribeLoadBalancers": describeLoadBalancersV2,
		"DescribeTargetGroups":  describeTargetGroups,
		"DescribeTargetHealth":  describeTargetHealth,
		"DescribeTags":          describeTagsV2,
		"RegisterTargets":       registerTargets,
		"DeregisterTargets":     deregisterTargets,
	},
	mutating: map[string]bool{"RegisterTargets": true, "DeregisterTargets": true},
}

var elbService = service{
	name:    "elb",
	version: "2012-06-01",
	xmlns:   "http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/",
	actions: map[string]handler{
		"DescribeLoadBalancers":               describeClassicLBs,
		"DescribeTags":                        describeClassicTags,
		"RegisterInstancesWithLoadBalancer":   registerClassic,
		"DeregisterInstancesFromLoadBalancer": deregisterClassic,
	},
	mutating: map[string]bool{"RegisterInstancesWithLoadBalancer": true, "DeregisterInstancesFromLoadBalancer": true},
}

// AWS's limits for ELB pages and tag lookups.
const (
	elbMaxPageSize = 400
	elbMaxTagArns  = 20
)

// ---- XML shapes (member names from the SDK's schemas) ----

type qTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func qTags(m map[string]string) []qTag {
	var out []qTag
	for _, t := range xTags(m) {
		out = append(out, qTag{Key: t.Key, Value: t.Value})
	}
	return out
}

type qLBState struct {
	Code string `xml:"Code"`
}

type qLoadBalancer struct {
	Arn                   string   `xml:"LoadBalancerArn"`
	DNSName               string   `xml:"DNSName"`
	CanonicalHostedZoneID string   `xml:"CanonicalHostedZoneId"`
	CreatedTime           string   `xml:"CreatedTime"`
	Name                  string   `xml:"LoadBalancerName"`
	Scheme                string   `xml:"Scheme"`
	VpcID                 string   `xml:"VpcId"`
	State                 qLBState `xml:"State"`
	Type                  string   `xml:"Type"`
	IPAddressType         string   `xml:"IpAddressType"`
}

type describeLBsOut struct {
	LoadBalancers []qLoadBalancer `xml:"LoadBalancers>member"`
	NextMarker    string          `xml:"NextMarker,omitempty"`
}

type qTargetGroup struct {
	Arn              string   `xml:"TargetGroupArn"`
	Name             string   `xml:"TargetGroupName"`
	Protocol         string   `xml:"Protocol,omitempty"`
	Port             int32    `xml:"Port,omitempty"`
	VpcID            string   `xml:"VpcId,omitempty"`
	LoadBalancerArns []string `xml:"LoadBalancerArns>member"`
	TargetType       string   `xml:"TargetType"`
}

type describeTGsOut struct {
	TargetGroups []qTargetGroup `xml:"TargetGroups>member"`
	NextMarker   string         `xml:"NextMarker,omitempty"`
}

type qTarget struct {
	ID   string `xml:"Id"`
	Port int32  `xml:"Port,omitempty"`
}

type qTargetHealth struct {
	State       string `xml:"State"`
	Reason      string `xml:"Reason,omitempty"`
	Description string `xml:"Description,omitempty"`
}

type qTargetHealthDescription struct {
	Target          qTarget       `xml:"Target"`
	HealthCheckPort string        `xml:"HealthCheckPort,omitempty"`
	TargetHealth    qTargetHealth `xml:"TargetHealth"`
}

type describeTargetHealthOut struct {
	Descriptions []qTargetHealthDescription `xml:"TargetHealthDescriptions>member"`
}

type qTagDescription struct {
	ResourceArn string `xml:"ResourceArn"`
	Tags        []qTag `xml:"Tags>member"`
}

type describeTagsV2Out struct {
	TagDescriptions []qTagDescription `xml:"TagDescriptions>member"`
}

// ---- helpers ----

// markerParams reads Marker and PageSize (1–400, default 400).
func markerParams(form url.Values) (size int, cursor string, err error) {
	n, set, err := intParam(form, "PageSize")
	if err != nil {
		return 0, "", badRequest(CodeValidationError, "PageSize must be a number")
	}
	size = elbMaxPageSize
	if set {
		if n < 1 || n > elbMaxPageSize {
			return 0, "", badRequest(CodeValidationError, "1 validation error detected: Value '%d' at 'pageSize' failed to satisfy constraint: Member must have value between 1 and %d", n, elbMaxPageSize)
		}
		size = int(n)
	}
	cursor, err = decodeToken(form.Get("Marker"), CodeValidationError)
	return size, cursor, err
}

func lbShort(kind string) string {
	return map[string]string{"application": "app", "network": "net", "gateway": "gwy"}[kind]
}

func (s *state) qLoadBalancer(lb *loadBalancer) qLoadBalancer {
	return qLoadBalancer{
		Arn: lb.arn, DNSName: fmt.Sprintf("%s-%s.elb.%s.amazonaws.com", lb.name, lbShort(lb.kind), s.a.opts.Region),
		CanonicalHostedZoneID: "Z26RNL4JYFTOTI", CreatedTime: awsTime(lb.created), Name: lb.name,
		Scheme: "internal", VpcID: lb.vpc, State: qLBState{Code: "active"}, Type: lb.kind, IPAddressType: "ipv4",
	}
}

// ---- ELBv2 actions ----

func describeLoadBalancersV2(s *state, form url.Values) (any, error) {
	arns := list(form, "LoadBalancerArns.member")
	names := list(form, "Names.member")
	if len(arns) > 0 && len(names) > 0 {
		return nil, badRequest(CodeValidationError, "Load balancer names and load balancer ARNs cannot be specified at the same time")
	}
	size, cursor, err := markerParams(form)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		arn, ok := s.lbByName[n]
		if !ok {
			return nil, badRequest(CodeLoadBalancerNotFound, "Load balancers '[%s]' not found", n)
		}
		arns = append(arns, arn)
	}
	keys, err := s.lbs.pageKeys(arns, cursor, func(arn string) error {
		return badRequest(CodeLoadBalancerNotFound, "Load balancer '%s' not found", arn)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, size, func(string) bool { return true })
	out := &describeLBsOut{LoadBalancers: []qLoadBalancer{}, NextMarker: encodeToken(next)}
	for _, arn := range kept {
		lb, _ := s.lbs.get(arn)
		out.LoadBalancers = append(out.LoadBalancers, s.qLoadBalancer(lb))
	}
	return out, nil
}

func describeTargetGroups(s *state, form url.Values) (any, error) {
	lbArn := form.Get("LoadBalancerArn")
	arns := list(form, "TargetGroupArns.member")
	names := list(form, "Names.member")
	if (lbArn != "" && len(arns)+len(names) > 0) || (len(arns) > 0 && len(names) > 0) {
		return nil, badRequest(CodeValidationError, "Only one of LoadBalancerArn, TargetGroupArns and Names can be specified")
	}
	size, cursor, err := markerParams(form)
	if err != nil {
		return nil, err
	}
	if lbArn != "" {
		if _, ok := s.lbs.get(lbArn); !ok {
			return nil, badRequest(CodeLoadBalancerNotFound, "Load balancer '%s' not found", lbArn)
		}
	}
	for _, n := range names {
		found := false
		for _, tg := range s.tgs.values() {
			if tg.name == n {
				arns, found = append(arns, tg.arn), true
			}
		}
		if !found {
			return nil, badRequest(CodeTargetGroupNotFound, "One or more target groups not found")
		}
	}
	keys, err := s.tgs.pageKeys(arns, cursor, func(arn string) error {
		return badRequest(CodeTargetGroupNotFound, "Target groups '[%s]' not found", arn)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, size, func(arn string) bool {
		tg, _ := s.tgs.get(arn)
		return lbArn == "" || slices.Contains(tg.lbs, lbArn)
	})
	out := &describeTGsOut{TargetGroups: []qTargetGroup{}, NextMarker: encodeToken(next)}
	for _, arn := range kept {
		tg, _ := s.tgs.get(arn)
		out.TargetGroups = append(out.TargetGroups, qTargetGroup{
			Arn: tg.arn, Name: tg.name, Protocol: tg.protocol, Port: tg.port, VpcID: tg.vpc,
			LoadBalancerArns: slices.Clone(tg.lbs), TargetType: tg.targetType,
		})
	}
	return out, nil
}

// formTargets parses Targets.member.N.Id / .Port.
func formTargets(form url.Values) ([]qTarget, error) {
	var out []qTarget
	for _, n := range indices(form, "Targets.member") {
		p := fmt.Sprintf("Targets.member.%d.", n)
		t := qTarget{ID: form.Get(p + "Id")}
		if t.ID == "" {
			return nil, badRequest(CodeValidationError, "Target Id is required")
		}
		port, _, err := intParam(form, p+"Port")
		if err != nil {
			return nil, badRequest(CodeValidationError, "Invalid port for target %s", t.ID)
		}
		t.Port = int32(port)
		out = append(out, t)
	}
	return out, nil
}

func (s *state) targetGroup(form url.Values) (*targetGroup, error) {
	arn := form.Get("TargetGroupArn")
	tg, ok := s.tgs.get(arn)
	if !ok {
		return nil, badRequest(CodeTargetGroupNotFound, "Target groups '%s' not found", arn)
	}
	s.pruneTargets(tg)
	return tg, nil
}

func describeTargetHealth(s *state, form url.Values) (any, error) {
	tg, err := s.targetGroup(form)
	if err != nil {
		return nil, err
	}
	wanted, err := formTargets(form)
	if err != nil {
		return nil, err
	}
	out := &describeTargetHealthOut{Descriptions: []qTargetHealthDescription{}}
	describe := func(t *target) {
		st, reason, desc := s.health(tg, t)
		out.Descriptions = append(out.Descriptions, qTargetHealthDescription{
			Target: qTarget{ID: t.id, Port: t.port}, HealthCheckPort: "traffic-port",
			TargetHealth: qTargetHealth{State: st, Reason: reason, Description: desc},
		})
	}
	if len(wanted) == 0 {
		for _, t := range tg.targets {
			describe(t)
		}
		return out, nil
	}
	// Asking for specific targets: each comes back, registered or not.
	for _, w := range wanted {
		if err := s.validateTarget(tg, w.ID); err != nil {
			return nil, err
		}
		found := false
		for _, t := range tg.targets {
			if t.id == w.ID && (w.Port == 0 || t.port == w.Port) {
				describe(t)
				found = true
			}
		}
		if !found {
			out.Descriptions = append(out.Descriptions, qTargetHealthDescription{
				Target: w, TargetHealth: qTargetHealth{State: HealthUnused, Reason: "Target.NotRegistered", Description: "Target is not registered to the target group"},
			})
		}
	}
	return out, nil
}

func registerTargets(s *state, form url.Values) (any, error) {
	tg, err := s.targetGroup(form)
	if err != nil {
		return nil, err
	}
	ts, err := formTargets(form)
	if err != nil {
		return nil, err
	}
	for _, t := range ts { // validate all before changing any
		if err := s.validateTarget(tg, t.ID); err != nil {
			return nil, err
		}
	}
	for _, t := range ts {
		if err := s.register(tg, t.ID, t.Port); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func deregisterTargets(s *state, form url.Values) (any, error) {
	tg, err := s.targetGroup(form)
	if err != nil {
		return nil, err
	}
	ts, err := formTargets(form)
	if err != nil {
		return nil, err
	}
	for _, t := range ts {
		if err := s.deregisterID(tg, t.ID, t.Port); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func describeTagsV2(s *state, form url.Values) (any, error) {
	arns := list(form, "ResourceArns.member")
	if len(arns) == 0 || len(arns) > elbMaxTagArns {
		return nil, badRequest(CodeValidationError, "1 validation error detected: Value at 'resourceArns' failed to satisfy constraint: Member must have length between 1 and %d", elbMaxTagArns)
	}
	out := &describeTagsV2Out{TagDescriptions: []qTagDescription{}}
	for _, arn := range arns {
		var tags map[string]string
		switch {
		case strings.Contains(arn, ":loadbalancer/"):
			lb, ok := s.lbs.get(arn)
			if !ok {
				return nil, badRequest(CodeLoadBalancerNotFound, "Load balancer '%s' not found", arn)
			}
			tags = lb.tags
		case strings.Contains(arn, ":targetgroup/"):
			tg, ok := s.tgs.get(arn)
			if !ok {
				return nil, badRequest(CodeTargetGroupNotFound, "Target groups '%s' not found", arn)
			}
			tags = tg.tags
		default:
			return nil, badRequest(CodeValidationError, "'%s' is not a valid load balancer or target group ARN", arn)
		}
		out.TagDescriptions = append(out.TagDescriptions, qTagDescription{ResourceArn: arn, Tags: qTags(tags)})
	}
	return out, nil
}

// ---- Classic ELB ----

type qInstance struct {
	InstanceID string `xml:"InstanceId"`
}

type qClassicLB struct {
	Name        string      `xml:"LoadBalancerName"`
	DNSName     string      `xml:"DNSName"`
	VPCID       string      `xml:"VPCId"`
	Instances   []qInstance `xml:"Instances>member"`
	CreatedTime string      `xml:"CreatedTime"`
	Scheme      string      `xml:"Scheme"`
}

type describeClassicOut struct {
	LoadBalancerDescriptions []qClassicLB `xml:"LoadBalancerDescriptions>member"`
	NextMarker               string       `xml:"NextMarker,omitempty"`
}

type qClassicTagDescription struct {
	Name string `xml:"LoadBalancerName"`
	Tags []qTag `xml:"Tags>member"`
}

type describeClassicTagsOut struct {
	TagDescriptions []qClassicTagDescription `xml:"TagDescriptions>member"`
}

type classicInstancesOut struct {
	Instances []qInstance `xml:"Instances>member"`
}

func qInstances(ids []string) []qInstance {
	out := []qInstance{}
	for _, id := range ids {
		out = append(out, qInstance{InstanceID: id})
	}
	return out
}

func describeClassicLBs(s *state, form url.Values) (any, error) {
	names := list(form, "LoadBalancerNames.member")
	size, cursor, err := markerParams(form)
	if err != nil {
		return nil, err
	}
	keys, err := s.classics.pageKeys(names, cursor, func(n string) error {
		return badRequest(CodeLoadBalancerNotFound, "There is no ACTIVE Load Balancer named '%s'", n)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, size, func(string) bool { return true })
	out := &describeClassicOut{LoadBalancerDescriptions: []qClassicLB{}, NextMarker: encodeToken(next)}
	for _, n := range kept {
		c, _ := s.classics.get(n)
		out.LoadBalancerDescriptions = append(out.LoadBalancerDescriptions, qClassicLB{
			Name: c.name, DNSName: fmt.Sprintf("internal-%s.%s.elb.amazonaws.com", c.name, s.a.opts.Region),
			VPCID: c.vpc, Instances: qInstances(c.instances), CreatedTime: awsTime(c.created), Scheme: "internal",
		})
	}
	return out, nil
}

func describeClassicTags(s *state, form url.Values) (any, error) {
	names := list(form, "LoadBalancerNames.member")
	if len(names) == 0 || len(names) > elbMaxTagArns {
		return nil, badRequest(CodeValidationError, "1 validation error detected: Value at 'loadBalancerNames' failed to satisfy constraint: Member must have length between 1 and %d", elbMaxTagArns)
	}
	out := &describeClassicTagsOut{TagDescriptions: []qClassicTagDescription{}}
	for _, n := range names {
		c, ok := s.classics.get(n)
		if !ok {
			return nil, badRequest(CodeLoadBalancerNotFound, "There is no ACTIVE Load Balancer named '%s'", n)
		}
		out.TagDescriptions = append(out.TagDescriptions, qClassicTagDescription{Name: n, Tags: qTags(c.tags)})
	}
	return out, nil
}

func (s *state) classicFromForm(form url.Values) (*classicLB, []string, error) {
	name := form.Get("LoadBalancerName")
	c, ok := s.classics.get(name)
	if !ok {
		return nil, nil, badRequest(CodeLoadBalancerNotFound, "There is no ACTIVE Load Balancer named '%s'", name)
	}
	var ids []string
	for _, n := range indices(form, "Instances.member") {
		ids = append(ids, form.Get(fmt.Sprintf("Instances.member.%d.InstanceId", n)))
	}
	return c, ids, nil
}

func registerClassic(s *state, form url.Values) (any, error) {
	c, ids, err := s.classicFromForm(form)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if in, ok := s.instances.get(id); !ok || in.state == StateTerminated {
			return nil, badRequest("InvalidInstance", "EC2 instance %s is not in a valid state", id)
		}
	}
	for _, id := range ids {
		if !slices.Contains(c.instances, id) {
			c.instances = append(c.instances, id)
		}
	}
	return &classicInstancesOut{Instances: qInstances(c.instances)}, nil
}

func deregisterClassic(s *state, form url.Values) (any, error) {
	c, ids, err := s.classicFromForm(form)
	if err != nil {
		return nil, err
	}
	c.instances = slices.DeleteFunc(c.instances, func(id string) bool { return slices.Contains(ids, id) })
	return &classicInstancesOut{Instances: qInstances(c.instances)}, nil
}
