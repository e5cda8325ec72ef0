package recorder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apitap/apitap/internal/flow"
	"github.com/apitap/apitap/internal/vnicount"
)

// Volume says how much of the mirrored traffic becomes records (README
// "Volume control"). The zero value records everything. The rules, in the
// order they are applied:
//
//  1. Sampling by connection: a hash of the VNI and the two endpoints,
//     the same whichever side sent first, decides whether a connection is
//     recorded at all. A connection sampled out is never parsed.
//  2. Once an exchange is parsed: its method (Methods), host (IncludeHosts,
//     ExcludeHosts) and path (IncludePaths, ExcludePaths).
//  3. Its response status (ExcludeStatus); records without a response
//     (pending) pass.
//  4. The per-VNI rate limit (VNIRateLimit, VNIRateBurst).
//  5. Bodies of the content types in DropBodyTypes are left out of the
//     record, which keeps the rest and says so in a header
//     (BodyOmittedHeader).
//
// An include list that is not empty admits only what matches one of its
// patterns; an exclude list drops what matches one of its patterns; exclude
// wins. Patterns are globs in which '*' matches any run of characters,
// '/' and '.' included, and every other character only itself: "*.example.com",
// "/api/*", "/health". Hosts and content types match without regard to
// case, paths and methods exactly (methods are compared in upper case).
// Each dropped exchange is counted by reason in Stats.
type Volume struct {
	// SampleOut is the share of connections not recorded, 0 (the default:
	// every connection) to 1 (none). The sniffer's -sample-rate is
	// 1 - SampleOut.
	SampleOut float64
	// IncludeHosts and ExcludeHosts are globs over the request's Host
	// header without its port (the server's address when there is no Host
	// header).
	IncludeHosts, ExcludeHosts []string
	// IncludePaths and ExcludePaths are globs over the request-target's
	// path, without the query string ("/api/users" of
	// "/api/users?id=1").
	IncludePaths, ExcludePaths []string
	// Methods, when not empty, are the only request methods recorded.
	Methods []string
	// ExcludeStatus are response statuses not recorded: classes ("4xx")
	// or codes ("404").
	ExcludeStatus []string
	// DropBodyTypes are media type globs ("image/*",
	// "application/octet-stream") whose bodies are left out of the record.
	// Default none (the sniffer's default is DefaultDropBodyTypes).
	DropBodyTypes []string
	// VNIRateLimit is the number of records per second of capture time
	// each VNI may publish; beyond, records are dropped and counted per
	// VNI. Default 0: no limit.
	VNIRateLimit float64
	// VNIRateBurst is how many records a VNI may publish at once above
	// the rate. Default: VNIRateLimit rounded up, at least 1.
	VNIRateBurst int
	// MaxVNIs is how many VNIs get a rate-limit bucket and a drop counter
	// of their own; later VNIs share one. Default vnicount.DefaultMaxVNIs.
	MaxVNIs int
}

// DefaultDropBodyTypes are the media types whose bodies the sniffer leaves
// out by default: binary content an API inventory has no use for.
var DefaultDropBodyTypes = []string{"image/*", "audio/*", "video/*", "font/*", "application/octet-stream"}

// BodyOmittedHeader is added to the headers of a message whose body was
// left out (DropBodyTypes); its value is the message's media type. The
// record's payload field is then empty.
const BodyOmittedHeader = "X-Apitap-Body-Omitted"

// Limits of the rate limiter.
const (
	MaxVNIRateLimit = 1e6
	MaxVNIRateBurst = 1e6
)

// Validate reports settings that cannot work.
func (v *Volume) Validate() error {
	var errs []error
	if !(v.SampleOut >= 0 && v.SampleOut <= 1) {
		errs = append(errs, fmt.Errorf("recorder: sampled-out share %v outside 0 to 1", v.SampleOut))
	}
	for _, l := range []struct {
		what string
		list []string
	}{{"include hosts", v.IncludeHosts}, {"exclude hosts", v.ExcludeHosts}, {"include paths", v.IncludePaths},
		{"exclude paths", v.ExcludePaths}, {"methods", v.Methods}, {"body content types", v.DropBodyTypes}} {
		for _, p := range l.list {
			if p == "" || strings.ContainsAny(p, " \t,") {
				errs = append(errs, fmt.Errorf("recorder: %s: %q is empty or holds a space or comma", l.what, p))
			}
		}
	}
	for _, s := range v.ExcludeStatus {
		if _, _, err := parseStatus(s); err != nil {
			errs = append(errs, err)
		}
	}
	if !(v.VNIRateLimit >= 0 && v.VNIRateLimit <= MaxVNIRateLimit) {
		errs = append(errs, fmt.Errorf("recorder: VNI rate limit %v outside 0 (none) to %g records/s", v.VNIRateLimit, float64(MaxVNIRateLimit)))
	}
	if v.VNIRateBurst < 0 || v.VNIRateBurst > MaxVNIRateBurst {
		errs = append(errs, fmt.Errorf("recorder: VNI rate burst %d outside 0 (the rate) to %d", v.VNIRateBurst, int(MaxVNIRateBurst)))
	}
	if err := (&vnicount.Config{MaxVNIs: v.MaxVNIs}).Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parseStatus reads "4xx" (class 4) or "404".
func parseStatus(s string) (class, code int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if len(t) == 3 && t[0] >= '1' && t[0] <= '5' {
		if t[1:] == "xx" {
			return int(t[0] - '0'), 0, nil
		}
		if n, e := strconv.Atoi(t); e == nil && t[1] >= '0' && t[2] >= '0' {
			return 0, n, nil
		}
	}
	return 0, 0, fmt.Errorf("recorder: status %q is not a class (4xx) or a code (404) within 100-599", s)
}

// Glob reports whether s matches pattern, in which '*' matches any run of
// characters and every other character only itself.
func Glob(pattern, s string) bool { return glob(pattern, s, false) }

func glob(p, s string, fold bool) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for px < len(p) || sx < len(s) {
		if px < len(p) {
			if c := p[px]; c == '*' {
				starP, starS = px, sx
				px++
				continue
			} else if sx < len(s) && sameByte(c, s[sx], fold) {
				px++
				sx++
				continue
			}
		}
		// Let the last '*' take one more character.
		if starP >= 0 && starS < len(s) {
			starS++
			px, sx = starP+1, starS
			continue
		}
		return false
	}
	return true
}

func sameByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if glob(p, s, fold) {
			return true
		}
	}
	return false
}

// ConnHash is a hash of the connection that does not depend on which
// endpoint is A: both directions of a connection, and every sniffer, agree.
// It is FNV-1a over the VNI and the endpoints in address order, mixed so
// that its high bits are uniform.
func ConnHash(id flow.ConnID) uint64 {
	lo, hi := id.A, id.B
	if c := lo.Addr().Compare(hi.Addr()); c > 0 || (c == 0 && lo.Port() > hi.Port()) {
		lo, hi = hi, lo
	}
	var buf [4 + 2*18]byte
	binary.BigEndian.PutUint32(buf[0:], id.VNI)
	putEndpoint(buf[4:], lo)
	putEndpoint(buf[22:], hi)
	h := uint64(14695981039346656037)
	for _, b := range buf {
		h ^= uint64(b)
		h *= 1099511628211
	}
	// splitmix64's finalizer.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func putEndpoint(b []byte, ap netip.AddrPort) {
	a := ap.Addr().Unmap().As16()
	copy(b, a[:])
	binary.BigEndian.PutUint16(b[16:], ap.Port())
}

// sampler keeps a connection when its hash is below keepBelow.
type sampler struct {
	all, none bool
	keepBelow uint64
}

func newSampler(sampleOut float64) sampler {
	keep := 1 - sampleOut
	switch {
	case sampleOut <= 0:
		return sampler{all: true}
	case keep <= 0:
		return sampler{none: true}
	}
	return sampler{keepBelow: uint64(math.Ldexp(keep, 64))}
}

func (s sampler) keep(id flow.ConnID) bool {
	if s.all || s.none {
		return s.all
	}
	return ConnHash(id) < s.keepBelow
}

// verdict is what the rules say of an exchange.
type verdict uint8

const (
	keep verdict = iota
	dropMethod
	dropHost
	dropPath
	dropStatus
)

// rules are the Volume's request and response rules, prepared.
type rules struct {
	v             Volume
	statusClasses [6]bool
	statusCodes   []int
}

func newRules(v Volume) rules {
	r := rules{v: v}
	for _, s := range v.ExcludeStatus {
		class, code, err := parseStatus(s)
		switch {
		case err != nil:
		case class > 0:
			r.statusClasses[class] = true
		default:
			r.statusCodes = append(r.statusCodes, code)
		}
	}
	return r
}

// hostRules reports whether any rule needs the host (which may cost an
// allocation when there is no Host header).
func (r *rules) hostRules() bool { return len(r.v.IncludeHosts)+len(r.v.ExcludeHosts) > 0 }

// request decides on the request head; host is only read when hostRules.
func (r *rules) request(method, host, target string) verdict {
	if len(r.v.Methods) > 0 {
		ok := false
		for _, m := range r.v.Methods {
			if strings.EqualFold(m, method) {
				ok = true
				break
			}
		}
		if !ok {
			return dropMethod
		}
	}
	if r.hostRules() {
		if (len(r.v.IncludeHosts) > 0 && !anyGlob(r.v.IncludeHosts, host, true)) || anyGlob(r.v.ExcludeHosts, host, true) {
			return dropHost
		}
	}
	if len(r.v.IncludePaths)+len(r.v.ExcludePaths) > 0 {
		p := PathOf(target)
		if (len(r.v.IncludePaths) > 0 && !anyGlob(r.v.IncludePaths, p, false)) || anyGlob(r.v.ExcludePaths, p, false) {
			return dropPath
		}
	}
	return keep
}

// status decides on the response's status code.
func (r *rules) status(code int) verdict {
	if c := code / 100; c >= 1 && c <= 5 && r.statusClasses[c] {
		return dropStatus
	}
	for _, n := range r.statusCodes {
		if n == code {
			return dropStatus
		}
	}
	return keep
}

// dropBody reports whether a body of this Content-Type is left out, and its
// media type.
func (r *rules) dropBody(contentType string) (string, bool) {
	if len(r.v.DropBodyTypes) == 0 || contentType == "" {
		return "", false
	}
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	return mt, anyGlob(r.v.DropBodyTypes, mt, true)
}

// PathOf is the path of a request-target: without the query string, and
// without scheme and authority in the absolute form.
func PathOf(target string) string {
	if i := strings.Index(target, "://"); i > 0 && !strings.Contains(target[:i], "/") {
		rest := target[i+3:]
		j := strings.IndexByte(rest, '/')
		if j < 0 {
			return "/"
		}
		target = rest[j:]
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	return target
}

// HostOf is a Host header's host without its port (and IPv6 brackets).
func HostOf(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		return h[:i]
	}
	return h
}

// limiter is a token bucket per VNI, in capture time. The first MaxVNIs
// VNIs get a bucket each; later ones share one. Safe for concurrent use.
type limiter struct {
	rate, burst float64
	max         int
	mu          sync.Mutex
	buckets     map[uint32]*bucket
	other       bucket
}

type bucket struct {
	tokens  float64
	last    time.Time
	started bool
}

// newLimiter returns nil when there is no limit.
func newLimiter(v Volume) *limiter {
	if v.VNIRateLimit <= 0 {
		return nil
	}
	burst := float64(v.VNIRateBurst)
	if burst == 0 {
		burst = max(1, math.Ceil(v.VNIRateLimit))
	}
	maxVNIs := v.MaxVNIs
	if maxVNIs == 0 {
		maxVNIs = vnicount.DefaultMaxVNIs
	}
	return &limiter{rate: v.VNIRateLimit, burst: burst, max: maxVNIs, buckets: map[uint32]*bucket{}}
}

// allow takes a token of vni's bucket at capture time now. Workers see
// capture times slightly out of order: a time before the bucket's last one
// adds no tokens.
func (l *limiter) allow(vni uint32, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[vni]
	if b == nil {
		if len(l.buckets) < l.max {
			b = &bucket{}
			l.buckets[vni] = b
		} else {
			b = &l.other
		}
	}
	switch {
	case !b.started:
		b.started, b.tokens, b.last = true, l.burst, now
	case now.After(b.last):
		b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
