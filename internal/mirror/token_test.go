package mirror

import (
	"strings"
	"testing"
)

func TestClientToken(t *testing.T) {
	base := func() (string, string, string, string, uint32, string) {
		return "apitap-prod", "eni-0abc", "tmt-1", "tmf-1", 42, "2025-01-02T03:04:05Z@2025-01-02"
	}
	tok := ClientToken(base())

	if !strings.HasPrefix(tok, "apitap-") {
		t.Errorf("token %q lacks prefix apitap-", tok)
	}
	if len(tok) > 64 {
		t.Errorf("token %q is %d characters, EC2 allows 64", tok, len(tok))
	}
	for _, r := range tok {
		if r > 0x7e || r < 0x21 {
			t.Errorf("token %q has non-printable-ASCII %q", tok, r)
		}
	}
	if again := ClientToken(base()); again != tok {
		t.Errorf("not deterministic: %q then %q", tok, again)
	}

	// Every field is part of the key.
	s, e, tg, f, v, ep := base()
	variants := map[string]string{
		"stack":      ClientToken("apitap-dev", e, tg, f, v, ep),
		"eni":        ClientToken(s, "eni-0abd", tg, f, v, ep),
		"target":     ClientToken(s, e, "tmt-2", f, v, ep),
		"filter":     ClientToken(s, e, tg, "tmf-2", v, ep),
		"vni":        ClientToken(s, e, tg, f, 43, ep),
		"epoch":      ClientToken(s, e, tg, f, v, "2025-01-02T03:04:06Z@2025-01-02"),
		"day":        ClientToken(s, e, tg, f, v, "2025-01-02T03:04:05Z@2025-01-03"),
		"generation": ClientToken(s, e, tg, f, v, TokenGeneration(ep, 1)),
	}
	seen := map[string]string{tok: "base"}
	for field, v := range variants {
		if prev, ok := seen[v]; ok {
			t.Errorf("changing %s gives the same token as %s: %q", field, prev, v)
		}
		seen[v] = field
	}

	// Field boundaries matter: shifting characters between neighbours
	// must not give the same token.
	if ClientToken("ab", "c", "", "", 1, "") == ClientToken("a", "bc", "", "", 1, "") {
		t.Error("fields are not delimited")
	}
	if ClientToken("a", "", "b", "", 1, "") == ClientToken("a", "b", "", "", 1, "") {
		t.Error("empty fields are not delimited")
	}
	if TokenGeneration(ep, 0) != ep || TokenGeneration(ep, 2) == TokenGeneration(ep, 1) {
		t.Error("generation 0 is not the epoch, or generations repeat")
	}
}

func TestClientTokenGolden(t *testing.T) {
	// Pinned so that a change of scheme is deliberate: a create retried by
	// a newer deploy must carry the token the older deploy used. The value
	// was computed outside Go: "apitap-" + the first 16 bytes, in hex, of
	// SHA-256 over each field preceded by its length as one byte.
	got := ClientToken("apitap-prod", "eni-0abc", "tmt-1", "tmf-1", 42, "2025-01-02T03:04:05Z@2025-01-02")
	const want = "apitap-582b86f27d444939a9a6278289941129"
	if got != want {
		t.Errorf("ClientToken = %q, want %q", got, want)
	}
}
