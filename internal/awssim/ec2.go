package awssim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var ec2Service = service{
	name:    "ec2",
	version: "2016-11-15",
	xmlns:   "http://ec2.amazonaws.com/doc/2016-11-15/",
	ec2:     true,
	actions: map[string]handler{
		"DescribeInstances":             describeInstances,
		"DescribeNetworkInterfaces":     describeNetworkInterfaces,
		"DescribeTrafficMirrorSessions": describeTrafficMirrorSessions,
		"DescribeTrafficMirrorTargets":  describeTrafficMirrorTargets,
		"DescribeTrafficMirrorFilters":  describeTrafficMirrorFilters,
		"CreateTrafficMirrorSession":    createTrafficMirrorSession,
		"DeleteTrafficMirrorSession":    deleteTrafficMirrorSession,
		"CreateTags":                    createTags,
		"DeleteTags":                    deleteTags,
		"DescribeTags":                  describeTags,
		"DescribeVpcs":                  describeVpcs,
		"DescribeSubnets":               describeSubnets,
		"DescribeAvailabilityZones":     describeAvailabilityZones,
		"DescribeInstanceTypeOfferings": describeInstanceTypeOfferings,
	},
	mutating: map[string]bool{
		"CreateTrafficMirrorSession": true,
		"DeleteTrafficMirrorSession": true,
		"CreateTags":                 true,
		"DeleteTags":                 true,
	},
}

// AWS's page limits (MaxResults ranges) per EC2 Describe call.
const (
	ec2MinResults = 5
	ec2MaxResults = 1000
)

// ---- XML shapes (element names as the SDK's ec2query deserializers read them) ----

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func xTags(m map[string]string) []xTag {
	out := make([]xTag, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, xTag{Key: k, Value: m[k]})
	}
	return out
}

type xPrivateIP struct {
	IP      string `xml:"privateIpAddress"`
	Primary bool   `xml:"primary"`
}

func xPrivateIPs(ips []string) []xPrivateIP {
	out := make([]xPrivateIP, len(ips))
	for i, ip := range ips {
		out[i] = xPrivateIP{IP: ip, Primary: i == 0}
	}
	return out
}

type xInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type xInstanceAttachment struct {
	ID                  string `xml:"attachmentId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
}

type xInstanceENI struct {
	ID            string              `xml:"networkInterfaceId"`
	VpcID         string              `xml:"vpcId"`
	Description   string              `xml:"description"`
	OwnerID       string              `xml:"ownerId"`
	Status        string              `xml:"status"`
	MAC           string              `xml:"macAddress"`
	PrivateIP     string              `xml:"privateIpAddress"`
	InterfaceType string              `xml:"interfaceType"`
	Attachment    xInstanceAttachment `xml:"attachment"`
	PrivateIPs    []xPrivateIP        `xml:"privateIpAddressesSet>item"`
}

type xInstance struct {
	InstanceID   string         `xml:"instanceId"`
	ImageID      string         `xml:"imageId"`
	State        xInstanceState `xml:"instanceState"`
	PrivateIP    string         `xml:"privateIpAddress,omitempty"`
	InstanceType string         `xml:"instanceType"`
	LaunchTime   string         `xml:"launchTime"`
	VpcID        string         `xml:"vpcId,omitempty"`
	ENIs         []xInstanceENI `xml:"networkInterfaceSet>item"`
	Tags         []xTag         `xml:"tagSet>item"`
}

type xReservation struct {
	ID        string      `xml:"reservationId"`
	OwnerID   string      `xml:"ownerId"`
	Instances []xInstance `xml:"instancesSet>item"`
}

type describeInstancesOut struct {
	ec2Meta
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type xENIAttachment struct {
	ID                  string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	DeviceIndex         int    `xml:"deviceIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
	NetworkCardIndex    int    `xml:"networkCardIndex"`
}

type xENI struct {
	ID               string          `xml:"networkInterfaceId"`
	VpcID            string          `xml:"vpcId"`
	AZ               string          `xml:"availabilityZone"`
	Description      string          `xml:"description"`
	OwnerID          string          `xml:"ownerId"`
	RequesterManaged bool            `xml:"requesterManaged"`
	Status           string          `xml:"status"`
	MAC              string          `xml:"macAddress"`
	PrivateIP        string          `xml:"privateIpAddress"`
	SourceDestCheck  bool            `xml:"sourceDestCheck"`
	InterfaceType    string          `xml:"interfaceType"`
	Attachment       *xENIAttachment `xml:"attachment,omitempty"`
	PrivateIPs       []xPrivateIP    `xml:"privateIpAddressesSet>item"`
	Tags             []xTag          `xml:"tagSet>item"`
}

type describeENIsOut struct {
	ec2Meta
	ENIs      []xENI `xml:"networkInterfaceSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

type xSession struct {
	ID            string `xml:"trafficMirrorSessionId"`
	TargetID      string `xml:"trafficMirrorTargetId"`
	FilterID      string `xml:"trafficMirrorFilterId"`
	ENI           string `xml:"networkInterfaceId"`
	OwnerID       string `xml:"ownerId"`
	PacketLength  *int32 `xml:"packetLength,omitempty"`
	SessionNumber int32  `xml:"sessionNumber"`
	VNI           int32  `xml:"virtualNetworkId"`
	Description   string `xml:"description,omitempty"`
	Tags          []xTag `xml:"tagSet>item"`
}

type describeSessionsOut struct {
	ec2Meta
	Sessions  []xSession `xml:"trafficMirrorSessionSet>item"`
	NextToken string     `xml:"nextToken,omitempty"`
}

type createSessionOut struct {
	ec2Meta
	Session     xSession `xml:"trafficMirrorSession"`
	ClientToken string   `xml:"clientToken,omitempty"`
}

type deleteSessionOut struct {
	ec2Meta
	ID string `xml:"trafficMirrorSessionId"`
}

type xMirrorTarget struct {
	ID          string `xml:"trafficMirrorTargetId"`
	NLB         string `xml:"networkLoadBalancerArn"`
	Type        string `xml:"type"`
	Description string `xml:"description,omitempty"`
	OwnerID     string `xml:"ownerId"`
	Tags        []xTag `xml:"tagSet>item"`
}

type describeTargetsOut struct {
	ec2Meta
	Targets   []xMirrorTarget `xml:"trafficMirrorTargetSet>item"`
	NextToken string          `xml:"nextToken,omitempty"`
}

type xMirrorFilter struct {
	ID          string `xml:"trafficMirrorFilterId"`
	Description string `xml:"description,omitempty"`
	Tags        []xTag `xml:"tagSet>item"`
}

type describeFiltersOut struct {
	ec2Meta
	Filters   []xMirrorFilter `xml:"trafficMirrorFilterSet>item"`
	NextToken string          `xml:"nextToken,omitempty"`
}

type returnOut struct {
	ec2Meta
	Return bool `xml:"return"`
}

type xTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

type describeTagsOut struct {
	ec2Meta
	Tags      []xTagDescription `xml:"tagSet>item"`
	NextToken string            `xml:"nextToken,omitempty"`
}

// ---- request helpers ----

// pageParams reads MaxResults and NextToken. ids are the explicit ids of
// the call; exclusive says AWS refuses MaxResults together with them.
// Without MaxResults a page holds up to 1,000 items and may still carry a
// NextToken (AWS also paginates then), so callers must follow it.
func pageParams(form url.Values, ids []string, exclusive bool) (max int, cursor string, err error) {
	n, set, err := intParam(form, "MaxResults")
	if err != nil {
		return 0, "", err
	}
	max = ec2MaxResults
	if set {
		if exclusive && len(ids) > 0 {
			return 0, "", badRequest(CodeInvalidParameterCombination, "The parameter MaxResults cannot be used with the parameter %s", "ids")
		}
		if n < ec2MinResults || n > ec2MaxResults {
			return 0, "", badRequest(CodeInvalidParameterValue, "Value ( %d ) for parameter maxResults is invalid. Expecting a value between %d and %d.", n, ec2MinResults, ec2MaxResults)
		}
		max = int(n)
	}
	cursor, err = decodeToken(form.Get("NextToken"), CodeInvalidPaginationToken)
	return max, cursor, err
}

// ---- DescribeInstances ----

var instanceFilters = filterSet[*instanceView]{
	"instance-id":         func(v *instanceView) []string { return []string{v.in.id} },
	"vpc-id":              func(v *instanceView) []string { return []string{v.in.vpc} },
	"instance-state-name": func(v *instanceView) []string { return []string{v.in.state} },
	"instance-state-code": func(v *instanceView) []string {
		return []string{strconv.Itoa(instanceStateCodes[v.in.state])}
	},
	"instance-type":      func(v *instanceView) []string { return []string{v.in.typ} },
	"reservation-id":     func(v *instanceView) []string { return []string{v.in.reservation} },
	"private-ip-address": func(v *instanceView) []string { return v.primaryIP() },
	"network-interface.network-interface-id": func(v *instanceView) []string {
		return v.in.enis
	},
	"network-interface.addresses.private-ip-address": func(v *instanceView) []string {
		var ips []string
		for _, e := range v.enis() {
			ips = append(ips, e.ips...)
		}
		return ips
	},
}

// instanceView is an instance with access to the state, for filters.
type instanceView struct {
	s  *state
	in *instance
}

func (v *instanceView) enis() []*eni {
	var out []*eni
	for _, id := range v.in.enis {
		if e, ok := v.s.enis.get(id); ok {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].attach.device < out[j].attach.device })
	return out
}

func (v *instanceView) primaryIP() []string {
	if e := v.in.primaryENI(v.s); e != nil {
		return e.ips[:1]
	}
	return nil
}

func describeInstances(s *state, form url.Values) (any, error) {
	ids := list(form, "InstanceId")
	max, cursor, err := pageParams(form, ids, true)
	if err != nil {
		return nil, err
	}
	match, err := instanceFilters.compile(parseFilters(form), func(v *instanceView) map[string]string { return v.in.tags }, s.filterRules(true))
	if err != nil {
		return nil, err
	}
	keys := s.instances.from(cursor)
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			if _, ok := s.instances.get(id); !ok {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return nil, badRequest(CodeInstanceNotFound, "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
		}
		keys = afterCursor(ids, cursor)
	}
	kept, next := page(keys, max, func(id string) bool {
		in, _ := s.instances.get(id)
		return match(&instanceView{s, in})
	})
	out := &describeInstancesOut{Reservations: []xReservation{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		in, _ := s.instances.get(id)
		out.Reservations = append(out.Reservations, xReservation{
			ID: in.reservation, OwnerID: s.a.opts.AccountID,
			Instances: []xInstance{s.xInstance(in)},
		})
	}
	return out, nil
}

func (s *state) xInstance(in *instance) xInstance {
	v := &instanceView{s, in}
	x := xInstance{
		InstanceID: in.id, ImageID: "ami-00000000000000001",
		State:        xInstanceState{Code: instanceStateCodes[in.state], Name: in.state},
		InstanceType: in.typ, LaunchTime: awsTime(in.launch), Tags: xTags(in.tags),
	}
	if in.state != StateTerminated {
		x.VpcID = in.vpc
	}
	if ip := v.primaryIP(); ip != nil {
		x.PrivateIP = ip[0]
	}
	for _, e := range v.enis() {
		x.ENIs = append(x.ENIs, xInstanceENI{
			ID: e.id, VpcID: e.vpc, Description: e.desc, OwnerID: s.a.opts.AccountID,
			Status: "in-use", MAC: e.mac, PrivateIP: e.ips[0], InterfaceType: e.typ,
			Attachment: xInstanceAttachment{
				ID: e.attach.id, DeviceIndex: e.attach.device, Status: "attached",
				AttachTime: awsTime(e.attach.at), DeleteOnTermination: e.attach.deleteOnTerm,
			},
			PrivateIPs: xPrivateIPs(e.ips),
		})
	}
	return x
}

// ---- DescribeNetworkInterfaces ----

func attachedTo(e *eni) []string {
	if e.attach == nil {
		return nil
	}
	return []string{e.attach.instance}
}

var eniFilters = filterSet[*eni]{
	"network-interface-id":         func(e *eni) []string { return []string{e.id} },
	"vpc-id":                       func(e *eni) []string { return []string{e.vpc} },
	"interface-type":               func(e *eni) []string { return []string{e.typ} },
	"description":                  func(e *eni) []string { return []string{e.desc} },
	"addresses.private-ip-address": func(e *eni) []string { return e.ips },
	"private-ip-address":           func(e *eni) []string { return e.ips[:1] },
	"attachment.instance-id":       attachedTo,
	"attachment.device-index": func(e *eni) []string {
		if e.attach == nil {
			return nil
		}
		return []string{strconv.Itoa(e.attach.device)}
	},
	"attachment.status": func(e *eni) []string {
		if e.attach == nil {
			return nil
		}
		return []string{"attached"}
	},
	"status": func(e *eni) []string {
		if e.attach == nil {
			return []string{"available"}
		}
		return []string{"in-use"}
	},
}

func describeNetworkInterfaces(s *state, form url.Values) (any, error) {
	ids := list(form, "NetworkInterfaceId")
	max, cursor, err := pageParams(form, ids, true)
	if err != nil {
		return nil, err
	}
	match, err := eniFilters.compile(parseFilters(form), func(e *eni) map[string]string { return e.tags }, s.filterRules(true))
	if err != nil {
		return nil, err
	}
	keys, err := s.enis.pageKeys(ids, cursor, func(id string) error {
		return badRequest(CodeENINotFound, "The networkInterface ID '%s' does not exist", id)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, max, func(id string) bool {
		e, _ := s.enis.get(id)
		return match(e)
	})
	out := &describeENIsOut{ENIs: []xENI{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		e, _ := s.enis.get(id)
		x := xENI{
			ID: e.id, VpcID: e.vpc, AZ: s.a.opts.Region + "a", Description: e.desc,
			OwnerID: s.a.opts.AccountID, Status: "available", MAC: e.mac, PrivateIP: e.ips[0],
			SourceDestCheck: true, InterfaceType: e.typ, PrivateIPs: xPrivateIPs(e.ips), Tags: xTags(e.tags),
		}
		if e.attach != nil {
			x.Status = "in-use"
			x.Attachment = &xENIAttachment{
				ID: e.attach.id, InstanceID: e.attach.instance, InstanceOwnerID: s.a.opts.AccountID,
				DeviceIndex: e.attach.device, Status: "attached", AttachTime: awsTime(e.attach.at),
				DeleteOnTermination: e.attach.deleteOnTerm,
			}
		}
		out.ENIs = append(out.ENIs, x)
	}
	return out, nil
}

// ---- traffic mirror sessions ----

func i32s(v int32) []string { return []string{strconv.Itoa(int(v))} }

// sessionFilters are the filters DescribeTrafficMirrorSessions documents
// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeTrafficMirrorSessions.html):
// no tag:<key> and no tag-key, so Options.UndocumentedFilters decides what
// becomes of those.
var sessionFilters = filterSet[*session]{
	"owner-id":                  func(x *session) []string { return []string{x.owner} },
	"traffic-mirror-session-id": func(x *session) []string { return []string{x.id} },
	"traffic-mirror-target-id":  func(x *session) []string { return []string{x.target} },
	"traffic-mirror-filter-id":  func(x *session) []string { return []string{x.filter} },
	"network-interface-id":      func(x *session) []string { return []string{x.eni} },
	"session-number":            func(x *session) []string { return i32s(x.number) },
	"virtual-network-id":        func(x *session) []string { return i32s(x.vni) },
	"description":               func(x *session) []string { return []string{x.desc} },
	"packet-length": func(x *session) []string {
		if x.packetLength == 0 {
			return nil
		}
		return i32s(x.packetLength)
	},
}

func (s *state) xSession(x *session) xSession {
	out := xSession{
		ID: x.id, TargetID: x.target, FilterID: x.filter, ENI: x.eni, OwnerID: s.a.opts.AccountID,
		SessionNumber: x.number, VNI: x.vni, Description: x.desc, Tags: xTags(x.tags),
	}
	if x.packetLength != 0 {
		pl := x.packetLength
		out.PacketLength = &pl
	}
	return out
}

func describeTrafficMirrorSessions(s *state, form url.Values) (any, error) {
	ids := list(form, "TrafficMirrorSessionId")
	max, cursor, err := pageParams(form, ids, false)
	if err != nil {
		return nil, err
	}
	match, err := sessionFilters.compile(parseFilters(form), func(x *session) map[string]string { return x.tags }, s.filterRules(false))
	if err != nil {
		return nil, err
	}
	s.pruneSessions()
	now := s.now()
	keys := s.sessions.from(cursor)
	if len(ids) > 0 {
		for _, id := range ids {
			if x, ok := s.sessions.get(id); !ok || !s.visible(x, now) {
				return nil, badRequest(CodeSessionNotFound, "The traffic mirror session ID '%s' does not exist.", id)
			}
		}
		keys = afterCursor(ids, cursor)
	}
	kept, next := page(keys, max, func(id string) bool {
		x, _ := s.sessions.get(id)
		return s.visible(x, now) && match(x)
	})
	out := &describeSessionsOut{Sessions: []xSession{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		x, _ := s.sessions.get(id)
		out.Sessions = append(out.Sessions, s.xSession(x))
	}
	return out, nil
}

func createTrafficMirrorSession(s *state, form url.Values) (any, error) {
	for _, p := range []string{"NetworkInterfaceId", "TrafficMirrorTargetId", "TrafficMirrorFilterId", "SessionNumber"} {
		if form.Get(p) == "" {
			return nil, badRequest("MissingParameter", "The request must contain the parameter %s", p)
		}
	}
	num, _, err := intParam(form, "SessionNumber")
	if err != nil {
		return nil, err
	}
	sp := sessionSpec{
		ENI: form.Get("NetworkInterfaceId"), Target: form.Get("TrafficMirrorTargetId"),
		Filter: form.Get("TrafficMirrorFilterId"), Number: int32(num),
		Description: form.Get("Description"), Tags: map[string]string{},
	}
	if v, set, err := intParam(form, "VirtualNetworkId"); err != nil {
		return nil, err
	} else if set {
		vni := int32(v)
		sp.VNI = &vni
	}
	if v, set, err := intParam(form, "PacketLength"); err != nil {
		return nil, err
	} else if set {
		pl := int32(v)
		sp.PacketLength = &pl
	}
	for _, n := range indices(form, "TagSpecification") {
		p := fmt.Sprintf("TagSpecification.%d", n)
		if rt := form.Get(p + ".ResourceType"); rt != "traffic-mirror-session" {
			return nil, badRequest(CodeInvalidParameterValue, "'%s' is not a valid taggable resource type for this operation.", rt)
		}
		maps.Copy(sp.Tags, tagList(form, p+".Tag"))
	}
	token := form.Get("ClientToken")
	x, err := s.createSession(token, sp)
	if err != nil {
		return nil, err
	}
	return &createSessionOut{Session: s.xSession(&x), ClientToken: token}, nil
}

func deleteTrafficMirrorSession(s *state, form url.Values) (any, error) {
	id := form.Get("TrafficMirrorSessionId")
	x, ok := s.sessions.get(id)
	if !ok || !x.live() {
		return nil, badRequest(CodeSessionNotFound, "The traffic mirror session ID '%s' does not exist.", id)
	}
	s.deleteSession(x)
	return &deleteSessionOut{ID: id}, nil
}

// ---- mirror targets and filters ----

var mirrorTargetFilters = filterSet[*mirrorTarget]{
	"traffic-mirror-target-id":  func(t *mirrorTarget) []string { return []string{t.id} },
	"network-load-balancer-arn": func(t *mirrorTarget) []string { return []string{t.nlb} },
	"description":               func(t *mirrorTarget) []string { return []string{t.desc} },
}

func describeTrafficMirrorTargets(s *state, form url.Values) (any, error) {
	ids := list(form, "TrafficMirrorTargetId")
	max, cursor, err := pageParams(form, ids, false)
	if err != nil {
		return nil, err
	}
	match, err := mirrorTargetFilters.compile(parseFilters(form), func(t *mirrorTarget) map[string]string { return t.tags }, s.filterRules(false))
	if err != nil {
		return nil, err
	}
	keys, err := s.mirrorTargets.pageKeys(ids, cursor, func(id string) error {
		return badRequest(CodeTargetNotFound, "The traffic mirror target ID '%s' does not exist.", id)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, max, func(id string) bool {
		t, _ := s.mirrorTargets.get(id)
		return match(t)
	})
	out := &describeTargetsOut{Targets: []xMirrorTarget{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		t, _ := s.mirrorTargets.get(id)
		out.Targets = append(out.Targets, xMirrorTarget{
			ID: t.id, NLB: t.nlb, Type: "network-load-balancer", Description: t.desc,
			OwnerID: s.a.opts.AccountID, Tags: xTags(t.tags),
		})
	}
	return out, nil
}

var mirrorFilterFilters = filterSet[*mirrorFilter]{
	"traffic-mirror-filter-id": func(f *mirrorFilter) []string { return []string{f.id} },
	"description":              func(f *mirrorFilter) []string { return []string{f.desc} },
}

func describeTrafficMirrorFilters(s *state, form url.Values) (any, error) {
	ids := list(form, "TrafficMirrorFilterId")
	max, cursor, err := pageParams(form, ids, false)
	if err != nil {
		return nil, err
	}
	match, err := mirrorFilterFilters.compile(parseFilters(form), func(f *mirrorFilter) map[string]string { return f.tags }, s.filterRules(false))
	if err != nil {
		return nil, err
	}
	keys, err := s.mirrorFilters.pageKeys(ids, cursor, func(id string) error {
		return badRequest(CodeFilterNotFound, "The traffic mirror filter ID '%s' does not exist.", id)
	})
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, max, func(id string) bool {
		f, _ := s.mirrorFilters.get(id)
		return match(f)
	})
	out := &describeFiltersOut{Filters: []xMirrorFilter{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		f, _ := s.mirrorFilters.get(id)
		out.Filters = append(out.Filters, xMirrorFilter{ID: f.id, Description: f.desc, Tags: xTags(f.tags)})
	}
	return out, nil
}

// ---- tags ----

// taggable finds the tag map of an EC2 resource by id, with its type.
func (s *state) taggable(id string) (tags map[string]string, resourceType string, err error) {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "i":
		if in, ok := s.instances.get(id); ok {
			return in.tags, "instance", nil
		}
		return nil, "", badRequest(CodeInstanceNotFound, "The instance ID '%s' does not exist", id)
	case "eni":
		if e, ok := s.enis.get(id); ok {
			return e.tags, "network-interface", nil
		}
		return nil, "", badRequest(CodeENINotFound, "The networkInterface ID '%s' does not exist", id)
	case "tms":
		if x, ok := s.sessions.get(id); ok && x.live() {
			return x.tags, "traffic-mirror-session", nil
		}
		return nil, "", badRequest(CodeSessionNotFound, "The traffic mirror session ID '%s' does not exist.", id)
	case "tmt":
		if t, ok := s.mirrorTargets.get(id); ok {
			return t.tags, "traffic-mirror-target", nil
		}
		return nil, "", badRequest(CodeTargetNotFound, "The traffic mirror target ID '%s' does not exist.", id)
	case "tmf":
		if f, ok := s.mirrorFilters.get(id); ok {
			return f.tags, "traffic-mirror-filter", nil
		}
		return nil, "", badRequest(CodeFilterNotFound, "The traffic mirror filter ID '%s' does not exist.", id)
	case "vpc":
		if v, ok := s.vpcs.get(id); ok {
			return v.tags, "vpc", nil
		}
		return nil, "", badRequest(CodeVpcNotFound, "The vpc ID '%s' does not exist", id)
	case "subnet":
		if x, ok := s.subnets.get(id); ok {
			return x.tags, "subnet", nil
		}
		return nil, "", badRequest(CodeSubnetNotFound, "The subnet ID '%s' does not exist", id)
	}
	return nil, "", badRequest(CodeInvalidID, "The ID '%s' is not valid", id)
}

func createTags(s *state, form url.Values) (any, error) {
	ids := list(form, "ResourceId")
	tags := tagList(form, "Tag")
	if len(ids) == 0 || len(tags) == 0 {
		return nil, badRequest("MissingParameter", "The request must contain the parameters ResourceId and Tag")
	}
	// All or nothing: check every id before changing any.
	targets := make([]map[string]string, len(ids))
	for i, id := range ids {
		m, _, err := s.taggable(id)
		if err != nil {
			return nil, err
		}
		targets[i] = m
	}
	stackKey := s.a.opts.StackTagKey
	for i, m := range targets {
		before, had := m[stackKey]
		maps.Copy(m, tags)
		// A stack tag put on a session afterwards can make it a duplicate.
		if after, ok := m[stackKey]; ok && (!had || after != before) && strings.HasPrefix(ids[i], "tms-") {
			x, _ := s.sessions.get(ids[i])
			if e, ok := s.enis.get(x.eni); ok {
				s.checkDuplicate(e, x)
			}
		}
	}
	return &returnOut{Return: true}, nil
}

func deleteTags(s *state, form url.Values) (any, error) {
	ids := list(form, "ResourceId")
	var targets []map[string]string
	for _, id := range ids {
		m, _, err := s.taggable(id)
		if err != nil {
			return nil, err
		}
		targets = append(targets, m)
	}
	// Tag.N.Key with an optional Value: delete only when the value
	// matches, as EC2 does.
	for _, n := range indices(form, "Tag") {
		p := fmt.Sprintf("Tag.%d.", n)
		k := form.Get(p + "Key")
		v, hasValue := form[p+"Value"]
		for _, m := range targets {
			if cur, ok := m[k]; ok && (!hasValue || cur == v[0]) {
				delete(m, k)
			}
		}
	}
	return &returnOut{Return: true}, nil
}

var tagFilters = filterSet[xTagDescription]{
	"resource-id":   func(t xTagDescription) []string { return []string{t.ResourceID} },
	"resource-type": func(t xTagDescription) []string { return []string{t.ResourceType} },
	"key":           func(t xTagDescription) []string { return []string{t.Key} },
	"value":         func(t xTagDescription) []string { return []string{t.Value} },
}

func describeTags(s *state, form url.Values) (any, error) {
	max, cursor, err := pageParams(form, nil, false)
	if err != nil {
		return nil, err
	}
	match, err := tagFilters.compile(parseFilters(form), nil, s.filterRules(true))
	if err != nil {
		return nil, err
	}
	var all []xTagDescription
	add := func(id, typ string, tags map[string]string) {
		for _, t := range xTags(tags) {
			all = append(all, xTagDescription{ResourceID: id, ResourceType: typ, Key: t.Key, Value: t.Value})
		}
	}
	for _, v := range s.vpcs.values() {
		add(v.id, "vpc", v.tags)
	}
	for _, in := range s.instances.values() {
		add(in.id, "instance", in.tags)
	}
	for _, e := range s.enis.values() {
		add(e.id, "network-interface", e.tags)
	}
	for _, x := range s.sessions.values() {
		if x.live() {
			add(x.id, "traffic-mirror-session", x.tags)
		}
	}
	for _, t := range s.mirrorTargets.values() {
		add(t.id, "traffic-mirror-target", t.tags)
	}
	for _, f := range s.mirrorFilters.values() {
		add(f.id, "traffic-mirror-filter", f.tags)
	}
	// The cursor is "<resource id> <key>"; a space cannot start a key.
	byKey := map[string]xTagDescription{}
	keys := make([]string, 0, len(all))
	for _, t := range all {
		k := t.ResourceID + " " + t.Key
		byKey[k] = t
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kept, next := page(afterCursor(keys, cursor), max, func(k string) bool { return match(byKey[k]) })
	out := &describeTagsOut{Tags: []xTagDescription{}, NextToken: encodeToken(next)}
	for _, k := range kept {
		out.Tags = append(out.Tags, byKey[k])
	}
	return out, nil
}

// ---- VPCs, subnets, zones and instance type offerings ----
//
// What the operator commands read about the network (preflight, status):
// which VPCs and subnets exist, the zones of the region, and which
// instance types each zone offers.

type subnet struct {
	id, vpc, zone, cidr string
	tags                map[string]string
}

type xVpc struct {
	ID              string `xml:"vpcId"`
	OwnerID         string `xml:"ownerId"`
	State           string `xml:"state"`
	CIDR            string `xml:"cidrBlock"`
	DhcpOptionsID   string `xml:"dhcpOptionsId"`
	InstanceTenancy string `xml:"instanceTenancy"`
	IsDefault       bool   `xml:"isDefault"`
	Tags            []xTag `xml:"tagSet>item"`
}

type describeVpcsOut struct {
	ec2Meta
	Vpcs      []xVpc `xml:"vpcSet>item"`
	NextToken string `xml:"nextToken,omitempty"`
}

type xSubnet struct {
	ID                  string `xml:"subnetId"`
	ARN                 string `xml:"subnetArn"`
	State               string `xml:"state"`
	VpcID               string `xml:"vpcId"`
	OwnerID             string `xml:"ownerId"`
	CIDR                string `xml:"cidrBlock"`
	AvailableIPs        int    `xml:"availableIpAddressCount"`
	AZ                  string `xml:"availabilityZone"`
	AZID                string `xml:"availabilityZoneId"`
	DefaultForAz        bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch bool   `xml:"mapPublicIpOnLaunch"`
	Tags                []xTag `xml:"tagSet>item"`
}

type describeSubnetsOut struct {
	ec2Meta
	Subnets   []xSubnet `xml:"subnetSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type xZone struct {
	Name        string `xml:"zoneName"`
	ID          string `xml:"zoneId"`
	State       string `xml:"zoneState"`
	Region      string `xml:"regionName"`
	Type        string `xml:"zoneType"`
	OptIn       string `xml:"optInStatus"`
	GroupName   string `xml:"groupName"`
	NetworkBord string `xml:"networkBorderGroup"`
}

type describeZonesOut struct {
	ec2Meta
	Zones []xZone `xml:"availabilityZoneInfo>item"`
}

type xOffering struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

type describeOfferingsOut struct {
	ec2Meta
	Offerings []xOffering `xml:"instanceTypeOfferingSet>item"`
	NextToken string      `xml:"nextToken,omitempty"`
}

func (s *state) vpcCIDR(v *vpc) string { return fmt.Sprintf("10.%d.0.0/16", v.n%256) }

// zoneID is the account's id for a zone: "<region letters and number>-az<n>"
// (us-east-1a is use1-az1). AWS maps zone names to ids per account and
// documents no rule; this one is our own.
func zoneID(zone string) string {
	region := strings.TrimRight(zone, "abcdefghijklmnopqrstuvwxyz")
	letter := strings.TrimPrefix(zone, region)
	abbr := ""
	for i, part := range strings.Split(region, "-") {
		switch {
		case i == 0:
			abbr += part
		case part != "" && part[0] >= '0' && part[0] <= '9':
			abbr += part
		case part != "":
			abbr += part[:1]
		}
	}
	if letter == "" {
		return abbr
	}
	return fmt.Sprintf("%s-az%d", abbr, int(letter[0]-'a')+1)
}

// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcs.html
// (filters cidr, state, vpc-id, tag:<key>, tag-key; an unknown id is
// InvalidVpcID.NotFound, EC2 API error codes).
var vpcFilters = filterSet[*vpc]{
	"vpc-id":     func(v *vpc) []string { return []string{v.id} },
	"state":      func(v *vpc) []string { return []string{"available"} },
	"is-default": func(v *vpc) []string { return []string{"false"} },
}

func describeVpcs(s *state, form url.Values) (any, error) {
	ids := list(form, "VpcId")
	max, cursor, err := pageParams(form, ids, false)
	if err != nil {
		return nil, err
	}
	fs := maps.Clone(vpcFilters)
	fs["cidr"] = func(v *vpc) []string { return []string{s.vpcCIDR(v)} }
	fs["cidr-block-association.cidr-block"] = fs["cidr"]
	match, err := fs.compile(parseFilters(form), func(v *vpc) map[string]string { return v.tags }, s.filterRules(true))
	if err != nil {
		return nil, err
	}
	keys, err := s.vpcs.pageKeys(ids, cursor, func(id string) error { return badRequest(CodeVpcNotFound, "The vpc ID '%s' does not exist", id) })
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, max, func(id string) bool {
		v, _ := s.vpcs.get(id)
		return match(v)
	})
	out := &describeVpcsOut{Vpcs: []xVpc{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		v, _ := s.vpcs.get(id)
		out.Vpcs = append(out.Vpcs, xVpc{
			ID: v.id, OwnerID: s.a.opts.AccountID, State: "available", CIDR: s.vpcCIDR(v),
			DhcpOptionsID: "dopt-00000000000000001", InstanceTenancy: "default", Tags: xTags(v.tags),
		})
	}
	return out, nil
}

// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSubnets.html
// (filters availability-zone, availability-zone-id, cidr-block, state,
// subnet-id, vpc-id, tag:<key>, tag-key; an unknown id is
// InvalidSubnetID.NotFound, EC2 API error codes).
var subnetFilters = filterSet[*subnet]{
	"subnet-id":            func(x *subnet) []string { return []string{x.id} },
	"vpc-id":               func(x *subnet) []string { return []string{x.vpc} },
	"availability-zone":    func(x *subnet) []string { return []string{x.zone} },
	"availability-zone-id": func(x *subnet) []string { return []string{zoneID(x.zone)} },
	"cidr-block":           func(x *subnet) []string { return []string{x.cidr} },
	"state":                func(x *subnet) []string { return []string{"available"} },
	"default-for-az":       func(x *subnet) []string { return []string{"false"} },
}

func describeSubnets(s *state, form url.Values) (any, error) {
	ids := list(form, "SubnetId")
	max, cursor, err := pageParams(form, ids, false)
	if err != nil {
		return nil, err
	}
	match, err := subnetFilters.compile(parseFilters(form), func(x *subnet) map[string]string { return x.tags }, s.filterRules(true))
	if err != nil {
		return nil, err
	}
	keys, err := s.subnets.pageKeys(ids, cursor, func(id string) error { return badRequest(CodeSubnetNotFound, "The subnet ID '%s' does not exist", id) })
	if err != nil {
		return nil, err
	}
	kept, next := page(keys, max, func(id string) bool {
		x, _ := s.subnets.get(id)
		return match(x)
	})
	out := &describeSubnetsOut{Subnets: []xSubnet{}, NextToken: encodeToken(next)}
	for _, id := range kept {
		x, _ := s.subnets.get(id)
		out.Subnets = append(out.Subnets, xSubnet{
			ID: x.id, ARN: fmt.Sprintf("arn:aws:ec2:%s:%s:subnet/%s", s.a.opts.Region, s.a.opts.AccountID, x.id),
			State: "available", VpcID: x.vpc, OwnerID: s.a.opts.AccountID, CIDR: x.cidr,
			AvailableIPs: 251, AZ: x.zone, AZID: zoneID(x.zone), Tags: xTags(x.tags),
		})
	}
	return out, nil
}

// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeAvailabilityZones.html
// Every zone of the account (Options.Zones) is available and needs no
// opt-in; ZoneName.N and ZoneId.N narrow the answer, and a name the region
// does not have is InvalidParameterValue (AWS documents no code for it;
// that is what it answers). Filters are not modelled.
func describeAvailabilityZones(s *state, form url.Values) (any, error) {
	names, ids := list(form, "ZoneName"), list(form, "ZoneId")
	out := &describeZonesOut{Zones: []xZone{}}
	for _, n := range names {
		if !slices.Contains(s.a.opts.Zones, n) {
			return nil, badRequest(CodeInvalidParameterValue, "The zone '%s' does not exist in the region.", n)
		}
	}
	for _, z := range s.a.opts.Zones {
		if (len(names) > 0 || len(ids) > 0) && !slices.Contains(names, z) && !slices.Contains(ids, zoneID(z)) {
			continue
		}
		out.Zones = append(out.Zones, xZone{
			Name: z, ID: zoneID(z), State: "available", Region: s.a.opts.Region, Type: "availability-zone",
			OptIn: "opt-in-not-required", GroupName: s.a.opts.Region, NetworkBord: s.a.opts.Region,
		})
	}
	return out, nil
}

// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html
// LocationType is region (the default), availability-zone or
// availability-zone-id; filters location and instance-type; MaxResults
// 5–1000 with NextToken. An offering in the region is a type some zone
// offers.
var offeringFilters = filterSet[xOffering]{
	"location":      func(o xOffering) []string { return []string{o.Location} },
	"instance-type": func(o xOffering) []string { return []string{o.InstanceType} },
}

func describeInstanceTypeOfferings(s *state, form url.Values) (any, error) {
	max, cursor, err := pageParams(form, nil, false)
	if err != nil {
		return nil, err
	}
	lt := form.Get("LocationType")
	if lt == "" {
		lt = "region"
	}
	match, err := offeringFilters.compile(parseFilters(form), nil, s.filterRules(false))
	if err != nil {
		return nil, err
	}
	var all []xOffering
	switch lt {
	case "region":
		seen := map[string]bool{}
		for _, types := range s.offerings {
			for _, t := range types {
				if !seen[t] {
					seen[t] = true
					all = append(all, xOffering{InstanceType: t, LocationType: lt, Location: s.a.opts.Region})
				}
			}
		}
	case "availability-zone", "availability-zone-id":
		for zone, types := range s.offerings {
			loc := zone
			if lt == "availability-zone-id" {
				loc = zoneID(zone)
			}
			for _, t := range types {
				all = append(all, xOffering{InstanceType: t, LocationType: lt, Location: loc})
			}
		}
	default:
		return nil, badRequest(CodeInvalidParameterValue, "Value (%s) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id, outpost.", lt)
	}
	// The cursor is "<location> <type>".
	byKey := map[string]xOffering{}
	keys := make([]string, 0, len(all))
	for _, o := range all {
		k := o.Location + " " + o.InstanceType
		byKey[k] = o
		keys = append(keys, k)
	}
	kept, next := page(afterCursor(keys, cursor), max, func(k string) bool { return match(byKey[k]) })
	out := &describeOfferingsOut{Offerings: []xOffering{}, NextToken: encodeToken(next)}
	for _, k := range kept {
		out.Offerings = append(out.Offerings, byKey[k])
	}
	return out, nil
}

// AddSubnet makes a subnet of a VPC in a zone (one of Options.Zones), with
// the next free /24 of the VPC's 10.n.0.0/16, and returns its id.
func (a *Account) AddSubnet(vpcID, zone string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.st.vpcs.get(vpcID)
	if !ok {
		return "", fmt.Errorf("awssim: no VPC %s", vpcID)
	}
	if !slices.Contains(a.opts.Zones, zone) {
		return "", fmt.Errorf("awssim: zone %s is not one of the account's zones %v", zone, a.opts.Zones)
	}
	n := 0
	for _, x := range a.st.subnets.values() {
		if x.vpc == vpcID {
			n++
		}
	}
	// Third octets from 200 up stay clear of allocIP's addresses, which
	// grow from 10.n.0.10.
	x := &subnet{id: a.st.newID("subnet"), vpc: vpcID, zone: zone, cidr: fmt.Sprintf("10.%d.%d.0/24", v.n%256, 200+n%56), tags: map[string]string{}}
	a.st.subnets.put(x.id, x)
	return x.id, nil
}

// Zones returns the account's availability zones (Options.Zones).
func (a *Account) Zones() []string { return slices.Clone(a.opts.Zones) }

// SetInstanceTypeOfferings sets the instance types a zone offers
// (DescribeInstanceTypeOfferings); no types removes the zone's offerings.
// A new account offers nothing anywhere.
func (a *Account) SetInstanceTypeOfferings(zone string, instanceTypes ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.opts.Zones, zone) {
		return fmt.Errorf("awssim: zone %s is not one of the account's zones %v", zone, a.opts.Zones)
	}
	if len(instanceTypes) == 0 {
		delete(a.st.offerings, zone)
		return nil
	}
	a.st.offerings[zone] = slices.Compact(slices.Sorted(slices.Values(instanceTypes)))
	return nil
}
