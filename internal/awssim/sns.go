package awssim

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SNS, as far as diagnosis and remediation use it: publishing to a topic.
// The SDK's sns client (v1.48.0) speaks the Query protocol, Version
// 2010-03-31.
var snsService = service{
	name:    "sns",
	version: "2010-03-31",
	xmlns:   "http://sns.amazonaws.com/doc/2010-03-31/",
	actions: map[string]handler{
		"Publish": publish,
	},
	mutating: map[string]bool{"Publish": true},
	// SNS's throttling (ThrottledException, Query code Throttled, HTTP
	// 429) and denial (AuthorizationErrorException, Query code
	// AuthorizationError, HTTP 403): Publish's errors,
	// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html.
	throttle: errf(429, "Throttled", "Rate exceeded"),
	denied:   errf(403, "AuthorizationError", ""),
}

// SNS error codes (Publish's errors, API_Publish.html above; the Query
// codes the SDK's error shapes carry).
const (
	// CodeSNSNotFound: the topic does not exist. HTTP 404.
	CodeSNSNotFound = "NotFound"
	// CodeSNSInvalidParameter: a request parameter does not comply with
	// the constraints. HTTP 400.
	CodeSNSInvalidParameter = "InvalidParameter"
	// CodeSNSInvalidParameterValue: a message attribute is not valid.
	// The API reference lists InvalidParameterValue; the SDK's shape for it
	// carries this Query code. HTTP 400.
	CodeSNSInvalidParameterValue = "ParameterValueInvalid"
)

// Limits of Publish (API_Publish.html): a message of at most 256 KB
// (262,144 bytes, attributes included), a subject of fewer than 100 ASCII
// characters without line breaks, at most 10 message attributes.
const (
	snsMaxMessageBytes = 262144
	snsMaxSubject      = 99
	snsMaxAttributes   = 10
)

// Message is one message published to a topic, as the account received
// it.
type Message struct {
	MessageID string
	TopicArn  string
	Subject   string
	Message   string
	// MessageStructure is "json" when the caller sent one message per
	// protocol; the account does not unpack it.
	MessageStructure string
	Attributes       map[string]MessageAttribute
	Time             time.Time
}

// MessageAttribute is one message attribute: DataType String, Number,
// Binary or String.Array (and custom types after a dot, e.g.
// "String.x"); BinaryValue is decoded from base64.
type MessageAttribute struct {
	DataType    string
	StringValue string
	BinaryValue []byte
}

type topic struct {
	arn       string
	published []Message
}

type publishOut struct {
	MessageID string `xml:"MessageId"`
}

// publish records a message on a topic and answers with its MessageId.
// https://docs.aws.amazon.com/sns/latest/api/API_Publish.html
// Only TopicArn is modelled as the destination: TargetArn (mobile
// endpoints) and PhoneNumber (SMS) are refused with InvalidParameter, as
// a request naming no destination is. FIFO topics (MessageGroupId,
// SequenceNumber) are not modelled. The account delivers to no
// subscriber: tests read the messages with Account.Published.
func publish(s *state, form url.Values) (any, error) {
	arn := form.Get("TopicArn")
	if arn == "" {
		if form.Get("TargetArn") != "" || form.Get("PhoneNumber") != "" {
			return nil, badRequest(CodeSNSInvalidParameter, "Invalid parameter: awssim models publishing to a TopicArn only")
		}
		return nil, badRequest(CodeSNSInvalidParameter, "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter")
	}
	t, ok := s.topics.get(arn)
	if !ok {
		return nil, errf(404, CodeSNSNotFound, "Topic does not exist")
	}
	msg := form.Get("Message")
	if msg == "" {
		return nil, badRequest(CodeSNSInvalidParameter, "Invalid parameter: Empty message")
	}
	subject := form.Get("Subject")
	if _, set := form["Subject"]; set && !validSubject(subject) {
		return nil, badRequest(CodeSNSInvalidParameter, "Invalid parameter: Subject")
	}
	attrs, size, err := messageAttributes(form)
	if err != nil {
		return nil, err
	}
	if len(msg)+size > snsMaxMessageBytes {
		return nil, badRequest(CodeSNSInvalidParameter, "Invalid parameter: Message too long")
	}
	s.seq["sns-message"]++
	n := s.seq["sns-message"]
	m := Message{
		MessageID: fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
		TopicArn:  arn, Subject: subject, Message: msg, MessageStructure: form.Get("MessageStructure"),
		Attributes: attrs, Time: s.now(),
	}
	t.published = append(t.published, m)
	return &publishOut{MessageID: m.MessageID}, nil
}

// validSubject: ASCII, starting with a letter, number or punctuation
// mark, without line breaks or control characters, fewer than 100
// characters (Publish's Subject parameter).
func validSubject(s string) bool {
	if s == "" || len(s) > snsMaxSubject || !utf8.ValidString(s) {
		return false
	}
	if s[0] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// messageAttributes parses MessageAttributes.entry.N.Name and
// .Value.{DataType,StringValue,BinaryValue}, and returns their size as
// SNS counts it against the message limit (name, type and value).
// https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
func messageAttributes(form url.Values) (map[string]MessageAttribute, int, error) {
	idx := indices(form, "MessageAttributes.entry")
	if len(idx) == 0 {
		return nil, 0, nil
	}
	if len(idx) > snsMaxAttributes {
		return nil, 0, badRequest(CodeSNSInvalidParameter, "Invalid parameter: MessageAttributes Reason: Number of message attributes [%d] exceeds the allowed maximum [%d].", len(idx), snsMaxAttributes)
	}
	out := map[string]MessageAttribute{}
	size := 0
	for _, n := range idx {
		p := fmt.Sprintf("MessageAttributes.entry.%d.", n)
		name := form.Get(p + "Name")
		ma := MessageAttribute{DataType: form.Get(p + "Value.DataType"), StringValue: form.Get(p + "Value.StringValue")}
		if b := form.Get(p + "Value.BinaryValue"); b != "" {
			v, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				return nil, 0, badRequest(CodeSNSInvalidParameterValue, "The message attribute '%s' has an invalid binary value.", name)
			}
			ma.BinaryValue = v
		}
		base, _, _ := strings.Cut(ma.DataType, ".")
		switch {
		case name == "":
			return nil, 0, badRequest(CodeSNSInvalidParameter, "Invalid parameter: MessageAttributes Reason: a message attribute has no name")
		case !slices.Contains([]string{"String", "Number", "Binary"}, base):
			return nil, 0, badRequest(CodeSNSInvalidParameterValue, "The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name)
		case base == "Binary" && len(ma.BinaryValue) == 0, base != "Binary" && ma.StringValue == "":
			return nil, 0, badRequest(CodeSNSInvalidParameterValue, "The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, ma.DataType)
		}
		out[name] = ma
		size += len(name) + len(ma.DataType) + len(ma.StringValue) + len(ma.BinaryValue)
	}
	return out, size, nil
}

// AddTopic creates a standard SNS topic and returns its ARN
// (arn:aws:sns:<region>:<account>:<name>). Adding a topic that exists
// returns its ARN, as CreateTopic does.
func (a *Account) AddTopic(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s", a.opts.Region, a.opts.AccountID, name)
	if _, ok := a.st.topics.get(arn); !ok {
		a.st.topics.put(arn, &topic{arn: arn})
	}
	return arn
}

// Published returns the messages published to a topic, oldest first; nil
// for a topic that does not exist.
func (a *Account) Published(topicArn string) []Message {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.st.topics.get(topicArn)
	if !ok {
		return nil
	}
	out := make([]Message, len(t.published))
	for i, m := range t.published {
		m.Attributes = cloneAttrs(m.Attributes)
		out[i] = m
	}
	return out
}

func cloneAttrs(m map[string]MessageAttribute) map[string]MessageAttribute {
	if m == nil {
		return nil
	}
	out := make(map[string]MessageAttribute, len(m))
	for k, v := range m {
		v.BinaryValue = slices.Clone(v.BinaryValue)
		out[k] = v
	}
	return out
}
