package programme

import (
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// ExpiryRules say when earned points expire. Points are kept in lots, one
// per earning transaction (see ledger.Lot).
type ExpiryRules struct {
	// Rule is ExpiryInactivity (the shipped default: every lot expires
	// Months after the member's last earning or redeeming activity, which
	// extends every lot) or ExpiryLotAge (each lot expires Months after it
	// was earned).
	Rule string `json:"rule"`
	// Months is the inactivity period or the lots' lifetime (24).
	Months int `json:"months"`
}

// The expiry rules.
const (
	ExpiryInactivity = "inactivity"
	ExpiryLotAge     = "lot_age"
)

// MaxExpiryMonths bounds ExpiryRules.Months (ten years).
const MaxExpiryMonths = 120

func (r ExpiryRules) validate() *FieldError {
	if r.Rule != ExpiryInactivity && r.Rule != ExpiryLotAge {
		return fieldErr("expiry.rule", "must be %q or %q, got %q", ExpiryInactivity, ExpiryLotAge, r.Rule)
	}
	if r.Months < 1 || r.Months > MaxExpiryMonths {
		return fieldErr("expiry.months", "must be between 1 and %d, got %d", MaxExpiryMonths, r.Months)
	}
	return nil
}

// PointsExpireAt is when points earned (or, under the inactivity rule,
// activity) at the instant at expire: points are good through the whole
// day Months months after the local date of at, in the programme's time
// zone loc, and expire at 00:00 the day after. A day that month does not
// have is its last day (earned on 31 March, 1 month: good through 30 April).
func (r ExpiryRules) PointsExpireAt(at time.Time, loc *time.Location) time.Time {
	local := at.In(loc)
	y, m, d := local.Date()
	target := time.Date(y, m+time.Month(r.Months), 1, 0, 0, 0, 0, loc)
	lastDay := target.AddDate(0, 1, -1).Day()
	return time.Date(target.Year(), target.Month(), min(d, lastDay)+1, 0, 0, 0, 0, loc).UTC()
}

// LotPolicy is how the points of a transaction at the instant at expire.
// activity says whether the transaction is the member's earning or
// redeeming activity, which under the inactivity rule extends every open
// lot of the member.
func (r ExpiryRules) LotPolicy(at time.Time, loc *time.Location, activity bool) ledger.LotPolicy {
	expiresAt := r.PointsExpireAt(at, loc)
	policy := ledger.LotPolicy{ExpiresAt: expiresAt}
	if r.Rule == ExpiryInactivity && activity {
		policy.ExtendTo = expiresAt
	}
	return policy
}
