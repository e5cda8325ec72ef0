package awssim

import (
	"fmt"
	"sort"
)

// Service Quotas, as far as the operator commands read it: one quota by
// code. The SDK's servicequotas client (v1.43.12) speaks awsJson1_1 with
// X-Amz-Target ServiceQuotasV20190624.<Action>.
var servicequotasService = service{
	name:     "servicequotas",
	protocol: protoJSON,
	target:   "ServiceQuotasV20190624",
	bodyActions: map[string]bodyHandler{
		"GetServiceQuota":   getServiceQuota,
		"ListServiceQuotas": listServiceQuotas,
	},
	// Service Quotas' throttling and denial (GetServiceQuota's errors).
	throttle: errf(400, "TooManyRequestsException", "Rate exceeded"),
	denied:   errf(400, "AccessDeniedException", ""),
}

// The traffic mirror sessions quota. AWS documents the quota ("Maximum
// number of sessions per account", 10,000, not adjustable:
// https://docs.aws.amazon.com/vpc/latest/mirroring/traffic-mirroring-quotas.html)
// but we found no Service Quotas service code or quota code for it in
// AWS's documentation. These two codes are our own, chosen to look like
// nothing AWS issues: code that asks real AWS for this quota must expect
// NoSuchResourceException and fall back to the documented 10,000.
const (
	TrafficMirrorSessionsServiceCode = "vpc"
	TrafficMirrorSessionsQuotaCode   = "L-AWSSIM-TMS" // assumed, not AWS's
)

// CodeNoSuchResource is Service Quotas' answer for an unknown service or
// quota code. AWS (GetServiceQuota's errors).
const CodeNoSuchResource = "NoSuchResourceException"

// Quota is one quota as GetServiceQuota returns it.
type Quota struct {
	ServiceCode, ServiceName string
	QuotaCode, QuotaName     string
	Value                    float64
	Unit                     string // "None" for a count
	Adjustable               bool
}

type quotaKey struct{ service, code string }

func defaultQuotas(maxSessions int) []Quota {
	return []Quota{{
		ServiceCode: TrafficMirrorSessionsServiceCode, ServiceName: "Amazon Virtual Private Cloud (Amazon VPC)",
		QuotaCode: TrafficMirrorSessionsQuotaCode, QuotaName: "Traffic mirror sessions",
		Value: float64(maxSessions), Unit: "None",
	}}
}

type jQuota struct {
	ServiceCode string  `json:"ServiceCode"`
	ServiceName string  `json:"ServiceName"`
	QuotaArn    string  `json:"QuotaArn"`
	QuotaCode   string  `json:"QuotaCode"`
	QuotaName   string  `json:"QuotaName"`
	Value       float64 `json:"Value"`
	Unit        string  `json:"Unit"`
	Adjustable  bool    `json:"Adjustable"`
	GlobalQuota bool    `json:"GlobalQuota"`
}

// getServiceQuota answers with the account's value of a quota, or
// NoSuchResourceException.
// https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html
func getServiceQuota(s *state, body []byte) (any, error) {
	var in struct{ ServiceCode, QuotaCode string }
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if in.ServiceCode == "" || in.QuotaCode == "" {
		return nil, badRequest("IllegalArgumentException", "ServiceCode and QuotaCode are required.")
	}
	q, ok := s.quotas[quotaKey{in.ServiceCode, in.QuotaCode}]
	if !ok {
		// AWS's wording for an unknown service; it documents none for an
		// unknown quota code, so the account says the same of both.
		return nil, badRequest(CodeNoSuchResource, "The request failed because the specified service or quota does not exist.")
	}
	return map[string]jQuota{"Quota": {
		ServiceCode: q.ServiceCode, ServiceName: q.ServiceName, QuotaCode: q.QuotaCode, QuotaName: q.QuotaName,
		QuotaArn: fmt.Sprintf("arn:aws:servicequotas:%s:%s:%s/%s", s.a.opts.Region, s.a.opts.AccountID, q.ServiceCode, q.QuotaCode),
		Value:    q.Value, Unit: q.Unit, Adjustable: q.Adjustable,
	}}, nil
}

// listServiceQuotas answers with the account's quotas of a service, in
// quota code order, all in one page. The account holds only the quotas set
// on it: a service it holds none of answers an empty list, as AWS does for
// a service code it knows.
// https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html
func listServiceQuotas(s *state, body []byte) (any, error) {
	var in struct{ ServiceCode string }
	if err := decodeJSON(body, &in); err != nil {
		return nil, err
	}
	if in.ServiceCode == "" {
		return nil, badRequest("IllegalArgumentException", "ServiceCode is required.")
	}
	out := []jQuota{}
	for k, q := range s.quotas {
		if k.service != in.ServiceCode {
			continue
		}
		out = append(out, jQuota{
			ServiceCode: q.ServiceCode, ServiceName: q.ServiceName, QuotaCode: q.QuotaCode, QuotaName: q.QuotaName,
			QuotaArn: fmt.Sprintf("arn:aws:servicequotas:%s:%s:%s/%s", s.a.opts.Region, s.a.opts.AccountID, q.ServiceCode, q.QuotaCode),
			Value:    q.Value, Unit: q.Unit, Adjustable: q.Adjustable,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].QuotaCode < out[j].QuotaCode })
	return map[string][]jQuota{"Quotas": out}, nil
}

// SetServiceQuota adds or replaces a quota. A new account has the traffic
// mirror sessions quota (TrafficMirrorSessionsServiceCode,
// TrafficMirrorSessionsQuotaCode) at Options.MaxSessions. It does not
// change what CreateTrafficMirrorSession enforces (Options.MaxSessions).
func (a *Account) SetServiceQuota(q Quota) {
	if q.Unit == "" {
		q.Unit = "None"
	}
	a.mu.Lock()
	a.st.quotas[quotaKey{q.ServiceCode, q.QuotaCode}] = q
	a.mu.Unlock()
}

// DeleteServiceQuota removes a quota: GetServiceQuota then answers
// NoSuchResourceException.
func (a *Account) DeleteServiceQuota(serviceCode, quotaCode string) {
	a.mu.Lock()
	delete(a.st.quotas, quotaKey{serviceCode, quotaCode})
	a.mu.Unlock()
}
