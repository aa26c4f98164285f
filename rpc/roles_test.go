package rpc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/loyalty-ledger/loyalty/apikeys"
)

// rolesTable is the role map as the README shows it: every procedure of
// every service, in the contract's order, with the roles that may call it.
func rolesTable(t *testing.T) string {
	t.Helper()
	names := map[apikeys.Role]string{apikeys.RoleAdmin: "admin", apikeys.RoleBookingChannel: "booking channel",
		apikeys.RoleFinance: "finance", apikeys.RolePartner: "partner"}
	var b strings.Builder
	b.WriteString("| procedure | roles that may call it |\n| --- | --- |\n")
	for _, service := range Services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			procedure := "/" + service + "/" + string(methods.Get(i).Name())
			var who []string
			for _, r := range roles[procedure] {
				who = append(who, names[r])
			}
			slices.Sort(who)
			if len(who) == 0 {
				who = []string{"nobody"}
			}
			b.WriteString("| `" + strings.TrimPrefix(procedure, "/loyalty.v1.") + "` | " + strings.Join(who, ", ") + " |\n")
		}
	}
	return b.String()
}

// TestTheREADMERolesTableIsTheRoleMap: the README's table of roles is the
// one the server enforces, procedure by procedure, and no procedure of the
// contract is left out of the role map.
func TestTheREADMERolesTableIsTheRoleMap(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- roles:begin -->\n", "<!-- roles:end -->"
	_, rest, ok := strings.Cut(string(raw), begin)
	block, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md has no %q ... %q block", begin, end)
	}
	if want := rolesTable(t); block != want {
		t.Errorf("README.md's roles table is not the server's role map; between the markers, put:\n%s", want)
	}
	if strings.Contains(block, "| nobody |") {
		t.Error("a procedure of the contract is in no role: add it to roles in auth.go")
	}
}
