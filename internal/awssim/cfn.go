package awssim

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

var cfnService = service{
	name:    "cloudformation",
	version: "2010-05-15",
	xmlns:   "http://cloudformation.amazonaws.com/doc/2010-05-15/",
	actions: map[string]handler{
		"DescribeStacks":      describeStacks,
		"DescribeStackEvents": describeStackEvents,
	},
}

// Page sizes CloudFormation uses (not documented as limits; its pages are
// of this order).
const (
	cfnStacksPage = 100
	cfnEventsPage = 100
)

type qOutput struct {
	Key   string `xml:"OutputKey"`
	Value string `xml:"OutputValue"`
}

type qStack struct {
	ID              string    `xml:"StackId"`
	Name            string    `xml:"StackName"`
	CreationTime    string    `xml:"CreationTime"`
	LastUpdatedTime string    `xml:"LastUpdatedTime,omitempty"`
	Status          string    `xml:"StackStatus"`
	StatusReason    string    `xml:"StackStatusReason,omitempty"`
	Tags            []qTag    `xml:"Tags>member"`
	Outputs         []qOutput `xml:"Outputs>member"`
}

type describeStacksOut struct {
	Stacks    []qStack `xml:"Stacks>member"`
	NextToken string   `xml:"NextToken,omitempty"`
}

type qStackEvent struct {
	StackID              string `xml:"StackId"`
	EventID              string `xml:"EventId"`
	StackName            string `xml:"StackName"`
	LogicalResourceID    string `xml:"LogicalResourceId,omitempty"`
	PhysicalResourceID   string `xml:"PhysicalResourceId,omitempty"`
	ResourceType         string `xml:"ResourceType,omitempty"`
	Timestamp            string `xml:"Timestamp"`
	ResourceStatus       string `xml:"ResourceStatus,omitempty"`
	ResourceStatusReason string `xml:"ResourceStatusReason,omitempty"`
	ClientRequestToken   string `xml:"ClientRequestToken,omitempty"`
}

type describeStackEventsOut struct {
	StackEvents []qStackEvent `xml:"StackEvents>member"`
	NextToken   string        `xml:"NextToken,omitempty"`
}

// stackByNameOrID finds a stack by name or by stack id (ARN).
func (s *state) stackByNameOrID(v string) (*stack, error) {
	if st, ok := s.stacks.get(v); ok {
		return st, nil
	}
	for _, st := range s.stacks.values() {
		if st.id == v {
			return st, nil
		}
	}
	return nil, badRequest(CodeValidationError, "Stack with id %s does not exist", v)
}

func describeStacks(s *state, form url.Values) (any, error) {
	cursor, err := decodeToken(form.Get("NextToken"), CodeValidationError)
	if err != nil {
		return nil, err
	}
	keys := s.stacks.from(cursor)
	if name := form.Get("StackName"); name != "" {
		st, err := s.stackByNameOrID(name)
		if err != nil {
			return nil, err
		}
		keys = afterCursor([]string{st.name}, cursor)
	}
	kept, next := page(keys, cfnStacksPage, func(string) bool { return true })
	out := &describeStacksOut{Stacks: []qStack{}, NextToken: encodeToken(next)}
	for _, n := range kept {
		st, _ := s.stacks.get(n)
		q := qStack{
			ID: st.id, Name: st.name, CreationTime: awsTime(st.created),
			Status: st.status, StatusReason: st.reason, Tags: qTags(st.tags),
		}
		if !st.updated.IsZero() {
			q.LastUpdatedTime = awsTime(st.updated)
		}
		for _, k := range slices.Sorted(maps.Keys(st.outputs)) {
			q.Outputs = append(q.Outputs, qOutput{Key: k, Value: st.outputs[k]})
		}
		out.Stacks = append(out.Stacks, q)
	}
	return out, nil
}

// describeStackEvents returns a stack's events newest first ("in reverse
// chronological order"), a page at a time with a NextToken, each with its
// LogicalResourceId, PhysicalResourceId, ResourceType, Timestamp,
// ResourceStatus, ResourceStatusReason and ClientRequestToken.
// https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStackEvents.html
// The reference does not give the page size; the account's is
// cfnEventsPage. The token holds the index (from the oldest) just past the
// next event to return; new events go after the older ones, so it stays
// valid as they arrive (an event added from Go with a Timestamp before
// the newest one's is inserted in time order and may shift a page by one).
func describeStackEvents(s *state, form url.Values) (any, error) {
	st, err := s.stackByNameOrID(form.Get("StackName"))
	if err != nil {
		return nil, err
	}
	end := len(st.events)
	if tok := form.Get("NextToken"); tok != "" {
		c, err := decodeToken(tok, CodeValidationError)
		if err != nil {
			return nil, err
		}
		name, idx, ok := strings.Cut(c, "#")
		n, convErr := strconv.Atoi(idx)
		if !ok || name != st.name || convErr != nil || n < 0 || n > len(st.events) {
			return nil, badRequest(CodeValidationError, "Invalid NextToken")
		}
		end = n
	}
	start := max(0, end-cfnEventsPage)
	out := &describeStackEventsOut{StackEvents: []qStackEvent{}}
	for i := end - 1; i >= start; i-- {
		ev := st.events[i]
		out.StackEvents = append(out.StackEvents, qStackEvent{
			StackID: st.id, EventID: ev.EventID, StackName: st.name,
			LogicalResourceID: ev.LogicalResourceID, PhysicalResourceID: ev.PhysicalResourceID,
			ResourceType: ev.ResourceType, Timestamp: awsTime(ev.Timestamp),
			ResourceStatus: ev.ResourceStatus, ResourceStatusReason: ev.ResourceStatusReason,
			ClientRequestToken: ev.ClientRequestToken,
		})
	}
	if start > 0 {
		out.NextToken = encodeToken(st.name + "#" + strconv.Itoa(start))
	}
	return out, nil
}
