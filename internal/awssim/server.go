package awssim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// handler answers one action with the state locked. It returns the body of
// the response (a pointer to an XML struct, or nil for an empty result).
type handler func(s *state, form url.Values) (any, error)

type service struct {
	name    string // "ec2", "elbv2", "elb", "cloudformation", "autoscaling"
	version string // the Version every request of this service carries
	xmlns   string
	ec2     bool // EC2's response and error shapes instead of the Query ones
	actions map[string]handler
	// mutating actions are logged in Stats.Mutations and may lose their
	// response (Faults.LostResponseRate).
	mutating map[string]bool
}

var services = []*service{&ec2Service, &elbv2Service, &elbService, &cfnService, &autoscalingService}

func serviceFor(r *http.Request, form url.Values) *service {
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, s := range services {
		if first == s.name {
			return s
		}
	}
	v := form.Get("Version")
	for _, s := range services {
		if v == s.version {
			return s
		}
	}
	return nil
}

func (a *Account) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "malformed form: "+err.Error(), http.StatusBadRequest)
		return
	}
	form := r.PostForm
	if len(form) == 0 {
		form = r.Form // some tools send the Query protocol as a GET
	}
	svc := serviceFor(r, form)
	if svc == nil {
		http.Error(w, "awssim: cannot tell the service of this request (path or Version)", http.StatusBadRequest)
		return
	}
	action := form.Get("Action")

	a.mu.Lock()
	a.total++
	a.calls[svc.name+":"+action]++
	a.reqSeq++
	reqID := fmt.Sprintf("%08x-0000-4000-8000-%012x", a.reqSeq, a.reqSeq)
	oddRequest := a.reqSeq%2 == 1
	faults := a.faults
	fault := a.rollFault(faults, action)
	a.mu.Unlock()

	if faults.Latency > 0 {
		time.Sleep(faults.Latency)
	}
	a.log.Debug("awssim request", "service", svc.name, "action", action, "fault", fault)

	var err error
	var body any
	switch fault {
	case "throttle":
		err = throttleError(svc)
	case "server":
		err = serverError(svc, oddRequest)
	case "denied":
		err = deniedError(svc, action)
	default:
		h := svc.actions[action]
		if h == nil {
			err = badRequest("InvalidAction", "The action %s is not valid for this web service.", action)
			break
		}
		if svc.ec2 && form.Get("DryRun") == "true" {
			err = errf(412, CodeDryRun, "Request would have succeeded, but DryRun flag is set.")
			break
		}
		a.mu.Lock()
		body, err = h(a.st, form)
		if err == nil && svc.mutating[action] && faults.LostResponseRate > 0 && a.rng.Float64() < faults.LostResponseRate {
			fault = "lost-response"
			err = errf(500, "InternalError", "An internal error has occurred.")
		}
		a.mu.Unlock()
	}

	if svc.mutating[action] {
		a.recordMutation(svc, action, form, r.UserAgent(), err, fault)
	}
	if err != nil {
		writeError(w, svc, reqID, err)
		return
	}
	writeBody(w, svc, action, reqID, body)
}

// rollFault decides, before the request touches any state, whether it
// fails with an injected throttle or server error. Called with a.mu held.
func (a *Account) rollFault(f Faults, action string) string {
	if slices.Contains(f.Denied, action) {
		return "denied"
	}
	if len(f.Actions) > 0 && !slices.Contains(f.Actions, action) {
		return ""
	}
	if f.ThrottleRate > 0 && a.rng.Float64() < f.ThrottleRate {
		return "throttle"
	}
	if f.ServerErrorRate > 0 && a.rng.Float64() < f.ServerErrorRate {
		return "server"
	}
	return ""
}

func throttleError(svc *service) error {
	if svc.ec2 {
		return errf(503, CodeRequestLimitExceeded, "Request limit exceeded.")
	}
	return errf(400, CodeThrottling, "Rate exceeded")
}

func deniedError(svc *service, action string) error {
	if svc.ec2 {
		return errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation. (ec2:%s)", action)
	}
	return errf(403, "AccessDenied", "User is not authorized to perform: %s", action)
}

// serverError alternates between AWS's two 5xx answers, by request number.
func serverError(svc *service, odd bool) error {
	switch {
	case svc.ec2 && odd:
		return errf(503, "Unavailable", "The server is overloaded and can't handle the request.")
	case svc.ec2:
		return errf(500, "InternalError", "An internal error has occurred.")
	case odd:
		return errf(503, "ServiceUnavailable", "Service is unavailable.")
	default:
		return errf(500, "InternalFailure", "The request processing has failed because of an unknown error.")
	}
}

func (a *Account) recordMutation(svc *service, action string, form url.Values, ua string, err error, fault string) {
	params := map[string][]string{}
	for k, v := range form {
		if k != "Action" && k != "Version" {
			params[k] = slices.Clone(v)
		}
	}
	m := Mutation{Service: svc.name, Action: action, Params: params, UserAgent: ua, Fault: fault}
	if ae, ok := err.(*apiError); ok {
		m.ErrorCode = ae.code
	} else if err != nil {
		m.ErrorCode = "InternalError"
	}
	a.mu.Lock()
	m.Time = a.clock.Now().UTC()
	a.stats.mutations = append(a.stats.mutations, m)
	a.mu.Unlock()
}

// ec2Meta is embedded in every EC2 response body: EC2 puts requestId next
// to the result fields.
type ec2Meta struct {
	RequestID string `xml:"requestId"`
}

func (m *ec2Meta) setRequestID(id string) { m.RequestID = id }

type requestIDSetter interface{ setRequestID(string) }

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func writeBody(w http.ResponseWriter, svc *service, action, reqID string, body any) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: svc.xmlns}},
	}
	var err error
	if svc.ec2 {
		if body == nil {
			body = &ec2Meta{}
		}
		if s, ok := body.(requestIDSetter); ok {
			s.setRequestID(reqID)
		}
		err = enc.EncodeElement(body, start)
	} else {
		err = encodeQuery(enc, start, action, reqID, body)
	}
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		// A marshalling bug in the simulator; say so loudly.
		http.Error(w, "awssim: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", reqID)
	_, _ = w.Write(buf.Bytes())
}

// encodeQuery writes the Query protocol's envelope:
// <XResponse><XResult>...</XResult><ResponseMetadata>...</XResponse>.
func encodeQuery(enc *xml.Encoder, start xml.StartElement, action, reqID string, body any) error {
	if err := enc.EncodeToken(start); err != nil {
		return err
	}
	result := xml.StartElement{Name: xml.Name{Local: action + "Result"}}
	if body == nil {
		if err := enc.EncodeToken(result); err != nil {
			return err
		}
		if err := enc.EncodeToken(result.End()); err != nil {
			return err
		}
	} else if err := enc.EncodeElement(body, result); err != nil {
		return err
	}
	meta := xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}
	if err := enc.EncodeElement(responseMetadata{RequestID: reqID}, meta); err != nil {
		return err
	}
	return enc.EncodeToken(start.End())
}

type ec2ErrorResponse struct {
	XMLName   xml.Name      `xml:"Response"`
	Errors    []ec2ErrorXML `xml:"Errors>Error"`
	RequestID string        `xml:"RequestID"`
}

type ec2ErrorXML struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type queryErrorResponse struct {
	XMLName   xml.Name      `xml:"ErrorResponse"`
	Xmlns     string        `xml:"xmlns,attr"`
	Error     queryErrorXML `xml:"Error"`
	RequestID string        `xml:"RequestId"`
}

type queryErrorXML struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, svc *service, reqID string, err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = errf(500, "InternalError", "%v", err)
	}
	var v any
	if svc.ec2 {
		v = ec2ErrorResponse{Errors: []ec2ErrorXML{{Code: ae.code, Message: ae.message}}, RequestID: reqID}
	} else {
		typ := "Sender"
		if ae.status >= 500 {
			typ = "Receiver"
		}
		v = queryErrorResponse{Xmlns: svc.xmlns, Error: queryErrorXML{Type: typ, Code: ae.code, Message: ae.message}, RequestID: reqID}
	}
	out, mErr := xml.Marshal(v)
	if mErr != nil {
		http.Error(w, "awssim: encoding error: "+mErr.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(ae.status)
	_, _ = w.Write(append([]byte(xml.Header), out...))
}

// ---- form parsing ----

// indices returns, in order, the distinct N of keys "prefix.N" and
// "prefix.N.…" (the Query protocol's list numbering starts at 1).
func indices(form url.Values, prefix string) []int {
	seen := map[int]bool{}
	for k := range form {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		var n int
		if _, err := fmt.Sscanf(num, "%d", &n); err == nil && fmt.Sprint(n) == num {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// list returns the values of "prefix.1", "prefix.2", … in order.
func list(form url.Values, prefix string) []string {
	var out []string
	for _, n := range indices(form, prefix) {
		if v, ok := form[fmt.Sprintf("%s.%d", prefix, n)]; ok && len(v) > 0 {
			out = append(out, v[0])
		}
	}
	return out
}

// tagList parses "prefix.N.Key" / "prefix.N.Value".
func tagList(form url.Values, prefix string) map[string]string {
	tags := map[string]string{}
	for _, n := range indices(form, prefix) {
		p := fmt.Sprintf("%s.%d.", prefix, n)
		if k := form.Get(p + "Key"); k != "" {
			tags[k] = form.Get(p + "Value")
		}
	}
	return tags
}

func intParam(form url.Values, name string) (v int64, set bool, err error) {
	s := form.Get(name)
	if s == "" {
		return 0, false, nil
	}
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || fmt.Sprint(v) != s {
		return 0, false, badRequest(CodeInvalidParameterValue, "Invalid value '%s' for %s", s, name)
	}
	return v, true, nil
}

// ---- pagination ----

const tokenPrefix = "awssim1:"

func encodeToken(cursor string) string {
	if cursor == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(tokenPrefix + cursor))
}

// decodeToken returns the cursor in a token this account issued.
func decodeToken(tok, code string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	cursor, ok := strings.CutPrefix(string(b), tokenPrefix)
	if err != nil || !ok || cursor == "" {
		return "", badRequest(code, "The pagination token '%s' is invalid.", tok)
	}
	return cursor, nil
}

// page keeps the keys that match, up to max, and returns the cursor for
// the next page, "" when no match is left.
func page(keys []string, max int, match func(string) bool) (kept []string, next string) {
	for _, k := range keys {
		if !match(k) {
			continue
		}
		if len(kept) == max {
			return kept, kept[len(kept)-1]
		}
		kept = append(kept, k)
	}
	return kept, ""
}

// afterCursor returns the sorted, distinct ids greater than cursor.
func afterCursor(ids []string, cursor string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(id string) bool { return id <= cursor })
}

// ---- EC2 filters ----

type filter struct {
	name   string
	values []string
}

func parseFilters(form url.Values) []filter {
	var fs []filter
	for _, n := range indices(form, "Filter") {
		p := fmt.Sprintf("Filter.%d", n)
		fs = append(fs, filter{name: form.Get(p + ".Name"), values: list(form, p+".Value")})
	}
	return fs
}

// maxFilterValues is EC2's limit on filter values in one call.
const maxFilterValues = 200

// filterSet maps the filter names a Describe call accepts to the values a
// resource has for each.
type filterSet[T any] map[string]func(T) []string

// filterRules are how one call treats filters: whether AWS documents tag
// filters for it, and what the account does with a filter AWS does not
// document for the call (Options.UndocumentedFilters).
type filterRules struct {
	tagsDocumented bool
	mode           FilterMode
	rejectCode     string
}

// filterRules returns the rules of a call; tagsDocumented says whether the
// call's API reference lists tag:<key> and tag-key among its filters.
func (s *state) filterRules(tagsDocumented bool) filterRules {
	return filterRules{tagsDocumented: tagsDocumented, mode: s.a.opts.UndocumentedFilters, rejectCode: s.a.opts.RejectFilterCode}
}

// compile checks the filters' names and returns a predicate that is true
// when every filter has a value matching one of the resource's values.
// "tag:<key>" and "tag-key" work on every resource with tags where AWS
// documents them; elsewhere, and for names the call does not know, the
// rules' mode decides: apply tag filters anyway and refuse unknown names
// (FiltersApply), drop them as moto does (FiltersIgnore), or refuse them
// (FiltersReject).
func (fs filterSet[T]) compile(filters []filter, tags func(T) map[string]string, rules filterRules) (func(T) bool, error) {
	type check struct {
		vals   func(T) []string
		wanted []string
	}
	var checks []check
	// EC2 refuses more than 200 filter values in one call, ignored ones
	// included.
	total := 0
	for _, f := range filters {
		total += len(f.values)
	}
	if total > maxFilterValues {
		return nil, badRequest("FilterLimitExceeded", "The maximum number of filter values specified on a single call is %d", maxFilterValues)
	}
	for _, f := range filters {
		var get func(T) []string
		documented := true
		switch key, isTag := strings.CutPrefix(f.name, "tag:"); {
		case isTag && tags != nil:
			documented = rules.tagsDocumented
			get = func(x T) []string {
				if v, ok := tags(x)[key]; ok {
					return []string{v}
				}
				return nil
			}
		case f.name == "tag-key" && tags != nil:
			documented = rules.tagsDocumented
			get = func(x T) []string {
				var keys []string
				for k := range tags(x) {
					keys = append(keys, k)
				}
				return keys
			}
		default:
			get = fs[f.name]
			documented = get != nil
		}
		if !documented {
			switch rules.mode {
			case FiltersIgnore:
				continue
			case FiltersReject:
				return nil, badRequest(rules.rejectCode, "The filter '%s' is invalid", f.name)
			}
		}
		if get == nil {
			return nil, badRequest(rules.rejectCode, "The filter '%s' is invalid", f.name)
		}
		if len(f.values) == 0 {
			return nil, badRequest(CodeInvalidParameterValue, "The filter '%s' has no values", f.name)
		}
		checks = append(checks, check{get, f.values})
	}
	return func(x T) bool {
		for _, c := range checks {
			if !anyMatch(c.wanted, c.vals(x)) {
				return false
			}
		}
		return true
	}, nil
}

func anyMatch(patterns, values []string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if glob(p, v) {
				return true
			}
		}
	}
	return false
}

// glob matches EC2 filter wildcards: * any run, ? any one character.
func glob(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	// Iterative matcher with backtracking to the last star.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func awsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
