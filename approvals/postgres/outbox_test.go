package postgres_test

import (
	"testing"

	"github.com/revokebot/revokebot/approvals/storetest"
)

// TestClaimRaceAcrossHandles runs storetest.ClaimRace with owners on two
// handles (pools) on one database, as on two replicas: claims must hold in
// the database, never only in one process.
func TestClaimRaceAcrossHandles(t *testing.T) {
	t.Parallel()
	a, url := MustOpen(t)
	b := openURL(t, url)
	storetest.ClaimRace(t, a, b, a, b)
}
