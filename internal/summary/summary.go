// Package summary is the record every apitap function writes once per
// invocation: one structured log line with the counts and what happened to
// which ENI, and the same counts as CloudWatch metrics in Embedded Metric
// Format (EMF), so that dashboards and alarms need no log parsing.
package summary

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/apitap/apitap/internal/contract"
)

// MaxDetails is how many Details a summary keeps and logs; the rest are
// only counted, so that a pass over 10,000 ENIs still logs one bounded line
// (CloudWatch Logs cuts events at 1 MB, and Lambda log lines are billed).
const MaxDetails = 100

// Actions a Detail records.
const (
	ActionCreated     = "created"
	ActionDeleted     = "deleted"
	ActionConflict    = "conflict"
	ActionUnsupported = "unsupported"
	ActionError       = "error"
	ActionProtected   = "protected"
)

// Detail is what happened to one ENI's session.
type Detail struct {
	ENI     string `json:"eni,omitempty"`
	LB      string `json:"lb,omitempty"`
	Session string `json:"session,omitempty"`
	Action  string `json:"action"`
	Reason  string `json:"reason,omitempty"`
}

// Summary is one invocation's outcome. Counts are filled by the caller; the
// package only reports them.
type Summary struct {
	Function string // e.g. "instance-events"
	Trigger  string // what started it, e.g. "EC2State i-0abc..." or "scheduled"

	Desired     int // sources that should be mirrored
	Actual      int // sessions found
	Created     int
	Deleted     int
	Kept        int // desired sources that already had their session
	Conflicts   int // ENIs with a foreign session
	Unsupported int // ENIs that cannot be mirrored now
	Protected   int // deletions held back by the grace period
	// Adopted counts creates answered with a session an earlier create
	// with the same token had made.
	Adopted int
	// Refused counts deletes refused because the session was not ours:
	// never more than 0 unless apitap has a bug.
	Refused int
	// UndocumentedErrors counts AWS errors understood only from their
	// message, not from a documented code.
	UndocumentedErrors int
	Errors             int
	APICalls           int
	Duration           time.Duration

	// Details holds at most MaxDetails entries when filled through Add;
	// Log caps it in any case.
	Details []Detail
	// DetailsOmitted counts details Add did not keep.
	DetailsOmitted int
}

// Add records d, or only counts it once MaxDetails are kept.
func (s *Summary) Add(d Detail) {
	if len(s.Details) >= MaxDetails {
		s.DetailsOmitted++
		return
	}
	s.Details = append(s.Details, d)
}

// capped returns the details to report and how many were left out.
func (s *Summary) capped() ([]Detail, int) {
	if len(s.Details) <= MaxDetails {
		return s.Details, s.DetailsOmitted
	}
	return s.Details[:MaxDetails], s.DetailsOmitted + len(s.Details) - MaxDetails
}

// Log writes the summary as one record, at Warn when there were errors so
// that a level filter finds the invocations that need a look.
func (s *Summary) Log(logger *slog.Logger) {
	details, omitted := s.capped()
	if details == nil {
		details = []Detail{} // [] rather than null for log queries
	}
	level := slog.LevelInfo
	if s.Errors > 0 {
		level = slog.LevelWarn
	}
	logger.LogAttrs(context.Background(), level, "invocation summary",
		slog.String("function", s.Function),
		slog.String("trigger", s.Trigger),
		slog.Int("desired", s.Desired),
		slog.Int("actual", s.Actual),
		slog.Int("created", s.Created),
		slog.Int("deleted", s.Deleted),
		slog.Int("kept", s.Kept),
		slog.Int("conflicts", s.Conflicts),
		slog.Int("unsupported", s.Unsupported),
		slog.Int("protected", s.Protected),
		slog.Int("adopted", s.Adopted),
		slog.Int("refused", s.Refused),
		slog.Int("undocumented_errors", s.UndocumentedErrors),
		slog.Int("errors", s.Errors),
		slog.Int("api_calls", s.APICalls),
		slog.Float64("duration_ms", milliseconds(s.Duration)),
		slog.Any("details", details),
		slog.Int("details_omitted", omitted),
	)
}

func isMetric(root map[string]any, k string) bool {
	_, ok := root[k]
	return ok
}

func milliseconds(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// EMF limits from the specification (CloudWatch Embedded Metric Format).
const (
	emfMaxNamespace      = 1024
	emfMaxDimensions     = 30 // keys in one DimensionSet
	emfMaxDimensionKey   = 250
	emfMaxDimensionValue = 1024
)

// metric is one EMF metric: its name is also its top-level member.
type metric struct {
	name  string
	unit  string
	value float64
}

func (s *Summary) metrics() []metric {
	return []metric{
		{contract.MetricDesired, "Count", float64(s.Desired)},
		{contract.MetricActual, "Count", float64(s.Actual)},
		{contract.MetricCreated, "Count", float64(s.Created)},
		{contract.MetricDeleted, "Count", float64(s.Deleted)},
		{contract.MetricConflicts, "Count", float64(s.Conflicts)},
		{contract.MetricUnsupported, "Count", float64(s.Unsupported)},
		{contract.MetricErrors, "Count", float64(s.Errors)},
		{contract.MetricRefused, "Count", float64(s.Refused)},
		{contract.MetricUndocumentedErrors, "Count", float64(s.UndocumentedErrors)},
		{contract.MetricAPICalls, "Count", float64(s.APICalls)},
		{contract.MetricDuration, "Milliseconds", milliseconds(s.Duration)},
	}
}

// EMF writes the counts to w as one CloudWatch Embedded Metric Format
// document on one line. In Lambda, w is standard output: CloudWatch Logs
// extracts the metrics from the log line. dims become one DimensionSet of
// all its keys (none: an empty set, metrics without dimensions); keep them
// low-cardinality, since every value combination is a new metric. Nothing
// is written when the document would break the specification.
func (s *Summary) EMF(w io.Writer, namespace string, dims map[string]string) error {
	if namespace == "" || len(namespace) > emfMaxNamespace {
		return fmt.Errorf("writing EMF metrics: namespace must have 1 to %d characters, has %d", emfMaxNamespace, len(namespace))
	}
	if len(dims) > emfMaxDimensions {
		return fmt.Errorf("writing EMF metrics to %s: %d dimensions, at most %d", namespace, len(dims), emfMaxDimensions)
	}
	ms := s.metrics()
	root := make(map[string]any, 1+len(ms)+len(dims))
	defs := make([]map[string]string, 0, len(ms))
	for _, m := range ms {
		root[m.name] = m.value
		defs = append(defs, map[string]string{"Name": m.name, "Unit": m.unit})
	}
	keys := make([]string, 0, len(dims))
	for k, v := range dims {
		switch {
		case k == "" || len(k) > emfMaxDimensionKey:
			return fmt.Errorf("writing EMF metrics to %s: dimension name %q must have 1 to %d characters", namespace, k, emfMaxDimensionKey)
		case k == "_aws":
			return fmt.Errorf("writing EMF metrics to %s: dimension name _aws is reserved", namespace)
		case isMetric(root, k):
			// Its value would overwrite the metric's: the member holds one.
			return fmt.Errorf("writing EMF metrics to %s: dimension %s has the name of a metric", namespace, k)
		case v == "" || len(v) > emfMaxDimensionValue:
			// The specification caps the length; CloudWatch rejects empty
			// dimension values.
			return fmt.Errorf("writing EMF metrics to %s: value of dimension %s must have 1 to %d characters, has %d", namespace, k, emfMaxDimensionValue, len(v))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys) // a stable order keeps the lines comparable
	for _, k := range keys {
		root[k] = dims[k]
	}
	root["_aws"] = map[string]any{
		"Timestamp": time.Now().UnixMilli(),
		"CloudWatchMetrics": []map[string]any{{
			"Namespace":  namespace,
			"Dimensions": [][]string{keys}, // an array of DimensionSets, each an array of keys
			"Metrics":    defs,
		}},
	}
	line, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("writing EMF metrics to %s: %w", namespace, err)
	}
	// One Write, so the document is not interleaved with other output.
	if _, err := w.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing EMF metrics to %s: %w", namespace, err)
	}
	return nil
}
