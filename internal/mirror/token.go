package mirror

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// tokenPrefix marks apitap's ClientTokens in CloudTrail.
const tokenPrefix = "apitap-"

// ClientToken is the idempotency token of CreateTrafficMirrorSession for one
// session: derived from what the session is (docs/contracts.md §3: stack,
// source ENI, mirror target, filter, VNI, epoch) so that a retried create,
// or the same create issued by handlers racing each other, returns the one
// existing session instead of making a second.
//
// The session number is left out on purpose: two handlers that see the
// ENI differently (one still lists a session the other no longer does)
// choose different numbers for the same session; with one token EC2 makes
// one session and tells the second handler the token was used.
//
// Two fields are there because EC2 remembers a token after the session it
// created is deleted:
//
//   - vni: a session replaced because its load balancer's VNI changed is
//     re-created with the same target and filter; with the old token EC2
//     would answer with the session being replaced.
//   - epoch: the source's launch or attach time and the UTC day
//     (Source.Epoch), and for a token's later generations a "#n" suffix
//     (TokenGeneration). After a stop/start we delete the session and must
//     create it again; with the old token EC2 would return the id of the
//     deleted session and create nothing.
//
// The fields are length-prefixed before hashing, so no two different keys
// hash the same input whatever characters they contain. The result is
// "apitap-" and 32 hex digits: 39 ASCII characters, within EC2's 64.
//
// Changing this function changes every token: a create retried across a
// deploy would then not be recognized as a retry. Keep it stable.
func ClientToken(stack, eni, target, filter string, vni uint32, epoch string) string {
	h := sha256.New()
	var lenBuf [binary.MaxVarintLen64]byte
	for _, f := range []string{
		stack, eni, target, filter,
		strconv.FormatUint(uint64(vni), 10),
		epoch,
	} {
		h.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(f)))])
		h.Write([]byte(f))
	}
	sum := h.Sum(nil)
	return tokenPrefix + hex.EncodeToString(sum[:16])
}

// TokenGeneration is the epoch of generation n of a create's token:
// generation 0 is epoch itself. When EC2 answers a token with a session
// that no longer exists (deleted since), the create moves to the next
// generation; every creator walks the same sequence, so two creates racing
// for one ENI still share a token and EC2 makes one session.
func TokenGeneration(epoch string, n int) string {
	if n == 0 {
		return epoch
	}
	return epoch + "#" + strconv.Itoa(n)
}
