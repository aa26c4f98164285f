package rpc

import "testing"

// TestAPartnerRecognisesAMemberByFamilyName: the family name is the last
// or the first word of the registered name (Chinese names in Latin
// letters come either way round), or the first one or two characters of
// a name in Chinese characters without spaces; case does not matter;
// anything else is not the member's.
func TestAPartnerRecognisesAMemberByFamilyName(t *testing.T) {
	for _, tc := range []struct {
		fullName, family string
		want             bool
	}{
		{"Li Wei", "Li", true},
		{"Li Wei", "wei", true},
		{"Wei Li", "LI", true},
		{"Zhang San Feng", "Zhang", true},
		{"Zhang San Feng", "Feng", true},
		{"Zhang San Feng", "San", false},
		{"李伟", "李", true},
		{"李伟", "李伟", true},
		{"李伟", "伟", false},
		{"欧阳娜娜", "欧阳", true},
		{"欧阳娜娜", "欧", true},
		{"欧阳娜娜", "欧阳娜", false},
		{"Li Wei", "L", false},
		{"Li Wei", "", false},
		{"", "Li", false},
	} {
		if got := isFamilyName(tc.fullName, tc.family); got != tc.want {
			t.Errorf("isFamilyName(%q, %q) = %v, want %v", tc.fullName, tc.family, got, tc.want)
		}
	}
}
