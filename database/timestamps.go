package database

import (
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// scanTimestampsInUTC makes every TIMESTAMPTZ (alone or in an array) scan
// as a time in UTC. pgx's default is the machine's time.Local, and
// calendar arithmetic on such a time (a review date 12 months on, the
// first of a month) would then depend on where the server runs: in
// Shanghai an anniversary of 29 February 20:00 UTC falls on a different
// day than in New York. The instant is the same either way.
func scanTimestampsInUTC(typeMap *pgtype.Map) {
	timestamptz := &pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
		Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}}
	typeMap.RegisterType(timestamptz)
	typeMap.RegisterType(&pgtype.Type{Name: "_timestamptz", OID: pgtype.TimestamptzArrayOID,
		Codec: &pgtype.ArrayCodec{ElementType: timestamptz}})
}
