package finance

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// ResealWithEncoding1 rewrites every seal as encoding 1 wrote it, the way
// seals written before issue 23 are: the tests of encoding 1 need such
// seals, which this version no longer writes.
func (r *Reports) ResealWithEncoding1(ctx context.Context) error {
	return r.db.WriteTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT day::TEXT, transactions, content_hash, seal, sealed_at, encoding FROM finance_seals ORDER BY day`)
		if err != nil {
			return err
		}
		seals, err := collectSeals(rows)
		if err != nil {
			return err
		}
		var previous []byte
		for _, s := range seals {
			content, count, err := dayContent(ctx, tx, s.Day, encodingPlain)
			if err != nil {
				return err
			}
			seal := sealOf(previous, s.Day, content, count)
			if _, err := tx.Exec(ctx, `UPDATE finance_seals SET content_hash = $2, seal = $3, encoding = $4 WHERE day = $1::DATE`,
				fmtDay(s.Day), content, seal, encodingPlain); err != nil {
				return err
			}
			previous = seal
		}
		return nil
	})
}
