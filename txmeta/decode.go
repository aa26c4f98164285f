package txmeta

import "github.com/loyalty-ledger/loyalty/internal/jsonscan"

// decodeFast reads the metadata the way encoding/json would, for the
// metadata JSON writes and the forms the ledger keeps of it (the same
// keys, maybe sorted, maybe spaced). Every transaction written is
// decoded two or three times (its event, the service's answer, the API's
// view of it), and encoding/json's reflection was 5% of the service's CPU
// under load. It answers false for anything else — an unknown key, a key
// twice, an escaped or non-UTF-8 string, a number that is not a plain
// integer, malformed JSON — and Decode then asks encoding/json, so that
// the two agree on every input (FuzzDecode).
func decodeFast(raw []byte) (Metadata, bool) {
	d := jsonscan.New(raw)
	var m Metadata
	ok := d.Object(func(key string) bool {
		switch key {
		case "kind":
			return d.Str(&m.Kind)
		case "member_number":
			return d.Str(&m.Member)
		case "property_id":
			return d.Str(&m.PropertyID)
		case "stay_id":
			return d.Str(&m.StayID)
		case "description":
			return d.Str(&m.Description)
		case "breakdown":
			return lines(&d, &m.Breakdown)
		case "reason":
			return d.Str(&m.Reason)
		case "corrects":
			return d.Str(&m.Corrects)
		case "corrected_by":
			return d.Str(&m.CorrectedBy)
		case "programme_version":
			return d.Int(&m.ProgrammeVersion)
		case "nights":
			return d.Int(&m.Nights)
		case "qualifying_points":
			return d.Int64(&m.QualifyingPoints)
		case "tier_after":
			return d.Str(&m.TierAfter)
		case "partner_id":
			return d.Str(&m.PartnerID)
		case "rate_version":
			return d.Int(&m.RateVersion)
		case "partner_points_issued":
			return d.Int64(&m.PartnerPointsIssued)
		case "partner_points_redeemed":
			return d.Int64(&m.PartnerPointsRedeemed)
		case "tier_priced":
			return d.Str(&m.TierPriced)
		case "money_amount":
			return d.Str(&m.Money)
		case "money_currency":
			return d.Str(&m.Currency)
		}
		return false
	})
	if !ok || !d.End() {
		return Metadata{}, false
	}
	return m, true
}

// maxFastLines bounds a breakdown decodeFast reads; a longer one is left
// to encoding/json.
const maxFastLines = 64

// lines reads a breakdown. encoding/json makes an empty array an empty
// slice, not nil, and a null element a zero Line.
func lines(d *jsonscan.Scanner, into *[]Line) bool {
	if d.Null() {
		return true
	}
	if !d.Next('[') {
		return false
	}
	out := make([]Line, 0, 4)
	if d.Next(']') {
		*into = out
		return true
	}
	for {
		if len(out) == maxFastLines {
			return false
		}
		var l Line
		if !d.Null() && !d.Object(func(key string) bool {
			switch key {
			case "rule":
				return d.Str(&l.Rule)
			case "description":
				return d.Str(&l.Description)
			case "points":
				return d.Int64(&l.Points)
			case "held_points":
				return d.Int64(&l.HeldPoints)
			}
			return false
		}) {
			return false
		}
		out = append(out, l)
		if d.Next(']') {
			*into = out
			return true
		}
		if !d.Next(',') {
			return false
		}
	}
}
