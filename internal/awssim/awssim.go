// Package awssim is a simulated AWS account served over HTTP, for tests and
// local runs of apitap's control plane and operator commands. The real
// aws-sdk-go-v2 clients reach it through an endpoint override (Config), so
// their serializers, paginators and retryer are exercised instead of being
// replaced by Go fakes. Each service speaks the protocol its SDK client
// speaks at the version in go.mod:
//
//	service         protocol      routed by                          actions
//	ec2             EC2 Query     path /ec2 or Version 2016-11-15    instances, ENIs, mirror sessions/targets/filters, tags,
//	                                                                 VPCs, subnets, zones, instance type offerings
//	elbv2           Query         path /elbv2 or Version 2015-12-01  load balancers, target groups, target health
//	elb             Query         path /elb or Version 2012-06-01    Classic load balancers
//	cloudformation  Query         path /cloudformation or Version    DescribeStacks, DescribeStackEvents
//	autoscaling     Query         Version 2011-01-01                 DescribeAutoScalingGroups, UpdateAutoScalingGroup,
//	                                                                 SetInstanceHealth, TerminateInstanceInAutoScalingGroup
//	iam             Query         Version 2010-05-08                 GetRole
//	sts             Query         Version 2011-06-15                 GetCallerIdentity
//	sns             Query         Version 2010-03-31                 Publish
//	cloudtrail      awsJson1_1    X-Amz-Target CloudTrail_20131101   DescribeTrails, GetTrailStatus, GetEventSelectors
//	servicequotas   awsJson1_1    X-Amz-Target ServiceQuotasV20190624 GetServiceQuota
//	kms             awsJson1_1    X-Amz-Target TrentService          GetKeyPolicy, PutKeyPolicy
//	dynamodb        awsJson1_0    X-Amz-Target DynamoDB_20120810     PutItem, GetItem, DeleteItem, Scan
//	lambda          restJson1     GET /2016-08-19/account-settings   GetAccountSettings
//	monitoring      RPCv2 CBOR    /service/GraniteServiceVersion20100801/operation/<Action>
//	                                                                 PutMetricData, GetMetricData (CloudWatch)
//
// ELB and ELBv2 share a signing name, so the SigV4 scope cannot tell them
// apart; the Query services are told apart by path prefix or Version.
// Signatures are not verified. Call counts (Calls) are keyed by the
// service names above.
//
// The account keeps state (VPCs, instances, ENIs, load balancers, target
// groups and targets, Classic load balancers, traffic mirror targets,
// filters and sessions, CloudFormation stacks and their events, Auto
// Scaling groups, subnets and offerings, IAM roles, trails, metrics,
// quotas, SNS topics and the messages published to them, DynamoDB tables
// and items, KMS keys and their policies) and enforces AWS's rules on
// mirror sessions; see CreateTrafficMirrorSession in ec2.go for the error
// codes. Tests build the world from Go (AddVPC, AddInstance, AddTopic,
// AddTable, AddKey, AddFleetGroup, ...), inject faults at run time
// (SetFaults), and read back what was sent (Calls, Stats, Published,
// Items, KeyPolicy, Group).
//
// The account is our own idea of AWS: each behaviour it models cites the
// AWS page it comes from next to the code, and says so where AWS documents
// nothing and the account had to choose. What a service's file says is not
// modelled is refused or ignored as that file says, never guessed.
//
// Every method is safe for concurrent use. One mutex guards all state: the
// simulator favours obviously-correct over fast.
package awssim

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/apitap/apitap/internal/contract"
)

// Clock tells the account what time it is. Tests that run in simulated time
// pass a *ManualClock; the default is the real clock.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to. The zero value
// starts at the zero time; use NewManualClock for a realistic start.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Sleep advances the clock by d at once, unless ctx is done: code under
// test that waits (rate limiters, backoff) runs hours of simulated time in
// moments. With it a ManualClock serves as the orchestrator's clock too.
func (c *ManualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Defaults of Options.
const (
	DefaultAccountID = "123456789012"
	DefaultRegion    = "us-east-1"
	// DefaultMaxSessions is AWS's per-account quota of mirror sessions.
	DefaultMaxSessions = 10000
)

// DefaultUnsupportedInstanceTypes are the instance families that cannot be
// a mirror source unless Options says otherwise. AWS's real list changes
// over time (docs/aws.md); T2 is the one family documented as never
// supported, so it is the only default.
var DefaultUnsupportedInstanceTypes = []string{"t2"}

// Options configure an Account. The zero value works.
type Options struct {
	// Seed makes fault injection and random VNIs reproducible. Default 1.
	Seed uint64
	// Clock is the account's time. Default: the real clock.
	Clock Clock
	// AccountID appears in ARNs and owner ids. Default DefaultAccountID.
	AccountID string
	// Region appears in ARNs and in Config. Default DefaultRegion.
	Region string
	// HealthyAfter is how long a registered target (or a restarted
	// instance target) reports "initial" before "healthy". Default 0:
	// healthy at once.
	HealthyAfter time.Duration
	// DrainDelay is how long a deregistered target reports "draining"
	// before it disappears (AWS's deregistration delay). Default 0.
	DrainDelay time.Duration
	// UnsupportedInstanceTypes cannot be a mirror source. An entry is an
	// instance type ("m6i.large") or a family ("m6i"). nil means
	// DefaultUnsupportedInstanceTypes; an empty non-nil slice means none.
	UnsupportedInstanceTypes []string
	// MaxSessions is the per-account session quota. Default
	// DefaultMaxSessions; tests lower it to reach the limit cheaply.
	MaxSessions int
	// StackTagKey is the tag whose value names the owning stack, used to
	// detect duplicate sessions (Stats). Default contract.TagStack.
	StackTagKey string
	// Zones are the region's availability zones (DescribeAvailabilityZones,
	// subnets, instance type offerings). Default: Region + "a", "b", "c".
	Zones []string
	// Logger receives one debug line per request. Default: discard.
	Logger *slog.Logger

	// Strictness: where AWS documents nothing, the account can behave
	// either way, so that tests prove apitap works whichever way AWS does.

	// UndocumentedFilters is what a Describe call does with a filter its
	// API reference does not list (tag:<key> on DescribeTrafficMirror*, or
	// an unknown name). Default FiltersApply.
	UndocumentedFilters FilterMode
	// RejectFilterCode is the error code of a refused filter. Default
	// InvalidFilter ("The specified filter is not valid", EC2 API error
	// codes); InvalidParameterValue is the other answer seen in the wild.
	RejectFilterCode string
	// AllowDuplicateNumbers lets a second session with a session number
	// already used on the same source ENI be created. AWS does not document
	// whether it refuses one; by default the account refuses it
	// (InvalidParameterValue).
	AllowDuplicateNumbers bool
	// TokenIgnoresTags leaves the tags out of the parameters a reused
	// ClientToken is compared on: a replay with other tags answers with
	// the original session instead of IdempotentParameterMismatch. AWS
	// does not say which it does.
	TokenIgnoresTags bool
}

// FilterMode is how a Describe call treats a filter AWS does not document
// for it.
type FilterMode string

const (
	// FiltersApply applies undocumented tag filters as if documented and
	// refuses unknown names (what the account did before the modes).
	FiltersApply FilterMode = "apply"
	// FiltersIgnore drops undocumented filters and unknown names, as moto
	// does: the call answers as if they were not there.
	FiltersIgnore FilterMode = "ignore"
	// FiltersReject refuses undocumented filters with RejectFilterCode.
	FiltersReject FilterMode = "reject"
)

// FilterModes are the modes, for flags and test tables.
var FilterModes = []FilterMode{FiltersApply, FiltersIgnore, FiltersReject}

// Faults are failures injected on demand. Change them at any time with
// SetFaults. Rates are fractions of requests in [0, 1], drawn from the
// account's seeded generator.
type Faults struct {
	// ThrottleRate fails requests with EC2's RequestLimitExceeded (HTTP
	// 503), the Query services' and CloudWatch's Throttling (HTTP 400),
	// SNS's Throttled (429), CloudTrail's, DynamoDB's and KMS's
	// ThrottlingException, Service Quotas' TooManyRequestsException or
	// Lambda's TooManyRequestsException (429).
	ThrottleRate float64
	// ServerErrorRate fails requests with HTTP 500 InternalError or 503
	// Unavailable/ServiceUnavailable, alternately.
	ServerErrorRate float64
	// Throttled and server-error faults above happen before the request
	// touches any state: a throttled create creates nothing.

	// LostResponseRate is the one fault that happens after the change: a
	// mutating request is carried out and then answered with HTTP 500, as
	// when a response is lost on the way back. The SDK retries with the
	// same ClientToken, which exercises idempotency. Default 0.
	LostResponseRate float64
	// Latency is added to every request, in real time (not the Clock).
	Latency time.Duration
	// SessionVisibilityDelay is eventual consistency for
	// DescribeTrafficMirrorSessions: a new session shows only this long
	// after it was created, and a deleted one keeps showing for this long.
	// The rules (3 per ENI, numbers, quota) always see the true state.
	SessionVisibilityDelay time.Duration
	// Actions limits the rate-based faults to these action names (e.g.
	// "CreateTrafficMirrorSession"); empty means every action.
	Actions []string
	// Denied actions are refused as IAM refuses a caller without the
	// permission: UnauthorizedOperation (HTTP 403) from EC2, AccessDenied
	// from the other Query services and CloudWatch (EC2 API error codes,
	// common client errors; Elastic Load Balancing common errors),
	// AuthorizationError (403) from SNS (Publish's errors),
	// AccessDeniedException from the JSON services (their API references'
	// common errors).
	Denied []string
}

// Account is one simulated AWS account and its HTTP endpoint.
type Account struct {
	opts   Options
	clock  Clock
	log    *slog.Logger
	srv    *httptest.Server
	client *http.Client

	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	st     *state
	calls  map[string]int
	total  int
	stats  statsState
	reqSeq uint64
}

// New starts a simulated account listening on 127.0.0.1. Close it when done.
func New(opts Options) *Account {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.UnsupportedInstanceTypes == nil {
		opts.UnsupportedInstanceTypes = DefaultUnsupportedInstanceTypes
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.StackTagKey == "" {
		opts.StackTagKey = contract.TagStack
	}
	if len(opts.Zones) == 0 {
		opts.Zones = []string{opts.Region + "a", opts.Region + "b", opts.Region + "c"}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.UndocumentedFilters == "" {
		opts.UndocumentedFilters = FiltersApply
	}
	if opts.RejectFilterCode == "" {
		opts.RejectFilterCode = CodeInvalidFilter
	}
	a := &Account{
		opts:  opts,
		clock: opts.Clock,
		log:   opts.Logger,
		rng:   rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		calls: map[string]int{},
	}
	a.st = newState(a)
	a.stats.maxPerENI = map[string]int{}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serveHTTP))
	// Many SDK clients share this transport; keep enough idle connections
	// that a busy test does not churn through ephemeral ports.
	a.client = &http.Client{Transport: plainBodies{&http.Transport{
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     30 * time.Second,
	}}}
	return a
}

// plainBodies hides the io.WriterTo of request bodies from net/http.
//
// Why: smithy-go wraps each request body in a reader whose WriteTo returns
// io.EOF once the SDK has closed it, and the SDK closes it as soon as the
// response headers arrive. net/http, after writing Content-Length bytes,
// copies the body once more to check that nothing is left; when a fast
// local server has already answered, that copy meets the closed body, gets
// io.EOF as an error, and net/http closes the connection while the response
// body is still being read ("use of closed network connection"). Against
// real AWS the network's latency makes this rare; here it happened in about
// one test run in three, adding retries and making call counts
// non-deterministic. Plain Read calls return a clean EOF instead.
type plainBodies struct{ rt http.RoundTripper }

type readOnlyBody struct{ io.ReadCloser }

func (p plainBodies) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r2 := *r
		r2.Body = readOnlyBody{r.Body}
		r = &r2
	}
	return p.rt.RoundTrip(r)
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (p plainBodies) CloseIdleConnections() {
	if c, ok := p.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// Close stops the HTTP server.
func (a *Account) Close() {
	a.client.CloseIdleConnections()
	a.srv.Close()
}

// URL is the server's base URL; requests to it are routed by Version.
func (a *Account) URL() string { return a.srv.URL }

// Endpoint is the base URL of one service: "ec2", "elbv2", "elb" or
// "cloudformation". Set it as the BaseEndpoint of that service's client to
// route by path instead of by Version.
func (a *Account) Endpoint(service string) string {
	return a.srv.URL + "/" + strings.ToLower(service)
}

// HTTPClient is the client Config uses: it talks to the server directly,
// never through a proxy from the environment.
func (a *Account) HTTPClient() *http.Client { return a.client }

// Config returns an aws.Config for the real SDK clients, pointed at this
// account: static credentials, the account's region, BaseEndpoint = URL()
// and the account's HTTP client. It reads no environment variable, shared
// config file or instance metadata, so no real AWS endpoint or credential
// is ever touched. The retryer is the SDK's default (as in production);
// tests that inject throttling may set cfg.Retryer = QuickRetryer(n) to
// keep backoff short.
func (a *Account) Config() aws.Config {
	return aws.Config{
		Region:       a.opts.Region,
		Credentials:  staticCredentials{},
		BaseEndpoint: aws.String(a.URL()),
		HTTPClient:   a.client,
	}
}

// staticCredentials are fixed, made-up keys: requests are signed as usual
// and the simulator ignores the signature.
type staticCredentials struct{}

func (staticCredentials) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{
		AccessKeyID:     "AKIDAWSSIMULATOR0000",
		SecretAccessKey: "awssim-secret-not-a-real-key",
		Source:          "awssim",
	}, nil
}

// QuickRetryer returns a retryer factory for aws.Config.Retryer: the SDK's
// standard retryer (same retryable and throttle codes) with maxAttempts,
// millisecond backoff and no retry quota, so tests with injected faults do
// not sleep for seconds or run out of retry tokens.
func QuickRetryer(maxAttempts int) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
				return time.Duration(attempt) * time.Millisecond, nil
			})
		})
	}
}

// SetFaults replaces the injected faults.
func (a *Account) SetFaults(f Faults) {
	a.mu.Lock()
	a.faults = f
	a.mu.Unlock()
}

// CurrentFaults returns the injected faults in force.
func (a *Account) CurrentFaults() Faults {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.faults
}

// SetUnsupportedInstanceTypes replaces the instance types (or families)
// that cannot be a mirror source.
func (a *Account) SetUnsupportedInstanceTypes(types ...string) {
	a.mu.Lock()
	a.opts.UnsupportedInstanceTypes = append([]string{}, types...)
	a.mu.Unlock()
}

// CallCounts counts the HTTP requests the account received, including
// those answered with an injected fault.
type CallCounts struct {
	Total int
	// ByAction is keyed "service:Action", e.g. "ec2:DescribeInstances";
	// service is one of the names in the package doc (CloudWatch is
	// "monitoring").
	ByAction map[string]int
}

// Get returns the count of one service's action.
func (c CallCounts) Get(service, action string) int { return c.ByAction[service+":"+action] }

// Calls returns a snapshot of the request counters.
func (a *Account) Calls() CallCounts {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := make(map[string]int, len(a.calls))
	for k, v := range a.calls {
		m[k] = v
	}
	return CallCounts{Total: a.total, ByAction: m}
}

// ResetCalls zeroes the request counters.
func (a *Account) ResetCalls() {
	a.mu.Lock()
	a.calls = map[string]int{}
	a.total = 0
	a.mu.Unlock()
}

// Mutation is one mutating API call as received.
type Mutation struct {
	Time    time.Time
	Service string
	Action  string
	// Params are the form fields less Action and Version (Query
	// services), or {"Body": [the JSON request body]} (JSON services).
	Params map[string][]string
	// UserAgent is the request's User-Agent header (the SDK's, with any
	// app id the caller configured).
	UserAgent string
	// ErrorCode is "" when the call succeeded, else the code returned
	// (injected faults included).
	ErrorCode string
	// Fault says the outcome was injected ("throttle", "server",
	// "lost-response"), "" otherwise.
	Fault string
}

// Duplicate records two or more sessions that existed at the same time for
// the same (ENI, mirror target, VNI) and carried the same stack tag value.
type Duplicate struct {
	ENI      string
	Target   string
	Stack    string
	Sessions []string
	Time     time.Time
}

// Stats are the invariants the account tracked since it started.
type Stats struct {
	// MaxSessionsOnENI is the largest number of sessions that ever existed
	// at once on one ENI, and MaxSessionsENI is that ENI.
	MaxSessionsOnENI int
	MaxSessionsENI   string
	// Duplicates lists every time a session appeared next to another one
	// for the same ENI and target carrying the same stack tag.
	Duplicates []Duplicate
	// Mutations is the log of mutating calls, in arrival order.
	Mutations []Mutation
	// SessionsCreated and SessionsDeleted count live changes (API and Go).
	SessionsCreated int
	SessionsDeleted int
}

type statsState struct {
	maxPerENI  map[string]int
	max        int
	maxENI     string
	duplicates []Duplicate
	mutations  []Mutation
	created    int
	deleted    int
}

// Stats returns a snapshot of the tracked invariants.
func (a *Account) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Stats{
		MaxSessionsOnENI: a.stats.max,
		MaxSessionsENI:   a.stats.maxENI,
		SessionsCreated:  a.stats.created,
		SessionsDeleted:  a.stats.deleted,
	}
	s.Duplicates = append(s.Duplicates, a.stats.duplicates...)
	s.Mutations = make([]Mutation, len(a.stats.mutations))
	copy(s.Mutations, a.stats.mutations)
	return s
}
