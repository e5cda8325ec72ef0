package awssim

import (
	"encoding/json"
	"strings"
)

// Lambda, as far as the operator commands read it: the account's
// concurrency. The SDK's lambda client (v1.118.0) speaks restJson1;
// GetAccountSettings is GET /2016-08-19/account-settings.
var lambdaService = service{
	name:     "lambda",
	protocol: protoRESTJSON,
	routes: map[string]string{
		"GET /2016-08-19/account-settings":              "GetAccountSettings",
		"POST /2015-03-31/functions/{name}/invocations": "Invoke",
	},
	bodyActions: map[string]bodyHandler{
		"GetAccountSettings": getAccountSettings,
		"Invoke":             invoke,
	},
	// Lambda's throttling error (GetAccountSettings' errors).
	throttle: errf(429, "TooManyRequestsException", "Rate exceeded"),
	denied:   errf(403, "AccessDeniedException", ""),
}

// LambdaSettings are what GetAccountSettings reports.
// https://docs.aws.amazon.com/lambda/latest/api/API_GetAccountSettings.html
// (AccountLimit and AccountUsage; the defaults are Lambda's quotas,
// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
type LambdaSettings struct {
	// AccountLimit.
	ConcurrentExecutions           int32
	UnreservedConcurrentExecutions int32
	CodeSizeUnzipped               int64
	CodeSizeZipped                 int64
	TotalCodeSize                  int64
	// AccountUsage.
	FunctionCount     int64
	TotalCodeSizeUsed int64
}

// DefaultLambdaSettings are a new account's: 1,000 concurrent executions,
// none reserved, no function.
var DefaultLambdaSettings = LambdaSettings{
	ConcurrentExecutions:           1000,
	UnreservedConcurrentExecutions: 1000,
	CodeSizeUnzipped:               262144000,
	CodeSizeZipped:                 52428800,
	TotalCodeSize:                  80530636800,
}

type jAccountLimit struct {
	CodeSizeUnzipped               int64 `json:"CodeSizeUnzipped"`
	CodeSizeZipped                 int64 `json:"CodeSizeZipped"`
	ConcurrentExecutions           int32 `json:"ConcurrentExecutions"`
	TotalCodeSize                  int64 `json:"TotalCodeSize"`
	UnreservedConcurrentExecutions int32 `json:"UnreservedConcurrentExecutions"`
}

type jAccountUsage struct {
	FunctionCount int64 `json:"FunctionCount"`
	TotalCodeSize int64 `json:"TotalCodeSize"`
}

type getAccountSettingsOut struct {
	AccountLimit jAccountLimit `json:"AccountLimit"`
	AccountUsage jAccountUsage `json:"AccountUsage"`
}

func getAccountSettings(s *state, _ []byte) (any, error) {
	l := s.lambda
	return &getAccountSettingsOut{
		AccountLimit: jAccountLimit{
			CodeSizeUnzipped: l.CodeSizeUnzipped, CodeSizeZipped: l.CodeSizeZipped,
			ConcurrentExecutions: l.ConcurrentExecutions, TotalCodeSize: l.TotalCodeSize,
			UnreservedConcurrentExecutions: l.UnreservedConcurrentExecutions,
		},
		AccountUsage: jAccountUsage{FunctionCount: l.FunctionCount, TotalCodeSize: l.TotalCodeSizeUsed},
	}, nil
}

// SetLambdaSettings replaces what GetAccountSettings reports.
func (a *Account) SetLambdaSettings(l LambdaSettings) {
	a.mu.Lock()
	a.st.lambda = l
	a.mu.Unlock()
}

// Invocation is one Invoke call the account received.
type Invocation struct {
	Function, Type string // Type: Event, RequestResponse or DryRun
	Payload        []byte
}

// AddFunction makes a function the account can be asked to invoke. The
// account runs nothing: it records the invocations (Invocations).
func (a *Account) AddFunction(name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.functions == nil {
		a.st.functions = map[string][]Invocation{}
	}
	if _, ok := a.st.functions[name]; !ok {
		a.st.functions[name] = []Invocation{}
	}
}

// Invocations are a function's invocations, oldest first.
func (a *Account) Invocations(name string) []Invocation {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Invocation(nil), a.st.functions[name]...)
}

// invoke records an invocation of a function by name or ARN; an unknown
// function is ResourceNotFoundException (404). The account runs nothing
// and answers every type with an empty payload.
// https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html
func invoke(s *state, raw []byte) (any, error) {
	var call restCall
	if err := json.Unmarshal(raw, &call); err != nil {
		return nil, err
	}
	name := call.Path["name"]
	if i := strings.LastIndex(name, ":function:"); i >= 0 {
		name = name[i+len(":function:"):]
	}
	if _, ok := s.functions[name]; !ok {
		return nil, &apiError{status: 404, code: "ResourceNotFoundException", message: "Function not found: " + call.Path["name"]}
	}
	typ := call.InvocationType
	if typ == "" {
		typ = "RequestResponse"
	}
	s.functions[name] = append(s.functions[name], Invocation{Function: name, Type: typ, Payload: call.Body})
	return map[string]any{}, nil
}
