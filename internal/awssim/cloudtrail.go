package awssim

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// CloudTrail, as far as the operator commands read it: which trails exist,
// whether they log, and which events they select. The SDK's cloudtrail
// client (v1.56.0) speaks awsJson1_1 with X-Amz-Target
// CloudTrail_20131101.<Action>.
var cloudtrailService = service{
	name:     "cloudtrail",
	protocol: protoJSON,
	target:   "CloudTrail_20131101",
	bodyActions: map[string]bodyHandler{
		"DescribeTrails":    describeTrails,
		"GetTrailStatus":    getTrailStatus,
		"GetEventSelectors": getEventSelectors,
	},
	// CloudTrail's ThrottlingException and AccessDeniedException (the
	// CloudTrail API reference's common errors).
	throttle: errf(400, "ThrottlingException", "Rate exceeded"),
	denied:   errf(400, "AccessDeniedException", ""),
}

// CodeTrailNotFound answers a trail name or ARN the account does not have.
// AWS (GetTrailStatus' and GetEventSelectors' errors).
const CodeTrailNotFound = "TrailNotFoundException"

// Trail is a CloudTrail trail of the account.
type Trail struct {
	Name               string
	S3BucketName       string
	IsMultiRegionTrail bool
	IsLogging          bool
	// EventSelectors are basic selectors; AdvancedEventSelectors replace
	// them when set (a trail has one kind or the other). Both empty means
	// what a new trail gets: every management event, read and write.
	EventSelectors         []EventSelector
	AdvancedEventSelectors []AdvancedEventSelector
}

// EventSelector is a basic event selector.
type EventSelector struct {
	ReadWriteType                 string // ReadOnly, WriteOnly or All
	IncludeManagementEvents       bool
	ExcludeManagementEventSources []string
}

// AdvancedEventSelector is an advanced event selector.
type AdvancedEventSelector struct {
	Name           string
	FieldSelectors []FieldSelector
}

// FieldSelector is one field condition of an advanced selector.
type FieldSelector struct {
	Field                     string
	Equals, NotEquals         []string
	StartsWith, NotStartsWith []string
	EndsWith, NotEndsWith     []string
}

type trail struct {
	Trail
	started, stopped time.Time
}

func (s *state) trailARN(name string) string {
	return fmt.Sprintf("arn:aws:cloudtrail:%s:%s:trail/%s", s.a.opts.Region, s.a.opts.AccountID, name)
}

// findTrail takes a name or an ARN, as every CloudTrail call does.
func (s *state) findTrail(nameOrARN string) (*trail, bool) {
	name := nameOrARN
	if strings.HasPrefix(nameOrARN, "arn:") {
		_, name, _ = strings.Cut(nameOrARN, ":trail/")
		if nameOrARN != s.trailARN(name) {
			return nil, false
		}
	}
	return s.trails.get(name)
}

func (s *state) trailNotFound(nameOrARN string) error {
	arn := nameOrARN
	if !strings.HasPrefix(arn, "arn:") {
		arn = s.trailARN(arn)
	}
	return badRequest(CodeTrailNotFound, "Unknown trail: %s for the user: %s", arn, s.a.opts.AccountID)
}

type jTrail struct {
	Name                       string `json:"Name"`
	S3BucketName               string `json:"S3BucketName,omitempty"`
	IncludeGlobalServiceEvents bool   `json:"IncludeGlobalServiceEvents"`
	IsMultiRegionTrail         bool   `json:"IsMultiRegionTrail"`
	HomeRegion                 string `json:"HomeRegion"`
	TrailARN                   string `json:"TrailARN"`
	LogFileValidationEnabled   bool   `json:"LogFileValidationEnabled"`
	HasCustomEventSelectors    bool   `json:"HasCustomEventSelectors"`
	HasInsightSelectors        bool   `json:"HasInsightSelectors"`
	IsOrganizationTrail        bool   `json:"IsOrganizationTrail"`
}

// describeTrails answers with the trails named in trailNameList (names
// or ARNs), or every trail; names the account does not have are left out,
// as the reference says information is returned only for trails that
// match. includeShadowTrails is accepted: the account has one region.
// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_DescribeTrails.html
func describeTrails(s *state, body []byte) (any, error) {
	var in struct {
		TrailNameList []string `json:"trailNameList"`
	}
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	out := []jTrail{}
	for _, t := range s.trails.values() {
		if len(in.TrailNameList) > 0 && !slices.Contains(in.TrailNameList, t.Name) && !slices.Contains(in.TrailNameList, s.trailARN(t.Name)) {
			continue
		}
		out = append(out, jTrail{
			Name: t.Name, S3BucketName: t.S3BucketName, IncludeGlobalServiceEvents: true,
			IsMultiRegionTrail: t.IsMultiRegionTrail, HomeRegion: s.a.opts.Region, TrailARN: s.trailARN(t.Name),
			HasCustomEventSelectors: len(t.EventSelectors) > 0 || len(t.AdvancedEventSelectors) > 0,
		})
	}
	return map[string][]jTrail{"trailList": out}, nil
}

type trailStatusOut struct {
	IsLogging        bool     `json:"IsLogging"`
	StartLoggingTime *float64 `json:"StartLoggingTime,omitempty"`
	StopLoggingTime  *float64 `json:"StopLoggingTime,omitempty"`
}

func epochSeconds(t time.Time) *float64 {
	if t.IsZero() {
		return nil
	}
	v := float64(t.UnixMilli()) / 1e3
	return &v
}

// getTrailStatus answers IsLogging (and when logging last started or
// stopped) for a trail by name or ARN, or TrailNotFoundException.
// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html
func getTrailStatus(s *state, body []byte) (any, error) {
	var in struct{ Name string }
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	t, ok := s.findTrail(in.Name)
	if !ok {
		return nil, s.trailNotFound(in.Name)
	}
	return &trailStatusOut{IsLogging: t.IsLogging, StartLoggingTime: epochSeconds(t.started), StopLoggingTime: epochSeconds(t.stopped)}, nil
}

type jEventSelector struct {
	ReadWriteType                 string   `json:"ReadWriteType"`
	IncludeManagementEvents       bool     `json:"IncludeManagementEvents"`
	DataResources                 []any    `json:"DataResources"`
	ExcludeManagementEventSources []string `json:"ExcludeManagementEventSources"`
}

type jFieldSelector struct {
	Field         string   `json:"Field"`
	Equals        []string `json:"Equals,omitempty"`
	NotEquals     []string `json:"NotEquals,omitempty"`
	StartsWith    []string `json:"StartsWith,omitempty"`
	NotStartsWith []string `json:"NotStartsWith,omitempty"`
	EndsWith      []string `json:"EndsWith,omitempty"`
	NotEndsWith   []string `json:"NotEndsWith,omitempty"`
}

type jAdvancedSelector struct {
	Name           string           `json:"Name,omitempty"`
	FieldSelectors []jFieldSelector `json:"FieldSelectors"`
}

type eventSelectorsOut struct {
	TrailARN               string              `json:"TrailARN"`
	EventSelectors         []jEventSelector    `json:"EventSelectors,omitempty"`
	AdvancedEventSelectors []jAdvancedSelector `json:"AdvancedEventSelectors,omitempty"`
}

// getEventSelectors answers a trail's basic or advanced selectors, or
// TrailNotFoundException.
// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetEventSelectors.html
// A trail created without selectors logs every management event, read
// and write (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-management-events-with-cloudtrail.html).
func getEventSelectors(s *state, body []byte) (any, error) {
	var in struct{ TrailName string }
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	t, ok := s.findTrail(in.TrailName)
	if !ok {
		return nil, s.trailNotFound(in.TrailName)
	}
	out := &eventSelectorsOut{TrailARN: s.trailARN(t.Name)}
	if len(t.AdvancedEventSelectors) > 0 {
		for _, a := range t.AdvancedEventSelectors {
			x := jAdvancedSelector{Name: a.Name, FieldSelectors: []jFieldSelector{}}
			for _, f := range a.FieldSelectors {
				x.FieldSelectors = append(x.FieldSelectors, jFieldSelector(f))
			}
			out.AdvancedEventSelectors = append(out.AdvancedEventSelectors, x)
		}
		return out, nil
	}
	sels := t.EventSelectors
	if len(sels) == 0 {
		sels = []EventSelector{{ReadWriteType: "All", IncludeManagementEvents: true}}
	}
	for _, e := range sels {
		out.EventSelectors = append(out.EventSelectors, jEventSelector{
			ReadWriteType: e.ReadWriteType, IncludeManagementEvents: e.IncludeManagementEvents,
			DataResources: []any{}, ExcludeManagementEventSources: append([]string{}, e.ExcludeManagementEventSources...),
		})
	}
	return out, nil
}

// PutTrail creates or replaces a trail and returns its ARN. A trail that
// starts or stops logging records the time (GetTrailStatus). A new
// account has no trail.
func (a *Account) PutTrail(t Trail) (string, error) {
	if t.Name == "" {
		return "", fmt.Errorf("awssim: a trail needs a name")
	}
	if len(t.EventSelectors) > 0 && len(t.AdvancedEventSelectors) > 0 {
		return "", fmt.Errorf("awssim: trail %s: basic and advanced event selectors cannot both be set", t.Name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	x := &trail{Trail: t}
	if old, ok := a.st.trails.get(t.Name); ok {
		x.started, x.stopped = old.started, old.stopped
		if old.IsLogging == t.IsLogging {
			a.st.trails.put(t.Name, x)
			return a.st.trailARN(t.Name), nil
		}
	}
	if t.IsLogging {
		x.started = a.st.now()
	} else if _, existed := a.st.trails.get(t.Name); existed {
		x.stopped = a.st.now()
	}
	a.st.trails.put(t.Name, x)
	return a.st.trailARN(t.Name), nil
}

// DeleteTrail removes a trail; removing one that does not exist is no
// error.
func (a *Account) DeleteTrail(name string) {
	a.mu.Lock()
	a.st.trails.del(name)
	a.mu.Unlock()
}
