package awssim

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// handler answers one Query-protocol action with the state locked. It
// returns the body of the response (a pointer to an XML struct, or nil for
// an empty result).
type handler func(s *state, form url.Values) (any, error)

// bodyHandler answers one action of a JSON or CBOR service with the state
// locked: it decodes the raw request body itself and returns a value for
// encoding/json (JSON protocols) or a cbor.Value (RPCv2 CBOR); nil is an
// empty result.
type bodyHandler func(s *state, body []byte) (any, error)

// protocol is the wire protocol of a service, as its SDK client at the
// version in go.mod speaks it (the client's Protocol option or
// serializers.go).
type protocol int

const (
	// protoQuery: a form-encoded POST with Action and Version, answered in
	// XML (EC2's own shapes when service.ec2 is set).
	protoQuery protocol = iota
	// protoJSON: awsJson1_1, a POST whose X-Amz-Target header is
	// "<target>.<Action>", JSON both ways.
	protoJSON
	// protoRESTJSON: restJson1, the action in the method and path.
	protoRESTJSON
	// protoCBOR: Smithy RPCv2 CBOR, a POST to
	// /service/<target>/operation/<Action>, CBOR both ways.
	protoCBOR
)

type service struct {
	name    string // "ec2", "elbv2", "elb", "cloudformation", "autoscaling", "iam", "sts", "cloudtrail", ...
	version string // the Version every Query request of this service carries
	xmlns   string
	ec2     bool // EC2's response and error shapes instead of the Query ones

	protocol protocol
	// target is the X-Amz-Target prefix (protoJSON) or the service shape
	// name in the path (protoCBOR).
	target string
	// jsonVersion is the awsJson version of a protoJSON service: "1.0" or
	// "" for 1.1 (the Content-Type of its responses).
	jsonVersion string
	// crc32 puts X-Amz-Crc32 (the CRC32 of the body) on every response,
	// as DynamoDB does; its SDK client checks it.
	crc32 bool
	// routes map "METHOD /path" to an action (protoRESTJSON).
	routes map[string]string

	actions     map[string]handler     // protoQuery
	bodyActions map[string]bodyHandler // the other protocols
	// mutating actions are logged in Stats.Mutations and may lose their
	// response (Faults.LostResponseRate).
	mutating map[string]bool

	// throttle and denied are this service's answers to the injected
	// faults; nil means the Query services' Throttling (HTTP 400) and
	// AccessDenied (HTTP 403).
	throttle, denied *apiError
	// errorShapes maps an error code to the shape id ("namespace#Name")
	// the CBOR protocol puts in __type (AWS Query-compatible services such as CloudWatch
	// keep the Query code in the X-Amzn-Query-Error header).
	errorShapes map[string]string
}

var services = []*service{
	&ec2Service, &elbv2Service, &elbService, &cfnService, &autoscalingService,
	&iamService, &stsService, &cloudtrailService, &servicequotasService, &lambdaService, &cloudwatchService,
	&snsService, &dynamodbService, &kmsService,
}

// request is one HTTP request, routed to its service and action.
type request struct {
	svc    *service
	action string
	form   url.Values // protoQuery
	body   []byte     // the other protocols
}

// route finds the service and action of a request: by X-Amz-Target
// (awsJson), by the RPCv2 path, by a REST route, or else (Query) by a path
// prefix naming the service or by the Version field.
func route(r *http.Request) (*request, error) {
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		prefix, action, _ := strings.Cut(target, ".")
		for _, s := range services {
			if s.protocol == protoJSON && s.target == prefix {
				body, err := readBody(r)
				return &request{svc: s, action: action, body: body}, err
			}
		}
		return nil, fmt.Errorf("unknown X-Amz-Target %q", target)
	}
	if _, rest, ok := strings.Cut(r.URL.Path, "/service/"); ok {
		name, action, _ := strings.Cut(rest, "/operation/")
		for _, s := range services {
			if s.protocol == protoCBOR && s.target == name {
				body, err := readBody(r)
				return &request{svc: s, action: action, body: body}, err
			}
		}
		return nil, fmt.Errorf("unknown RPCv2 service %q", name)
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	for _, s := range services {
		for key, action := range s.routes {
			method, p, _ := strings.Cut(key, " ")
			if r.Method != method {
				continue
			}
			if !strings.Contains(p, "{") {
				if strings.HasSuffix(path, p) {
					body, err := readBody(r)
					return &request{svc: s, action: action, body: body}, err
				}
				continue
			}
			if params, ok := matchRoute(p, path); ok {
				// A route with path parameters: the handler gets them,
				// the headers it reads and the body as one JSON document.
				body, err := readBody(r)
				if err != nil {
					return nil, err
				}
				wrapped, _ := json.Marshal(restCall{Path: params, InvocationType: r.Header.Get("X-Amz-Invocation-Type"), Body: body})
				return &request{svc: s, action: action, body: wrapped}, nil
			}
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("malformed form: %w", err)
	}
	form := r.PostForm
	if len(form) == 0 {
		form = r.Form // some tools send the Query protocol as a GET
	}
	svc := serviceFor(r, form)
	if svc == nil {
		return nil, fmt.Errorf("cannot tell the service of this request (path, X-Amz-Target or Version)")
	}
	return &request{svc: svc, action: form.Get("Action"), form: form}, nil
}

// readBody reads a JSON or CBOR request body, gunzipped when the SDK
// compressed it (CloudWatch's PutMetricData carries Smithy's
// requestCompression trait: Content-Encoding gzip).
func readBody(r *http.Request) ([]byte, error) {
	if r.Header.Get("Content-Encoding") != "gzip" {
		return io.ReadAll(r.Body)
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, fmt.Errorf("gzip body: %w", err)
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

func serviceFor(r *http.Request, form url.Values) *service {
	first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	for _, s := range services {
		if s.protocol == protoQuery && first == s.name {
			return s
		}
	}
	v := form.Get("Version")
	for _, s := range services {
		if s.protocol == protoQuery && v == s.version {
			return s
		}
	}
	return nil
}

// known says whether the service has the action.
func (s *service) known(action string) bool {
	if s.protocol == protoQuery {
		return s.actions[action] != nil
	}
	return s.bodyActions[action] != nil
}

func (a *Account) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req, rerr := route(r)
	if rerr != nil {
		http.Error(w, "awssim: "+rerr.Error(), http.StatusBadRequest)
		return
	}
	svc, action, form := req.svc, req.action, req.form

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
		if !svc.known(action) {
			err = badRequest("InvalidAction", "The action %s is not valid for this web service.", action)
			if svc.protocol != protoQuery {
				err = badRequest("UnknownOperationException", "Unknown operation %s", action)
			}
			break
		}
		if svc.ec2 && form.Get("DryRun") == "true" {
			err = errf(412, CodeDryRun, "Request would have succeeded, but DryRun flag is set.")
			break
		}
		a.mu.Lock()
		if svc.protocol == protoQuery {
			body, err = svc.actions[action](a.st, form)
		} else {
			body, err = svc.bodyActions[action](a.st, req.body)
		}
		if err == nil && svc.mutating[action] && faults.LostResponseRate > 0 && a.rng.Float64() < faults.LostResponseRate {
			fault = "lost-response"
			err = errf(500, "InternalError", "An internal error has occurred.")
		}
		a.mu.Unlock()
	}

	if svc.mutating[action] {
		a.recordMutation(svc, action, form, req.body, r.UserAgent(), err, fault)
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
	switch {
	case svc.ec2:
		return errf(503, CodeRequestLimitExceeded, "Request limit exceeded.")
	case svc.throttle != nil:
		e := *svc.throttle
		return &e
	}
	return errf(400, CodeThrottling, "Rate exceeded")
}

func deniedError(svc *service, action string) error {
	switch {
	case svc.ec2:
		return errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation. (ec2:%s)", action)
	case svc.denied != nil:
		return errf(svc.denied.status, svc.denied.code, "User is not authorized to perform: %s:%s", svc.name, action)
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

func (a *Account) recordMutation(svc *service, action string, form url.Values, body []byte, ua string, err error, fault string) {
	params := map[string][]string{}
	for k, v := range form {
		if k != "Action" && k != "Version" {
			params[k] = slices.Clone(v)
		}
	}
	if svc.protocol != protoQuery && len(body) > 0 {
		params["Body"] = []string{string(body)}
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
	if svc.protocol != protoQuery {
		writeBodyJSONOrCBOR(w, svc, reqID, body)
		return
	}
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
	if svc.protocol != protoQuery {
		writeErrorJSONOrCBOR(w, svc, reqID, ae)
		return
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

// writeBodyJSONOrCBOR answers a JSON or CBOR service: body is a value for
// encoding/json, or a cbor.Value; nil is an empty object (JSON) or an
// empty body (CBOR, as RPCv2 answers an operation without output).
func writeBodyJSONOrCBOR(w http.ResponseWriter, svc *service, reqID string, body any) {
	var out []byte
	var err error
	switch svc.protocol {
	case protoCBOR:
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		if v, ok := body.(cbor.Value); ok {
			out = cbor.Encode(v)
		} else if body != nil {
			err = fmt.Errorf("%T is not a cbor.Value", body)
		}
	default:
		if body == nil {
			body = struct{}{}
		}
		out, err = json.Marshal(body)
		w.Header().Set("Content-Type", jsonContentType(svc))
	}
	if err != nil {
		http.Error(w, "awssim: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("x-amzn-RequestId", reqID)
	setCRC32(w, svc, out)
	_, _ = w.Write(out)
}

// setCRC32 sets DynamoDB's X-Amz-Crc32 header: the CRC32 (IEEE) of the
// body as a decimal number. AWS's API reference does not describe the
// header; the SDK's dynamodb client does (internal/customizations/doc.go:
// "DynamoDB responses can include a X-Amz-Crc32 header", checked when
// present).
func setCRC32(w http.ResponseWriter, svc *service, body []byte) {
	if svc.crc32 {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
}

func jsonContentType(svc *service) string {
	if svc.protocol == protoJSON && svc.jsonVersion != "" {
		return "application/x-amz-json-" + svc.jsonVersion
	}
	if svc.protocol == protoJSON {
		return "application/x-amz-json-1.1"
	}
	return "application/json"
}

// writeErrorJSONOrCBOR writes an error the way each protocol carries it:
// the code in the X-Amzn-ErrorType header and in the body's __type
// (awsJson, restJson1: Lambda's body also says Type User or Service), or,
// for RPCv2 CBOR, __type and message in a CBOR map with the Query code in
// X-Amzn-Query-Error for Query-compatible services.
func writeErrorJSONOrCBOR(w http.ResponseWriter, svc *service, reqID string, ae *apiError) {
	fault := "Sender"
	if ae.status >= 500 {
		fault = "Receiver"
	}
	w.Header().Set("x-amzn-RequestId", reqID)
	var out []byte
	switch svc.protocol {
	case protoCBOR:
		shape := ae.code
		if s, ok := svc.errorShapes[ae.code]; ok {
			shape = s
		}
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("X-Amzn-Query-Error", ae.code+";"+fault)
		out = cbor.Encode(cbor.Map{"__type": cbor.String(shape), "message": cbor.String(ae.message)})
	default:
		w.Header().Set("Content-Type", jsonContentType(svc))
		w.Header().Set("X-Amzn-ErrorType", ae.code)
		body := map[string]any{"__type": ae.code, "message": ae.message}
		if svc.protocol == protoRESTJSON {
			body = map[string]any{"Type": map[string]string{"Sender": "User", "Receiver": "Service"}[fault], "message": ae.message}
		}
		for k, v := range ae.fields {
			body[k] = v
		}
		out, _ = json.Marshal(body)
		setCRC32(w, svc, out)
	}
	w.WriteHeader(ae.status)
	_, _ = w.Write(out)
}

// restCall is a REST request with path parameters, as its handler gets it.
type restCall struct {
	Path           map[string]string
	InvocationType string
	Body           []byte
}

// matchRoute matches path against a route pattern whose segments in
// braces are parameters ("/2015-03-31/functions/{name}/invocations").
func matchRoute(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(strings.Trim(pattern, "/"), "/"), strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range ps {
		switch {
		case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
			v, err := url.PathUnescape(xs[i])
			if err != nil {
				return nil, false
			}
			params[strings.Trim(p, "{}")] = v
		case p != xs[i]:
			return nil, false
		}
	}
	return params, true
}

// ---- JSON helpers ----

// decodeJSON reads a JSON request body into v; an empty body is {}.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("SerializationException", "Could not parse the request body: %v", err)
	}
	return nil
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
