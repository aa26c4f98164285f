package database_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/loyalty-ledger/loyalty/dbtest"
)

// UUIDs reach PostgreSQL as the values they are, whether alone, in an array
// (the group commit's unnest parameters) or as a nil pointer (NULL), and
// without pgx's detour through text.
func TestUUIDParametersAreSentAsTheirBytes(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	id, other := uuid.New(), uuid.New()
	var nilID *uuid.UUID
	var one, many string
	var isNull bool
	err := db.Pool.QueryRow(ctx, `SELECT $1::UUID::TEXT, $2::UUID[]::TEXT, $3::UUID IS NULL`,
		id, []uuid.UUID{id, other}, nilID).Scan(&one, &many, &isNull)
	if err != nil {
		t.Fatal(err)
	}
	if one != id.String() {
		t.Errorf("a uuid.UUID parameter arrived as %s, want %s", one, id)
	}
	if want := "{" + id.String() + "," + other.String() + "}"; many != want {
		t.Errorf("a []uuid.UUID parameter arrived as %s, want %s", many, want)
	}
	if !isNull {
		t.Error("a nil *uuid.UUID parameter did not arrive as NULL")
	}

	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	plan := conn.Conn().TypeMap().PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id)
	if plan == nil {
		t.Fatal("no plan encodes a uuid.UUID")
	}
	if planType := fmt.Sprintf("%T", plan); strings.Contains(strings.ToLower(planType), "drivervaluer") {
		t.Errorf("a uuid.UUID is encoded through its driver.Valuer (%s), by way of text", planType)
	}
}
