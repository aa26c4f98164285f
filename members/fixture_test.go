package members_test

import (
	"context"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var enrolled = time.Date(2025, 1, 10, 9, 0, 0, 0, time.UTC)

// storeFixture is a member store on a fresh database with its ledger, on
// a test clock that starts at enrolled.
type storeFixture struct {
	ctx    context.Context
	db     *database.DB
	clock  *testclock.Clock
	ledger *ledger.Ledger
	store  *members.Store
}

func newStoreFixture(t *testing.T) storeFixture {
	clock := testclock.New(enrolled)
	db := dbtest.New(t)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	return storeFixture{ctx: context.Background(), db: db, clock: clock, ledger: l, store: members.New(l, clock.Now)}
}

// enrol enrols a member with the idempotency key key.
func (f storeFixture) enrol(t *testing.T, key string) members.Member {
	t.Helper()
	m, err := f.store.Enroll(f.ctx, "test", key, members.Enrollment{FullName: "M", Phone: "+86 1", Channel: programme.ChannelApp})
	if err != nil {
		t.Fatal(err)
	}
	return m
}
