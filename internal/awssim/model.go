package awssim

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apitap/apitap/internal/mirror"
)

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

var instanceStateCodes = map[string]int{
	StatePending: 0, StateRunning: 16, StateShuttingDown: 32,
	StateTerminated: 48, StateStopping: 64, StateStopped: 80,
}

// Target health states, as ELBv2 names them.
const (
	HealthInitial     = "initial"
	HealthHealthy     = "healthy"
	HealthUnhealthy   = "unhealthy"
	HealthUnused      = "unused"
	HealthDraining    = "draining"
	HealthUnavailable = "unavailable"
)

type vpc struct {
	id     string
	n      int // 10.n.0.0/16
	nextIP int
	tags   map[string]string
}

type instance struct {
	id, typ, vpc, state, reservation string
	launch                           time.Time
	tags                             map[string]string
	enis                             []string // attached ENIs, any order
	asg                              string   // Auto Scaling group, "" when none
}

type attachment struct {
	id           string
	instance     string
	device       int
	at           time.Time
	deleteOnTerm bool
}

type eni struct {
	id, vpc, typ, desc, mac string
	ips                     []string // ips[0] is the primary private IP
	attach                  *attachment
	tags                    map[string]string
	sessions                []*session // live sessions whose source it is
}

type session struct {
	id, eni, target, filter, desc string
	owner                         string // the account id
	number, vni                   int32
	packetLength                  int32 // 0: not set (whole packet)
	tags                          map[string]string
	created                       time.Time
	deleted                       time.Time // zero while it exists
}

func (s *session) live() bool { return s.deleted.IsZero() }

type mirrorTarget struct {
	id, nlb, desc string
	tags          map[string]string
}

type mirrorFilter struct {
	id, desc string
	tags     map[string]string
}

type loadBalancer struct {
	arn, name, kind, vpc string
	created              time.Time
	tags                 map[string]string
}

type targetGroup struct {
	arn, name, targetType, vpc, protocol string
	port                                 int32
	lbs                                  []string
	tags                                 map[string]string
	targets                              []*target // in registration order
}

type target struct {
	id         string
	port       int32
	registered time.Time
	draining   time.Time // zero unless deregistered and still draining
	override   string    // health forced from Go, "" for computed
}

type classicLB struct {
	name, vpc string
	instances []string
	created   time.Time
	tags      map[string]string
}

type stack struct {
	id, name, status, reason string
	created, updated         time.Time
	tags                     map[string]string
	outputs                  map[string]string
	events                   []StackEvent // oldest first
}

// idemEntry remembers a successful CreateTrafficMirrorSession by token.
type idemEntry struct {
	params string
	result session // the session as created, returned on every replay
}

type state struct {
	// functions are the Lambda functions that can be invoked, with
	// their invocations.
	functions map[string][]Invocation
	a         *Account

	seq map[string]int

	vpcs          ordered[*vpc]
	instances     ordered[*instance]
	enis          ordered[*eni]
	sessions      ordered[*session] // live ones and deleted ones still visible
	tombstones    []*session        // the deleted ones still in sessions
	liveSessions  int
	usedVNI       map[int32]int // live sessions per VNI
	mirrorTargets ordered[*mirrorTarget]
	mirrorFilters ordered[*mirrorFilter]
	tokens        map[string]idemEntry

	lbs      ordered[*loadBalancer] // by ARN
	lbByName map[string]string
	tgs      ordered[*targetGroup] // by ARN
	classics ordered[*classicLB]   // by name
	stacks   ordered[*stack]       // by name
	asgs     map[string]*autoScalingGroup

	subnets   ordered[*subnet]
	offerings map[string][]string // zone -> instance types, sorted

	caller  callerIdentity
	roles   map[string]*role // by name
	lambda  LambdaSettings
	trails  ordered[*trail] // by name
	metrics metricStore
	quotas  map[quotaKey]Quota

	topics  ordered[*topic]   // by ARN
	tables  map[string]*table // by name
	kmsKeys ordered[*kmsKey]  // by key id
}

func newState(a *Account) *state {
	s := &state{
		a:             a,
		seq:           map[string]int{},
		vpcs:          newOrdered[*vpc](),
		instances:     newOrdered[*instance](),
		enis:          newOrdered[*eni](),
		sessions:      newOrdered[*session](),
		mirrorTargets: newOrdered[*mirrorTarget](),
		mirrorFilters: newOrdered[*mirrorFilter](),
		tokens:        map[string]idemEntry{},
		usedVNI:       map[int32]int{},
		lbs:           newOrdered[*loadBalancer](),
		lbByName:      map[string]string{},
		tgs:           newOrdered[*targetGroup](),
		classics:      newOrdered[*classicLB](),
		asgs:          map[string]*autoScalingGroup{},
		stacks:        newOrdered[*stack](),
		subnets:       newOrdered[*subnet](),
		offerings:     map[string][]string{},
		roles:         map[string]*role{},
		lambda:        DefaultLambdaSettings,
		trails:        newOrdered[*trail](),
		quotas:        map[quotaKey]Quota{},
		caller:        defaultCaller(a.opts.AccountID),
		topics:        newOrdered[*topic](),
		tables:        map[string]*table{},
		kmsKeys:       newOrdered[*kmsKey](),
	}
	for _, q := range defaultQuotas(a.opts.MaxSessions) {
		s.quotas[quotaKey{q.ServiceCode, q.QuotaCode}] = q
	}
	return s
}

func (s *state) now() time.Time { return s.a.clock.Now().UTC() }

// newID returns prefix-<17 hex digits>; fixed width keeps key order equal
// to creation order.
func (s *state) newID(prefix string) string {
	s.seq[prefix]++
	return fmt.Sprintf("%s-%017x", prefix, s.seq[prefix])
}

func (s *state) arn(resource string) string {
	return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:%s", s.a.opts.Region, s.a.opts.AccountID, resource)
}

func copyTags(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	maps.Copy(out, m)
	return out
}

// ---- EC2 world ----

func (s *state) addVPC() *vpc {
	v := &vpc{id: s.newID("vpc"), n: s.vpcs.len() + 1, nextIP: 10, tags: map[string]string{}}
	s.vpcs.put(v.id, v)
	return v
}

func (s *state) allocIP(v *vpc) string {
	h := v.nextIP
	v.nextIP++
	// 10.<n>.<h/256>.<h%256>; n wraps past 255, which only matters past
	// 255 VPCs and 65,000 addresses per VPC, far beyond any test.
	return fmt.Sprintf("10.%d.%d.%d", v.n%256, (h/256)%256, h%256)
}

func (s *state) newENI(v *vpc, typ string) *eni {
	e := &eni{id: s.newID("eni"), vpc: v.id, typ: typ, tags: map[string]string{}}
	e.ips = []string{s.allocIP(v)}
	e.mac = fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", (s.seq["eni"]>>24)&0xff, (s.seq["eni"]>>16)&0xff, (s.seq["eni"]>>8)&0xff, s.seq["eni"]&0xff)
	s.enis.put(e.id, e)
	return e
}

func (s *state) attachENI(e *eni, in *instance, device int, deleteOnTerm bool) {
	e.attach = &attachment{id: s.newID("eni-attach"), instance: in.id, device: device, at: s.now(), deleteOnTerm: deleteOnTerm}
	in.enis = append(in.enis, e.id)
}

func (s *state) detachENI(e *eni) {
	if e.attach == nil {
		return
	}
	if in, ok := s.instances.get(e.attach.instance); ok {
		in.enis = slices.DeleteFunc(in.enis, func(id string) bool { return id == e.id })
	}
	e.attach = nil
}

// deleteENI deletes an ENI and, as AWS does, every session it is the
// source of.
func (s *state) deleteENI(e *eni) {
	for _, ss := range slices.Clone(e.sessions) {
		s.deleteSession(ss)
	}
	s.detachENI(e)
	s.enis.del(e.id)
}

func (s *state) addInstance(v *vpc, typ string) *instance {
	in := &instance{
		id: s.newID("i"), typ: typ, vpc: v.id, state: StateRunning,
		reservation: s.newID("r"), launch: s.now(), tags: map[string]string{},
	}
	s.instances.put(in.id, in)
	e := s.newENI(v, "interface")
	e.desc = "Primary network interface"
	s.attachENI(e, in, 0, true)
	return in
}

func (in *instance) primaryENI(s *state) *eni {
	for _, id := range in.enis {
		if e, ok := s.enis.get(id); ok && e.attach != nil && e.attach.device == 0 {
			return e
		}
	}
	return nil
}

// setInstanceState moves an instance to a new state with AWS's side
// effects: a start sets a new LaunchTime; termination deletes the ENIs
// marked delete-on-termination (and so their sessions), detaches the
// others, and deregisters the instance from every target group and
// Classic load balancer.
func (s *state) setInstanceState(in *instance, to string) error {
	if _, ok := instanceStateCodes[to]; !ok {
		return fmt.Errorf("unknown instance state %q", to)
	}
	if in.state == StateTerminated {
		if to == StateTerminated {
			return nil
		}
		return badRequest(CodeIncorrectInstanceState, "The instance '%s' is not in a state from which it can be started.", in.id)
	}
	if to == StateRunning && in.state != StateRunning {
		in.launch = s.now()
	}
	in.state = to
	if to != StateTerminated {
		return nil
	}
	for _, id := range slices.Clone(in.enis) {
		e, ok := s.enis.get(id)
		if !ok {
			continue
		}
		if e.attach.deleteOnTerm {
			s.deleteENI(e)
		} else {
			s.detachENI(e)
		}
	}
	for _, tg := range s.tgs.values() {
		if tg.targetType != "instance" {
			continue
		}
		// deregister prunes tg.targets: walk a copy.
		for _, t := range slices.Clone(tg.targets) {
			if t.id == in.id {
				s.deregister(tg, t)
			}
		}
	}
	for _, c := range s.classics.values() {
		c.instances = slices.DeleteFunc(c.instances, func(id string) bool { return id == in.id })
	}
	return nil
}

// ---- mirror sessions ----

// sessionSpec is a CreateTrafficMirrorSession request.
type sessionSpec struct {
	ENI, Target, Filter string
	Number              int32
	VNI                 *int32
	PacketLength        *int32
	Description         string
	Tags                map[string]string
}

// key is the canonical form of the parameters, compared on ClientToken
// replays; withTags says whether the tags count.
func (sp sessionSpec) key(withTags bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%d|", sp.ENI, sp.Target, sp.Filter, sp.Number)
	if sp.VNI != nil {
		fmt.Fprintf(&b, "%d", *sp.VNI)
	}
	b.WriteByte('|')
	if sp.PacketLength != nil {
		fmt.Fprintf(&b, "%d", *sp.PacketLength)
	}
	fmt.Fprintf(&b, "|%q", sp.Description)
	if withTags {
		for _, k := range slices.Sorted(maps.Keys(sp.Tags)) {
			fmt.Fprintf(&b, "|%q=%q", k, sp.Tags[k])
		}
	}
	return b.String()
}

func (s *state) unsupportedType(typ string) bool {
	family, _, _ := strings.Cut(typ, ".")
	for _, u := range s.a.opts.UnsupportedInstanceTypes {
		if u == typ || u == family {
			return true
		}
	}
	return false
}

// createSession applies AWS's rules and creates the session. With a
// non-empty token, a replay with the same parameters returns the original
// session (even if it was deleted since) and one with other parameters
// fails; failed attempts are not remembered, so they may be retried.
func (s *state) createSession(token string, sp sessionSpec) (session, error) {
	if token != "" {
		if prev, ok := s.tokens[token]; ok {
			if prev.params != sp.key(!s.a.opts.TokenIgnoresTags) {
				return session{}, badRequest(CodeIdempotentMismatch, "The client token %s was already used with different parameters.", token)
			}
			return prev.result, nil
		}
	}
	e, ok := s.enis.get(sp.ENI)
	if !ok {
		return session{}, badRequest(CodeENINotFound, "The networkInterface ID '%s' does not exist", sp.ENI)
	}
	if _, ok := s.mirrorTargets.get(sp.Target); !ok {
		return session{}, badRequest(CodeTargetNotFound, "The traffic mirror target ID '%s' does not exist.", sp.Target)
	}
	if _, ok := s.mirrorFilters.get(sp.Filter); !ok {
		return session{}, badRequest(CodeFilterNotFound, "The traffic mirror filter ID '%s' does not exist.", sp.Filter)
	}
	if sp.Number < mirror.MinSessionNumber || sp.Number > mirror.MaxSessionNumber {
		return session{}, badRequest(CodeInvalidParameterValue, "Session number %d is out of range; valid values are %d-%d.", sp.Number, mirror.MinSessionNumber, mirror.MaxSessionNumber)
	}
	if sp.PacketLength != nil && (*sp.PacketLength < 1 || *sp.PacketLength > 8500) {
		return session{}, badRequest(CodeInvalidParameterValue, "Packet length %d is out of range; valid values are 1-8500.", *sp.PacketLength)
	}
	if sp.VNI != nil && (*sp.VNI < 0 || *sp.VNI > 0xFFFFFF) {
		return session{}, badRequest(CodeInvalidParameterValue, "Virtual network ID %d is out of range; valid values are 0-16777215.", *sp.VNI)
	}
	if e.typ != "interface" {
		return session{}, badRequest(CodeNetworkInterfaceNotSupported, "The network interface %s of type %s is not supported for Traffic Mirroring.", e.id, e.typ)
	}
	if e.attach != nil {
		if in, ok := s.instances.get(e.attach.instance); ok && s.unsupportedType(in.typ) {
			return session{}, badRequest(CodeNetworkInterfaceNotSupported, "The network interface %s (instance %s, type %s) is not supported for Traffic Mirroring.", e.id, in.id, in.typ)
		}
	}
	if len(e.sessions) >= mirror.MaxSessionsPerENI {
		return session{}, badRequest(CodeSessionsPerENILimit, "The network interface %s already has the maximum number of Traffic Mirror sessions (%d).", e.id, mirror.MaxSessionsPerENI)
	}
	for _, o := range e.sessions {
		if o.number == sp.Number && !s.a.opts.AllowDuplicateNumbers {
			return session{}, badRequest(CodeInvalidParameterValue, "Session number %d is already in use by %s on network interface %s.", sp.Number, o.id, e.id)
		}
	}
	if s.liveSessions >= s.a.opts.MaxSessions {
		return session{}, badRequest(CodeSessionLimit, "The maximum number of Traffic Mirror sessions (%d) has been reached.", s.a.opts.MaxSessions)
	}

	ss := &session{
		id: s.newID("tms"), eni: e.id, target: sp.Target, filter: sp.Filter, owner: s.a.opts.AccountID,
		number: sp.Number, desc: sp.Description, tags: copyTags(sp.Tags), created: s.now(),
	}
	if sp.VNI != nil {
		ss.vni = *sp.VNI
	} else {
		ss.vni = s.randomVNI()
	}
	if sp.PacketLength != nil {
		ss.packetLength = *sp.PacketLength
	}
	s.sessions.put(ss.id, ss)
	s.liveSessions++
	s.usedVNI[ss.vni]++
	e.sessions = append(e.sessions, ss)
	s.noteSessionAdded(e, ss)
	result := *ss
	result.tags = copyTags(ss.tags)
	if token != "" {
		s.tokens[token] = idemEntry{params: sp.key(!s.a.opts.TokenIgnoresTags), result: result}
	}
	return result, nil
}

// randomVNI picks an unused VNI, as AWS does when none is given.
func (s *state) randomVNI() int32 {
	for {
		v := int32(s.a.rng.IntN(0xFFFFFF) + 1)
		if s.usedVNI[v] == 0 {
			return v
		}
	}
}

func (s *state) deleteSession(ss *session) {
	if !ss.live() {
		return
	}
	ss.deleted = s.now()
	s.liveSessions--
	s.usedVNI[ss.vni]--
	s.tombstones = append(s.tombstones, ss)
	if e, ok := s.enis.get(ss.eni); ok {
		e.sessions = slices.DeleteFunc(e.sessions, func(o *session) bool { return o == ss })
	}
	s.a.stats.deleted++
	s.pruneSessions()
}

// pruneSessions forgets deleted sessions once the visibility delay is over.
func (s *state) pruneSessions() {
	delay := s.a.faults.SessionVisibilityDelay
	now := s.now()
	s.tombstones = slices.DeleteFunc(s.tombstones, func(ss *session) bool {
		if now.Before(ss.deleted.Add(delay)) {
			return false
		}
		s.sessions.del(ss.id)
		return true
	})
}

// visible says whether DescribeTrafficMirrorSessions shows ss now.
func (s *state) visible(ss *session, now time.Time) bool {
	delay := s.a.faults.SessionVisibilityDelay
	if now.Before(ss.created.Add(delay)) {
		return false
	}
	return ss.live() || now.Before(ss.deleted.Add(delay))
}

// noteSessionAdded updates the invariants after a session appeared on e,
// or after a session's stack tag changed.
func (s *state) noteSessionAdded(e *eni, ss *session) {
	st := &s.a.stats
	st.created++
	if n := len(e.sessions); n > st.max {
		st.max, st.maxENI = n, e.id
	}
	s.checkDuplicate(e, ss)
}

func (s *state) checkDuplicate(e *eni, ss *session) {
	key := s.a.opts.StackTagKey
	stackName := ss.tags[key]
	if stackName == "" {
		return
	}
	ids := []string{}
	for _, o := range e.sessions {
		// The same VNI too: a replacement (the load balancer of an ENI
		// changed) is created next to its predecessor on purpose.
		if o.target == ss.target && o.tags[key] == stackName && o.vni == ss.vni {
			ids = append(ids, o.id)
		}
	}
	if len(ids) > 1 {
		sort.Strings(ids)
		s.a.stats.duplicates = append(s.a.stats.duplicates, Duplicate{
			ENI: e.id, Target: ss.target, Stack: stackName, Sessions: ids, Time: s.now(),
		})
	}
}

// ---- ELBv2 ----

// health computes a target's health as ELBv2 would report it now.
func (s *state) health(tg *targetGroup, t *target) (state, reason, desc string) {
	now := s.now()
	if !t.draining.IsZero() {
		return HealthDraining, "Target.DeregistrationInProgress", "Target deregistration is in progress"
	}
	if len(tg.lbs) == 0 {
		return HealthUnused, "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer"
	}
	start := t.registered
	switch tg.targetType {
	case "instance":
		in, ok := s.instances.get(t.id)
		if !ok || in.state != StateRunning {
			return HealthUnused, "Target.InvalidState", "Target is in the stopped or terminated state"
		}
		if in.launch.After(start) {
			start = in.launch
		}
	case "lambda":
		if t.override == "" {
			return HealthUnavailable, "Target.HealthCheckDisabled", "Health checks are disabled"
		}
	}
	switch t.override {
	case HealthUnhealthy:
		return HealthUnhealthy, "Target.FailedHealthChecks", "Health checks failed"
	case HealthUnavailable:
		return HealthUnavailable, "Target.HealthCheckDisabled", "Health checks are disabled"
	case HealthHealthy:
		return HealthHealthy, "", ""
	case HealthInitial:
		return HealthInitial, "Elb.RegistrationInProgress", "Target registration is in progress"
	}
	if now.Before(start.Add(s.a.opts.HealthyAfter)) {
		return HealthInitial, "Elb.RegistrationInProgress", "Target registration is in progress"
	}
	return HealthHealthy, "", ""
}

// pruneTargets forgets targets whose draining is over.
func (s *state) pruneTargets(tg *targetGroup) {
	now := s.now()
	tg.targets = slices.DeleteFunc(tg.targets, func(t *target) bool {
		return !t.draining.IsZero() && !now.Before(t.draining.Add(s.a.opts.DrainDelay))
	})
}

func (s *state) deregister(tg *targetGroup, t *target) {
	if t.draining.IsZero() {
		t.draining = s.now()
	}
	s.pruneTargets(tg)
}

// validateTarget checks that id can be a target of tg, as RegisterTargets
// does.
func (s *state) validateTarget(tg *targetGroup, id string) error {
	switch tg.targetType {
	case "instance":
		in, ok := s.instances.get(id)
		if !ok {
			return badRequest(CodeInvalidTarget, "The following targets are not valid instances: '%s'", id)
		}
		if in.vpc != tg.vpc {
			return badRequest(CodeInvalidTarget, "The following targets are not in the target group VPC '%s': '%s'", tg.vpc, id)
		}
		if in.state == StateTerminated {
			return badRequest(CodeInvalidTarget, "The following targets are not in a running state and cannot be registered: '%s'", id)
		}
	case "ip":
		if strings.Count(id, ".") != 3 {
			return badRequest(CodeValidationError, "The IP address '%s' is not a valid IPv4 address", id)
		}
	case "lambda":
		if !strings.HasPrefix(id, "arn:aws:lambda:") {
			return badRequest(CodeValidationError, "The target '%s' is not a Lambda function ARN", id)
		}
	case "alb":
		lb, ok := s.lbs.get(id)
		if !ok || lb.kind != "application" {
			return badRequest(CodeInvalidTarget, "The target '%s' is not an Application Load Balancer", id)
		}
	}
	return nil
}

func (s *state) register(tg *targetGroup, id string, port int32) error {
	if err := s.validateTarget(tg, id); err != nil {
		return err
	}
	if port == 0 {
		port = tg.port
	}
	for _, t := range tg.targets {
		if t.id == id && t.port == port {
			if !t.draining.IsZero() {
				t.draining, t.registered = time.Time{}, s.now()
			}
			return nil
		}
	}
	tg.targets = append(tg.targets, &target{id: id, port: port, registered: s.now()})
	return nil
}

func (s *state) deregisterID(tg *targetGroup, id string, port int32) error {
	for _, t := range tg.targets {
		if t.id == id && (port == 0 || t.port == port) && t.draining.IsZero() {
			s.deregister(tg, t)
			return nil
		}
	}
	return badRequest(CodeInvalidTarget, "The following targets are not registered in target group '%s': '%s'", tg.arn, id)
}

// ---- Go-side world building ----

// AddVPC creates a VPC and returns its id. Private IPs in it are
// 10.<n>.x.y, n counting VPCs from 1.
func (a *Account) AddVPC() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.addVPC().id
}

// AddInstance launches a running instance of the given type in vpcID, with
// a primary ENI (device index 0, deleted on termination), and returns both
// ids.
func (a *Account) AddInstance(vpcID, instanceType string) (instanceID, eniID string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.st.vpcs.get(vpcID)
	if !ok {
		return "", "", fmt.Errorf("adding instance: unknown VPC %s", vpcID)
	}
	in := a.st.addInstance(v, instanceType)
	return in.id, in.enis[0], nil
}

// TagInstance sets tags on an instance.
func (a *Account) TagInstance(instanceID string, tags map[string]string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	in, ok := a.st.instances.get(instanceID)
	if !ok {
		return fmt.Errorf("tagging instance: unknown instance %s", instanceID)
	}
	maps.Copy(in.tags, tags)
	return nil
}

// StartInstance moves a stopped instance to running with a new LaunchTime.
func (a *Account) StartInstance(id string) error { return a.SetInstanceState(id, StateRunning) }

// StopInstance stops an instance; its ENIs and their sessions stay, and its
// instance targets report "unused".
func (a *Account) StopInstance(id string) error { return a.SetInstanceState(id, StateStopped) }

// TerminateInstance terminates an instance: its primary ENI and that ENI's
// sessions are deleted, other ENIs are detached, and it is deregistered
// from every target group and Classic load balancer.
func (a *Account) TerminateInstance(id string) error { return a.SetInstanceState(id, StateTerminated) }

// SetInstanceState moves an instance to any EC2 state (pending, running,
// stopping, stopped, shutting-down, terminated) with the side effects of
// the state reached; intermediate states have none.
func (a *Account) SetInstanceState(id, state string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	in, ok := a.st.instances.get(id)
	if !ok {
		return fmt.Errorf("setting state of instance: unknown instance %s", id)
	}
	if err := a.st.setInstanceState(in, state); err != nil {
		return fmt.Errorf("setting instance %s to %s: %w", id, state, err)
	}
	return nil
}

// InstanceState returns an instance's state, "" if it does not exist.
func (a *Account) InstanceState(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if in, ok := a.st.instances.get(id); ok {
		return in.state
	}
	return ""
}

// AddENI creates an unattached ENI of type "interface" in vpcID (an ip
// target's ENI, say) and returns its id and private IP.
func (a *Account) AddENI(vpcID string) (eniID, ip string, err error) {
	return a.AddENIOfType(vpcID, "interface")
}

// AddENIOfType creates an unattached ENI of the given interface type
// ("interface", "network_load_balancer", "lambda", ...; "" means
// "interface"). Only "interface" ENIs can be a mirror source.
func (a *Account) AddENIOfType(vpcID, interfaceType string) (eniID, ip string, err error) {
	if interfaceType == "" {
		interfaceType = "interface"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.st.vpcs.get(vpcID)
	if !ok {
		return "", "", fmt.Errorf("adding ENI: unknown VPC %s", vpcID)
	}
	e := a.st.newENI(v, interfaceType)
	return e.id, e.ips[0], nil
}

// AttachENI attaches an ENI to an instance at a device index (>0 for a
// secondary ENI). It is detached, not deleted, when the instance ends.
func (a *Account) AttachENI(eniID, instanceID string, deviceIndex int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.st.enis.get(eniID)
	if !ok {
		return fmt.Errorf("attaching ENI: unknown ENI %s", eniID)
	}
	in, ok := a.st.instances.get(instanceID)
	if !ok || in.state == StateTerminated {
		return fmt.Errorf("attaching ENI %s: unknown or terminated instance %s", eniID, instanceID)
	}
	if e.attach != nil {
		return fmt.Errorf("attaching ENI %s: already attached to %s", eniID, e.attach.instance)
	}
	for _, id := range in.enis {
		if o, ok := a.st.enis.get(id); ok && o.attach.device == deviceIndex {
			return fmt.Errorf("attaching ENI %s: device index %d of %s is taken", eniID, deviceIndex, instanceID)
		}
	}
	a.st.attachENI(e, in, deviceIndex, false)
	return nil
}

// DetachENI detaches an ENI; its sessions stay.
func (a *Account) DetachENI(eniID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.st.enis.get(eniID)
	if !ok {
		return fmt.Errorf("detaching ENI: unknown ENI %s", eniID)
	}
	a.st.detachENI(e)
	return nil
}

// DeleteENI deletes an ENI and every session it is the source of.
func (a *Account) DeleteENI(eniID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.st.enis.get(eniID)
	if !ok {
		return fmt.Errorf("deleting ENI: unknown ENI %s", eniID)
	}
	a.st.deleteENI(e)
	return nil
}

// AddLoadBalancer creates an ELBv2 load balancer of kind "application" or
// "network" in vpcID and returns its ARN.
func (a *Account) AddLoadBalancer(kind, vpcID, name string, tags map[string]string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	short := lbShort(kind)
	if short == "" {
		return "", fmt.Errorf("adding load balancer %s: unknown kind %q", name, kind)
	}
	if _, ok := a.st.vpcs.get(vpcID); !ok {
		return "", fmt.Errorf("adding load balancer %s: unknown VPC %s", name, vpcID)
	}
	if _, dup := a.st.lbByName[name]; dup || name == "" {
		return "", fmt.Errorf("adding load balancer: name %q is empty or taken", name)
	}
	a.st.seq["lb"]++
	lb := &loadBalancer{
		arn:  a.st.arn(fmt.Sprintf("loadbalancer/%s/%s/%016x", short, name, a.st.seq["lb"])),
		name: name, kind: kind, vpc: vpcID, created: a.st.now(), tags: copyTags(tags),
	}
	a.st.lbs.put(lb.arn, lb)
	a.st.lbByName[name] = lb.arn
	return lb.arn, nil
}

// AddTargetGroup creates a target group of targetType (instance, ip,
// lambda, alb) in the load balancer's VPC, attached to it, and returns its
// ARN.
func (a *Account) AddTargetGroup(lbArn, targetType string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lb, ok := a.st.lbs.get(lbArn)
	if !ok {
		return "", fmt.Errorf("adding target group: unknown load balancer %s", lbArn)
	}
	switch targetType {
	case "instance", "ip", "lambda", "alb":
	default:
		return "", fmt.Errorf("adding target group to %s: unknown target type %q", lbArn, targetType)
	}
	a.st.seq["tg"]++
	n := a.st.seq["tg"]
	name := fmt.Sprintf("tg-%d", n)
	proto := "HTTP"
	if lb.kind == "network" {
		proto = "TCP"
	}
	tg := &targetGroup{
		arn: a.st.arn(fmt.Sprintf("targetgroup/%s/%016x", name, n)), name: name,
		targetType: targetType, vpc: lb.vpc, protocol: proto, port: 80,
		lbs: []string{lbArn}, tags: map[string]string{},
	}
	if targetType == "lambda" {
		tg.vpc, tg.protocol, tg.port = "", "", 0
	}
	a.st.tgs.put(tg.arn, tg)
	return tg.arn, nil
}

// AttachTargetGroup makes an existing target group also serve lbArn.
func (a *Account) AttachTargetGroup(tgArn, lbArn string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tg, ok := a.st.tgs.get(tgArn)
	if !ok {
		return fmt.Errorf("attaching target group: unknown target group %s", tgArn)
	}
	if _, ok := a.st.lbs.get(lbArn); !ok {
		return fmt.Errorf("attaching target group %s: unknown load balancer %s", tgArn, lbArn)
	}
	if !slices.Contains(tg.lbs, lbArn) {
		tg.lbs = append(tg.lbs, lbArn)
	}
	return nil
}

// DetachTargetGroup removes lbArn from a target group's load balancers;
// with none left its targets report "unused".
func (a *Account) DetachTargetGroup(tgArn, lbArn string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tg, ok := a.st.tgs.get(tgArn)
	if !ok {
		return fmt.Errorf("detaching target group: unknown target group %s", tgArn)
	}
	tg.lbs = slices.DeleteFunc(tg.lbs, func(s string) bool { return s == lbArn })
	return nil
}

// Register registers targets (instance ids, IPs, Lambda or ALB ARNs, per
// the group's target type) on the group's port, as RegisterTargets does.
func (a *Account) Register(tgArn string, ids ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tg, ok := a.st.tgs.get(tgArn)
	if !ok {
		return fmt.Errorf("registering targets: unknown target group %s", tgArn)
	}
	for _, id := range ids {
		if err := a.st.register(tg, id, 0); err != nil {
			return fmt.Errorf("registering %s in %s: %w", id, tgArn, err)
		}
	}
	return nil
}

// Deregister deregisters targets; they drain for Options.DrainDelay.
func (a *Account) Deregister(tgArn string, ids ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tg, ok := a.st.tgs.get(tgArn)
	if !ok {
		return fmt.Errorf("deregistering targets: unknown target group %s", tgArn)
	}
	for _, id := range ids {
		if err := a.st.deregisterID(tg, id, 0); err != nil {
			return fmt.Errorf("deregistering %s from %s: %w", id, tgArn, err)
		}
	}
	return nil
}

// SetTargetHealth forces a registered target's health (healthy,
// unhealthy, unavailable, initial); "" returns it to the computed state.
// Stopped instances and draining targets still report unused and draining.
func (a *Account) SetTargetHealth(tgArn, id, health string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tg, ok := a.st.tgs.get(tgArn)
	if !ok {
		return fmt.Errorf("setting target health: unknown target group %s", tgArn)
	}
	switch health {
	case "", HealthHealthy, HealthUnhealthy, HealthUnavailable, HealthInitial:
	default:
		return fmt.Errorf("setting target health of %s: %q cannot be forced", id, health)
	}
	found := false
	for _, t := range tg.targets {
		if t.id == id {
			t.override, found = health, true
		}
	}
	if !found {
		return fmt.Errorf("setting target health: %s is not registered in %s", id, tgArn)
	}
	return nil
}

// AddClassicLB creates a Classic load balancer with registered instances.
func (a *Account) AddClassicLB(name, vpcID string, instanceIDs []string, tags map[string]string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.st.vpcs.get(vpcID); !ok {
		return fmt.Errorf("adding classic load balancer %s: unknown VPC %s", name, vpcID)
	}
	if _, dup := a.st.classics.get(name); dup || name == "" {
		return fmt.Errorf("adding classic load balancer: name %q is empty or taken", name)
	}
	for _, id := range instanceIDs {
		if _, ok := a.st.instances.get(id); !ok {
			return fmt.Errorf("adding classic load balancer %s: unknown instance %s", name, id)
		}
	}
	a.st.classics.put(name, &classicLB{
		name: name, vpc: vpcID, instances: slices.Clone(instanceIDs), created: a.st.now(), tags: copyTags(tags),
	})
	return nil
}

// SetClassicInstances replaces a Classic load balancer's instances.
func (a *Account) SetClassicInstances(name string, instanceIDs ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.st.classics.get(name)
	if !ok {
		return fmt.Errorf("setting instances: unknown classic load balancer %s", name)
	}
	c.instances = slices.Clone(instanceIDs)
	return nil
}

// AddMirrorTarget creates a traffic mirror target for a network load
// balancer and returns its id.
func (a *Account) AddMirrorTarget(nlbArn string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lb, ok := a.st.lbs.get(nlbArn)
	if !ok || lb.kind != "network" {
		return "", fmt.Errorf("adding mirror target: %s is not a known network load balancer", nlbArn)
	}
	t := &mirrorTarget{id: a.st.newID("tmt"), nlb: nlbArn, tags: map[string]string{}}
	a.st.mirrorTargets.put(t.id, t)
	return t.id, nil
}

// AddMirrorFilter creates a traffic mirror filter and returns its id.
func (a *Account) AddMirrorFilter() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	f := &mirrorFilter{id: a.st.newID("tmf"), tags: map[string]string{}}
	a.st.mirrorFilters.put(f.id, f)
	return f.id
}

// SessionSpec describes a session created from Go (AddSession), e.g. a
// foreign one that apitap must leave alone.
type SessionSpec struct {
	ENI, Target, Filter string
	Number              int32
	VNI                 int32 // 0: chosen at random
	PacketLength        int32 // 0: whole packets
	Description         string
	Tags                map[string]string
}

// AddSession creates a session from Go under the same rules as the API
// and returns its id.
func (a *Account) AddSession(sp SessionSpec) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	spec := sessionSpec{
		ENI: sp.ENI, Target: sp.Target, Filter: sp.Filter, Number: sp.Number,
		Description: sp.Description, Tags: sp.Tags,
	}
	if sp.VNI != 0 {
		spec.VNI = &sp.VNI
	}
	if sp.PacketLength != 0 {
		spec.PacketLength = &sp.PacketLength
	}
	ss, err := a.st.createSession("", spec)
	if err != nil {
		return "", fmt.Errorf("adding session on %s: %w", sp.ENI, err)
	}
	return ss.id, nil
}

// DeleteSessionByID deletes a session from Go (as another actor would).
func (a *Account) DeleteSessionByID(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	ss, ok := a.st.sessions.get(id)
	if !ok || !ss.live() {
		return fmt.Errorf("deleting session: unknown session %s", id)
	}
	a.st.deleteSession(ss)
	return nil
}

// Session is a snapshot of one existing traffic mirror session.
type Session struct {
	ID, ENI, Target, Filter string
	Number, VNI             int32
	PacketLength            int32 // 0: whole packets
	Description             string
	Tags                    map[string]string
	Created                 time.Time
}

// Sessions returns the sessions that exist now, by id, regardless of the
// visibility delay.
func (a *Account) Sessions() []Session {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Session
	for _, ss := range a.st.sessions.values() {
		if ss.live() {
			out = append(out, Session{
				ID: ss.id, ENI: ss.eni, Target: ss.target, Filter: ss.filter,
				Number: ss.number, VNI: ss.vni, PacketLength: ss.packetLength,
				Description: ss.desc, Tags: copyTags(ss.tags), Created: ss.created,
			})
		}
	}
	return out
}

// ---- CloudFormation ----

// StackEvent is one event of a stack, as DescribeStackEvents returns it.
// Zero fields get defaults: EventId, StackId, StackName, Timestamp (now).
type StackEvent struct {
	EventID              string
	LogicalResourceID    string
	PhysicalResourceID   string
	ResourceType         string
	ResourceStatus       string
	ResourceStatusReason string
	ClientRequestToken   string
	Timestamp            time.Time
}

// AddStack creates a CloudFormation stack in CREATE_IN_PROGRESS and returns
// its id (an ARN).
func (a *Account) AddStack(name string, tags map[string]string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.st.stacks.get(name); dup || name == "" {
		return "", fmt.Errorf("adding stack: name %q is empty or taken", name)
	}
	a.st.seq["stack"]++
	now := a.st.now()
	st := &stack{
		id:   fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%08x-0000-4000-8000-%012x", a.opts.Region, a.opts.AccountID, name, a.st.seq["stack"], a.st.seq["stack"]),
		name: name, status: "CREATE_IN_PROGRESS", created: now,
		tags: copyTags(tags), outputs: map[string]string{},
	}
	a.st.stacks.put(name, st)
	a.st.addStackEvent(st, StackEvent{
		LogicalResourceID: name, PhysicalResourceID: st.id,
		ResourceType: "AWS::CloudFormation::Stack", ResourceStatus: st.status,
		ResourceStatusReason: "User Initiated",
	})
	return st.id, nil
}

// SetStackStatus changes a stack's status (and reason) and records the
// matching stack event.
func (a *Account) SetStackStatus(name, status, reason string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.st.stacks.get(name)
	if !ok {
		return fmt.Errorf("setting stack status: unknown stack %s", name)
	}
	st.status, st.reason, st.updated = status, reason, a.st.now()
	a.st.addStackEvent(st, StackEvent{
		LogicalResourceID: name, PhysicalResourceID: st.id,
		ResourceType: "AWS::CloudFormation::Stack", ResourceStatus: status,
		ResourceStatusReason: reason,
	})
	return nil
}

// SetStackOutput sets one output of a stack.
func (a *Account) SetStackOutput(name, key, value string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.st.stacks.get(name)
	if !ok {
		return fmt.Errorf("setting stack output: unknown stack %s", name)
	}
	st.outputs[key] = value
	return nil
}

// AddStackEvent adds an event (e.g. a resource's CREATE_FAILED, with its
// ResourceStatusReason and the ClientRequestToken of the stack operation)
// to a stack. A zero Timestamp is now; an earlier Timestamp than the
// newest event's puts the event in its place in time.
func (a *Account) AddStackEvent(name string, ev StackEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.st.stacks.get(name)
	if !ok {
		return fmt.Errorf("adding stack event: unknown stack %s", name)
	}
	a.st.addStackEvent(st, ev)
	return nil
}

func (s *state) addStackEvent(st *stack, ev StackEvent) {
	s.seq["event"]++
	if ev.EventID == "" {
		ev.EventID = ev.LogicalResourceID + "-" + strconv.Itoa(s.seq["event"])
	}
	if ev.Timestamp.IsZero() {
		ev.Timestamp = s.now()
	}
	// Keep the events in time order (equal times in arrival order), so
	// that DescribeStackEvents' newest first holds for events added with
	// a Timestamp in the past.
	i := len(st.events)
	for i > 0 && st.events[i-1].Timestamp.After(ev.Timestamp) {
		i--
	}
	st.events = slices.Insert(st.events, i, ev)
}
