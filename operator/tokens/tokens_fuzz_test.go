package tokens

import (
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/sensitive"
)

// FuzzJoinTokenParse: a join token as the engine answers it (SWMTKN-1-<CA digest>-<secret>, or anything
// else) is fingerprinted and compared without panicking, and nothing derived from it shows the secret part.
func FuzzJoinTokenParse(f *testing.F) {
	f.Add("SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx")
	f.Add("SWMTKN-1--")
	f.Add("-")
	f.Add("")
	f.Add("SWMKEY-1-7c37Cc8654o6p38HnroywCi19pllOnGtbdZEgtKxZu8")
	f.Fuzz(func(t *testing.T, tok string) {
		s := sensitive.New(tok)
		fp := tokenSecretFingerprint(s)
		if fp2 := tokenSecretFingerprint(sensitive.New(tok)); fp != fp2 {
			t.Fatalf("fingerprint not stable: %q, %q", fp, fp2)
		}
		c := operator.CredentialClock{Tracked: true, Fingerprint: s.Fingerprint(), SecretFingerprint: fp}
		if tok != "" && changedOutsideLedger(c, s) {
			t.Fatal("a token compared with its own clock shows as changed")
		}
		masked := s.Masked()
		if i := strings.LastIndexByte(tok, '-'); i >= 0 && len(tok)-i > 9 && strings.Contains(masked, tok[i+1:]) {
			t.Fatalf("Masked() = %q shows the secret part", masked)
		}
	})
}
