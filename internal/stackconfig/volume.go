package stackconfig

import (
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/apitap/apitap/internal/contract"
)

// The sniffer's volume control flags are contract.SnifferFlag* (sniffer -h,
// README "Volume control"). The stack writes them from the first-class keys
// below; the infra/stack contract test feeds what it writes through the
// sniffer's -check-config.
const (
	// MaxVNIRateLimit and MaxVNIRateBurst are the sniffer's limits.
	MaxVNIRateLimit = 1e6
	MaxVNIRateBurst = 1_000_000
)

var (
	// Globs: URL characters and '*', nothing the environment file would
	// need quoted.
	reGlob        = regexp.MustCompile(`^[A-Za-z0-9*._~%!&()+;=:@/\[\]-]+$`)
	reMethod      = regexp.MustCompile(`^[A-Za-z]{1,20}$`)
	reStatus      = regexp.MustCompile(`^([1-5][xX][xX]|[1-5][0-9][0-9])$`)
	reContentType = regexp.MustCompile(`^[A-Za-z0-9*.+_-]+/[A-Za-z0-9*.+_-]+$`)
)

// validateVolume checks the volume control keys.
func (c Config) validateVolume(bad func(key, format string, args ...any)) {
	if r := c.SampleRate; r != nil && !(*r >= 0 && *r <= 1) {
		bad("sampleRate", "%v is outside 0 to 1 (the share of connections recorded)", *r)
	}
	for _, l := range []struct {
		key  string
		list []string
		re   *regexp.Regexp
		want string
	}{
		{"includeHosts", c.IncludeHosts, reGlob, "a host glob such as *.example.com"},
		{"excludeHosts", c.ExcludeHosts, reGlob, "a host glob such as *.example.com"},
		{"includePaths", c.IncludePaths, reGlob, "a path glob such as /api/*"},
		{"excludePaths", c.ExcludePaths, reGlob, "a path glob such as /health*"},
		{"methods", c.Methods, reMethod, "an HTTP method such as GET"},
		{"excludeStatus", c.ExcludeStatus, reStatus, "a status class (4xx) or code (404) within 100-599"},
		{"dropBodyContentTypes", c.DropBodyContentTypes, reContentType, `a media type glob such as image/* (or "none" alone)`},
	} {
		for _, v := range l.list {
			if l.key == "dropBodyContentTypes" && strings.EqualFold(v, "none") && len(l.list) == 1 {
				continue
			}
			if !l.re.MatchString(v) {
				bad(l.key, "%q is not %s", v, l.want)
			}
		}
	}
	if !(c.VNIRateLimit >= 0 && c.VNIRateLimit <= MaxVNIRateLimit) {
		bad("vniRateLimit", "%v is outside 0 (no limit) to %g records per second", c.VNIRateLimit, float64(MaxVNIRateLimit))
	}
	if c.VNIRateBurst < 0 || c.VNIRateBurst > MaxVNIRateBurst {
		bad("vniRateBurst", "%d is outside 0 (the rate) to %d", c.VNIRateBurst, MaxVNIRateBurst)
	}
	if c.VNIRateBurst > 0 && c.VNIRateLimit == 0 {
		bad("vniRateBurst", "is set without apitap:vniRateLimit")
	}
}

// volumeEnv adds the volume control settings that are set to env.
func (c Config) volumeEnv(env map[string]string) {
	set := func(flag, v string) {
		if v != "" {
			env[contract.SnifferEnv(flag)] = v
		}
	}
	if c.SampleRate != nil {
		set(contract.SnifferFlagSampleRate, strconv.FormatFloat(*c.SampleRate, 'g', -1, 64))
	}
	set(contract.SnifferFlagIncludeHosts, strings.Join(c.IncludeHosts, ","))
	set(contract.SnifferFlagExcludeHosts, strings.Join(c.ExcludeHosts, ","))
	set(contract.SnifferFlagIncludePaths, strings.Join(c.IncludePaths, ","))
	set(contract.SnifferFlagExcludePaths, strings.Join(c.ExcludePaths, ","))
	set(contract.SnifferFlagMethods, strings.Join(c.Methods, ","))
	set(contract.SnifferFlagExcludeStatus, strings.Join(c.ExcludeStatus, ","))
	set(contract.SnifferFlagDropBodyTypes, strings.Join(c.DropBodyContentTypes, ","))
	if c.VNIRateLimit > 0 && !math.IsInf(c.VNIRateLimit, 0) {
		set(contract.SnifferFlagVNIRateLimit, strconv.FormatFloat(c.VNIRateLimit, 'g', -1, 64))
	}
	if c.VNIRateBurst > 0 {
		set(contract.SnifferFlagVNIRateBurst, strconv.Itoa(c.VNIRateBurst))
	}
}
