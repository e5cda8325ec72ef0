package mirror

import (
	"hash/fnv"
	"slices"
)

// vniMask keeps the 24 bits a VXLAN network id has.
const vniMask = 1<<24 - 1

// VNI is the VXLAN network id of the load balancer lbArn before collisions
// are resolved (docs/contracts.md §2): FNV-1a-32 of the ARN, low 24 bits, with 0
// mapped to 1 because 0 is never used. The analyzer groups APIs by VNI, so
// every function must compute the same value; use VNIs for a selection.
func VNI(lbArn string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(lbArn)) // never fails
	return foldVNI(h.Sum32())
}

// foldVNI turns a 32-bit hash into a usable VNI.
func foldVNI(h uint32) uint32 {
	if v := h & vniMask; v != 0 {
		return v
	}
	return 1
}

// nextVNI is the VNI tried after v on a clash: v+1 modulo 2^24, skipping 0.
func nextVNI(v uint32) uint32 {
	return foldVNI(v + 1)
}

// VNIs maps each selected load balancer ARN to its VNI, resolving
// collisions as docs/contracts.md §2 says: the ARNs are sorted and walked in
// order, and one whose VNI is already taken gets the next free value
// (v+1 modulo 2^24, skipping 0). The result depends only on the set of
// ARNs, not on their order or repetitions, so every function that sees the
// same selection computes the same map.
func VNIs(selected []string) map[string]uint32 {
	return resolveVNIs(selected, VNI)
}

// resolveVNIs is VNIs with the hash injected, so tests can force
// collisions and the wrap past 2^24-1.
func resolveVNIs(selected []string, vni func(string) uint32) map[string]uint32 {
	arns := slices.Clone(selected)
	slices.Sort(arns)
	arns = slices.Compact(arns)

	out := make(map[string]uint32, len(arns))
	taken := make(map[uint32]bool, len(arns))
	for _, arn := range arns {
		// Terminates: a selection has far fewer than 2^24-1 load balancers.
		v := vni(arn)
		for taken[v] {
			v = nextVNI(v)
		}
		taken[v] = true
		out[arn] = v
	}
	return out
}
