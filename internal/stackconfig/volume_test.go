package stackconfig

import (
	"slices"
	"strings"
	"testing"
)

func TestVolumeKeys(t *testing.T) {
	m := validContext()
	m["apitap:sampleRate"] = 0.25
	m["apitap:includeHosts"] = []any{"*.example.com"}
	m["apitap:excludeHosts"] = "internal.example.com, admin.*"
	m["apitap:includePaths"] = "/api/*"
	m["apitap:excludePaths"] = []any{"/health*", "/metrics"}
	m["apitap:methods"] = "GET,POST"
	m["apitap:excludeStatus"] = "4xx,503"
	m["apitap:dropBodyContentTypes"] = "image/*,application/pdf"
	m["apitap:vniRateLimit"] = "50"
	m["apitap:vniRateBurst"] = 100.0
	c, err := FromContext(ctx(m))
	if err != nil {
		t.Fatal(err)
	}
	lines := c.SnifferEnvLines()
	for _, want := range []string{
		"SNIFFER_SAMPLE_RATE=0.25",
		"SNIFFER_INCLUDE_HOSTS=*.example.com",
		"SNIFFER_EXCLUDE_HOSTS=internal.example.com,admin.*",
		"SNIFFER_INCLUDE_PATHS=/api/*",
		"SNIFFER_EXCLUDE_PATHS=/health*,/metrics",
		"SNIFFER_METHODS=GET,POST",
		"SNIFFER_EXCLUDE_STATUS=4xx,503",
		"SNIFFER_DROP_BODY_CONTENT_TYPES=image/*,application/pdf",
		"SNIFFER_VNI_RATE_LIMIT=50",
		"SNIFFER_VNI_RATE_BURST=100",
	} {
		if !slices.Contains(lines, want) {
			t.Errorf("env lines lack %s:\n%s", want, strings.Join(lines, "\n"))
		}
	}

	// Unset keys write nothing: the sniffer's defaults apply.
	c, err = FromContext(ctx(validContext()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range c.SnifferEnvLines() {
		for _, k := range []string{"SAMPLE_RATE", "HOSTS", "PATHS", "METHODS", "STATUS", "CONTENT_TYPES", "VNI_RATE"} {
			if strings.Contains(l, k) {
				t.Errorf("default configuration writes %s", l)
			}
		}
	}
	// A rate of 0 is written (records nothing), as is "none".
	m = validContext()
	m["apitap:sampleRate"] = 0.0
	m["apitap:dropBodyContentTypes"] = "none"
	if c, err = FromContext(ctx(m)); err != nil {
		t.Fatal(err)
	}
	if l := c.SnifferEnvLines(); !slices.Contains(l, "SNIFFER_SAMPLE_RATE=0") || !slices.Contains(l, "SNIFFER_DROP_BODY_CONTENT_TYPES=none") {
		t.Errorf("lines: %v", l)
	}
}

func TestVolumeKeyErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		key  string
		val  any
		want string
	}{
		"sample above 1":      {"sampleRate", 1.5, "apitap:sampleRate: 1.5 is outside 0 to 1"},
		"sample negative":     {"sampleRate", "-0.1", "apitap:sampleRate"},
		"sample not a number": {"sampleRate", "half", "apitap:sampleRate: half is not a number"},
		"host with quote":     {"includeHosts", `a"b`, "apitap:includeHosts"},
		"host with space":     {"excludeHosts", []any{"a b"}, "apitap:excludeHosts"},
		"path with dollar":    {"includePaths", "/$x", "apitap:includePaths"},
		"path with backtick":  {"excludePaths", "/`x`", "apitap:excludePaths"},
		"method":              {"methods", "GET/1", "apitap:methods"},
		"status":              {"excludeStatus", "6xx", "apitap:excludeStatus"},
		"status word":         {"excludeStatus", "errors", "apitap:excludeStatus"},
		"content type":        {"dropBodyContentTypes", "image", "apitap:dropBodyContentTypes"},
		"none among others":   {"dropBodyContentTypes", "none,image/*", "apitap:dropBodyContentTypes"},
		"negative rate":       {"vniRateLimit", -1.0, "apitap:vniRateLimit"},
		"huge rate":           {"vniRateLimit", "1e9", "apitap:vniRateLimit"},
		"burst negative":      {"vniRateBurst", -1.0, "apitap:vniRateBurst"},
		"burst without rate":  {"vniRateBurst", 10.0, "apitap:vniRateBurst: is set without apitap:vniRateLimit"},
	} {
		m := validContext()
		m["apitap:"+tc.key] = tc.val
		_, err := FromContext(ctx(m))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
}

// The volume variables are set through the first-class keys only.
func TestVolumeVariablesAreReserved(t *testing.T) {
	m := validContext()
	m["apitap:snifferEnv"] = map[string]any{"SNIFFER_SAMPLE_RATE": "0.5", "SNIFFER_VNI_RATE_LIMIT": "5"}
	_, err := FromContext(ctx(m))
	for _, k := range []string{"SNIFFER_SAMPLE_RATE", "SNIFFER_VNI_RATE_LIMIT"} {
		if err == nil || !strings.Contains(err.Error(), "apitap:snifferEnv: "+k+" is set by the stack") {
			t.Errorf("%s in snifferEnv: %v", k, err)
		}
	}
}
