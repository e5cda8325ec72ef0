package opsview

import "strings"

// Which instance types can be a traffic mirror source. AWS documents
// Traffic Mirroring for instances built on the Nitro System, with
// exceptions it changes over time, and for these non-Nitro families only:
// C4, D2, G3, G3s, H1, I3, M4, P2, P3, R4, X1, X1e (docs/aws.md, "Mirror
// sources by instance type"). apitap keeps no list of Nitro exceptions: a
// Nitro type is "unknown" until a session on it exists, and the
// orchestrator learns the rest from AWS's NetworkInterfaceNotSupported.

// SourceSupport is what is known of an instance type as a mirror source.
type SourceSupport int

const (
	SupportUnknown SourceSupport = iota
	Supported
	NotSupported
)

// nonNitroSupported are the non-Nitro families AWS lists as sources.
var nonNitroSupported = map[string]bool{
	"c4": true, "d2": true, "g3": true, "g3s": true, "h1": true, "i3": true,
	"m4": true, "p2": true, "p3": true, "r4": true, "x1": true, "x1e": true,
}

// xenFamilies are the families that run on the Xen hypervisor, not Nitro
// (the previous generations AWS's list of Nitro instances leaves out).
// Those not in nonNitroSupported cannot be a source.
var xenFamilies = map[string]bool{
	"t1": true, "t2": true, "m1": true, "m2": true, "m3": true, "m4": true, "c1": true, "c3": true, "c4": true,
	"cc2": true, "cr1": true, "r3": true, "r4": true, "i2": true, "i3": true, "hs1": true, "d2": true,
	"g2": true, "g3": true, "g3s": true, "h1": true, "p2": true, "p3": true, "x1": true, "x1e": true,
}

// SourceSupportOf classifies an instance type such as "m5.large", with
// the reason in a few words.
func SourceSupportOf(instanceType string) (SourceSupport, string) {
	family, _, ok := strings.Cut(strings.ToLower(instanceType), ".")
	if !ok || family == "" {
		return SupportUnknown, "instance type not known"
	}
	switch {
	case nonNitroSupported[family]:
		return Supported, "listed by AWS (non-Nitro)"
	case xenFamilies[family]:
		return NotSupported, "not Nitro and not listed by AWS"
	}
	return SupportUnknown, "Nitro: AWS decides at session creation"
}
