package programme

import (
	"slices"
	"strings"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// The chart of accounts. In the ledger a posting's positive amount credits
// its account. A member's points account is credit-normal (the programme
// owes the member); the points a member earns come out of a debit-normal
// "issued" account; points a member spends or loses go to a credit-normal
// redeemed or penalty account.
//
// Programme accounts are touched by almost every transaction, so they are
// spread over ProgrammeShards balance rows and may go negative on any one
// shard.
const (
	// ProgrammeShards is the number of balance rows of every programme
	// account.
	ProgrammeShards = 32

	AccountIssuedStay          = "programme:issued:stay"               // debit-normal: stay points issued
	AccountIssuedBookingBonus  = "programme:issued:booking_bonus"      // debit-normal: direct-booking bonuses issued
	AccountIssuedPromotion     = "programme:issued:promotion"          // debit-normal: promotion points issued
	AccountIssuedSuggestion    = "programme:issued:suggestion"         // debit-normal: adopted-suggestion points issued
	AccountIssuedGoodwill      = "programme:issued:goodwill"           // debit-normal: goodwill points an admin gave
	AccountAdjustmentDebit     = "programme:adjustment:debit"          // credit-normal: points an admin took back
	AccountPenaltyNoShow       = "programme:penalty:no_show"           // credit-normal: no-show penalties
	AccountPenaltyGuarantee    = "programme:penalty:guarantee_capture" // credit-normal: captured late-arrival guarantees
	AccountPenaltyLateCheckout = "programme:penalty:late_checkout"     // credit-normal: late check-out charges
	AccountBreakage            = "programme:breakage"                  // credit-normal: expired points
	AccountForfeited           = "programme:forfeited"                 // credit-normal: balances of closed memberships
	AccountDebtWrittenOff      = "programme:debt_written_off"          // debit-normal: debts of closed memberships written off
)

// MemberAccount is a member's points account: "member:<number>:points",
// credit-normal, never negative through an ordinary posting, one shard
// (the overdraft check guards one row), its points kept in lots that
// expire.
func MemberAccount(memberNumber string) ledger.Account {
	return ledger.Account{
		Code:          memberAccountPrefix + memberNumber + memberAccountSuffix,
		NormalSide:    ledger.Credit,
		AllowNegative: false,
		Shards:        1,
		TracksLots:    true,
	}
}

const (
	memberAccountPrefix = "member:"
	memberAccountSuffix = ":points"
)

// MemberOfAccount is the member number of a member's points account
// (MemberAccount's code); false for any other account.
func MemberOfAccount(code string) (string, bool) {
	rest, ok := strings.CutPrefix(code, memberAccountPrefix)
	if !ok {
		return "", false
	}
	number, ok := strings.CutSuffix(rest, memberAccountSuffix)
	return number, ok && number != ""
}

// RedeemedAccount is the code of the credit-normal account that receives
// the points spent on reward r: "programme:redeemed:<reward>".
func RedeemedAccount(r Reward) string { return "programme:redeemed:" + string(r) }

// ChartOfAccounts is every programme account: the issued, adjustment and
// penalty accounts above and one redeemed account per reward of
// Default().Rewards, sorted by code. All allow negative balances and have
// ProgrammeShards shards.
func ChartOfAccounts() []ledger.Account {
	acct := func(code string, side ledger.Side) ledger.Account {
		return ledger.Account{Code: code, NormalSide: side, AllowNegative: true, Shards: ProgrammeShards}
	}
	out := []ledger.Account{
		acct(AccountIssuedStay, ledger.Debit),
		acct(AccountIssuedBookingBonus, ledger.Debit),
		acct(AccountIssuedPromotion, ledger.Debit),
		acct(AccountIssuedSuggestion, ledger.Debit),
		acct(AccountIssuedGoodwill, ledger.Debit),
		acct(AccountAdjustmentDebit, ledger.Credit),
		acct(AccountPenaltyNoShow, ledger.Credit),
		acct(AccountPenaltyGuarantee, ledger.Credit),
		acct(AccountPenaltyLateCheckout, ledger.Credit),
		acct(AccountBreakage, ledger.Credit),
		acct(AccountForfeited, ledger.Credit),
		acct(AccountDebtWrittenOff, ledger.Debit),
	}
	for r := range Default().Rewards {
		out = append(out, acct(RedeemedAccount(r), ledger.Credit))
	}
	slices.SortFunc(out, func(a, b ledger.Account) int { return strings.Compare(a.Code, b.Code) })
	return out
}
