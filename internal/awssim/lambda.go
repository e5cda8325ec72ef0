package awssim

// Lambda, as far as the operator commands read it: the account's
// concurrency. The SDK's lambda client (v1.118.0) speaks restJson1;
// GetAccountSettings is GET /2016-08-19/account-settings.
var lambdaService = service{
	name:     "lambda",
	protocol: protoRESTJSON,
	routes:   map[string]string{"GET /2016-08-19/account-settings": "GetAccountSettings"},
	bodyActions: map[string]bodyHandler{
		"GetAccountSettings": getAccountSettings,
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
