// Package apiinventory keeps the API surface the sniffer has seen: per VNI
// and host, each endpoint (method and path template) with counts by status
// class and when it was first and last seen. It answers the sniffer's
// /inventory and shows a user what the mirrored load balancers serve before
// any analyzer is connected.
//
// Memory is bounded: an endpoint is kept only while fewer than
// Config.MaxEndpoints are kept, and the records of endpoints not kept are
// counted (Stats.Dropped). Templates, hosts and methods are cut to fixed
// lengths. Standard library only.
package apiinventory

// Templating rules (README, "Health and metrics", shows examples). A
// request target becomes a path template:
//
//  1. The query string and any fragment are dropped ("?..." and "#...").
//  2. An absolute-form target ("http://host/a", any case, http or https)
//     loses its scheme and authority. What remains gets a leading "/" when
//     it has none: "" and "http://host" become "/", "*" becomes "/*".
//  3. Each segment between slashes that is an id becomes "{id}":
//     - all ASCII digits: "42";
//     - a UUID, 8-4-4-4-12 hex digits with dashes, any case;
//     - a hex id: 8 or more hex digits with at least one decimal digit
//     ("5f2b8c1e", a Mongo ObjectId, a SHA-1), so that words such as
//     "deadbeef" or "facade" stay;
//     - a long token: 20 or more ASCII letters and digits with at least
//     three digits (ULIDs, base62 keys).
//     Segments are judged as sent: "%31" is not a digit.
//  4. Other segments are kept as sent, empty ones and a trailing slash
//     included ("/users/" and "/users" are different routes to many
//     servers). Bytes outside printable ASCII are written as %XX, so that
//     a template is always printable ASCII.
//  5. A template longer than MaxTemplateBytes is cut to that length, ending
//     in "...".
//
// The result always starts with "/" and is at most MaxTemplateBytes long,
// and templating a template changes nothing.

// MaxTemplateBytes bounds a path template.
const MaxTemplateBytes = 256

// IDSegment replaces a path segment that is an id.
const IDSegment = "{id}"

const cutMark = "..."

// Template returns the path template of a request target.
func Template(target string) string {
	var buf [MaxTemplateBytes + 8]byte
	return string(AppendTemplate(buf[:0], target))
}

// AppendTemplate appends the path template of target to dst without
// allocating (when dst has MaxTemplateBytes of room). Work is linear in
// len(target), which the HTTP parser bounds (-max-header).
func AppendTemplate(dst []byte, target string) []byte {
	start := len(dst)
	path := pathOf(target)
	if len(path) == 0 || path[0] != '/' {
		dst = append(dst, '/')
	}
	// Write segment by segment. Stop once past the limit: the rest cannot
	// be shown.
	for i := 0; i < len(path) && len(dst)-start <= MaxTemplateBytes; {
		if path[i] == '/' {
			dst = append(dst, '/')
			i++
			continue
		}
		j := i
		for j < len(path) && path[j] != '/' {
			j++
		}
		seg := path[i:j]
		if isID(seg) {
			dst = append(dst, IDSegment...)
		} else {
			for k := 0; k < len(seg) && len(dst)-start <= MaxTemplateBytes; k++ {
				dst = appendByte(dst, seg[k])
			}
		}
		i = j
	}
	if len(dst)-start > MaxTemplateBytes {
		dst = append(dst[:start+MaxTemplateBytes-len(cutMark)], cutMark...)
	}
	return dst
}

// pathOf is the path of a request target: no query, fragment, scheme or
// authority.
func pathOf(target string) string {
	for i := 0; i < len(target); i++ {
		if target[i] == '?' || target[i] == '#' {
			target = target[:i]
			break
		}
	}
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(target) >= len(scheme) && equalFoldASCII(target[:len(scheme)], scheme) {
			rest := target[len(scheme):]
			for i := 0; i < len(rest); i++ {
				if rest[i] == '/' {
					return rest[i:]
				}
			}
			return ""
		}
	}
	return target
}

const hexDigits = "0123456789ABCDEF"

// appendByte appends c, or %XX when c is not printable ASCII.
func appendByte(dst []byte, c byte) []byte {
	if c <= ' ' || c >= 0x7f {
		return append(dst, '%', hexDigits[c>>4], hexDigits[c&0xf])
	}
	return append(dst, c)
}

// isID reports whether a path segment is an id (rule 3 above).
func isID(s string) bool {
	if len(s) == 0 {
		return false
	}
	digits, hexOnly, alnum := 0, true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		case c >= 'g' && c <= 'z', c >= 'G' && c <= 'Z':
			hexOnly = false
		default:
			hexOnly, alnum = false, false
		}
	}
	switch {
	case digits == len(s):
		return true
	case hexOnly && len(s) >= 8 && digits > 0:
		return true
	case alnum && len(s) >= 20 && digits >= 3:
		return true
	}
	return isUUID(s)
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
