// Package programmes keeps the programme's versions and the hotels
// (properties) it runs at. A version is a programme.Programme stored as
// data with the time it takes effect; it never changes once published, so
// a transaction that records its version can always be explained by it.
package programmes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "time/tzdata" // properties may name any zone; do not depend on the host's zone files

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

var (
	// ErrNoVersion: no programme version is in force at that time.
	ErrNoVersion = errors.New("no programme version in force")
	// ErrUnknownProperty: the property is not known to the service.
	ErrUnknownProperty = errors.New("unknown property")
)

// OwnerProgramme owns the chain's own hotels; a partner's hotels are owned
// by the partner's id.
const OwnerProgramme = "programme"

// Limits.
const (
	MaxPropertyID   = 64
	MaxPropertyName = 200
)

// Version is a published programme.
type Version struct {
	Number      int                 `json:"version"`
	EffectiveAt time.Time           `json:"effective_at"`
	Programme   programme.Programme `json:"programme"`
	CreatedAt   time.Time           `json:"created_at"`
	CreatedBy   string              `json:"created_by"`
	// Location is Programme.TimeZone loaded: points expire at midnight
	// there.
	Location *time.Location `json:"-"`
}

// LotPolicy is how the points of a transaction at the instant at expire
// under this version's rules; activity says whether the transaction is the
// member's earning or redeeming (see programme.ExpiryRules.LotPolicy).
func (v Version) LotPolicy(at time.Time, activity bool) ledger.LotPolicy {
	return v.Programme.Expiry.LotPolicy(at, v.Location, activity)
}

// Property is a hotel.
type Property struct {
	ID       string `json:"property_id"`
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
	Owner    string `json:"owner"`
	// Location is TimeZone loaded.
	Location *time.Location `json:"-"`
}

// Store reads and writes versions and properties.
type Store struct {
	db     *database.DB
	ledger *ledger.Ledger
	now    func() time.Time

	mu       sync.Mutex
	versions map[int]Version // immutable once published
	// schedule is every version's effective time, read at most
	// scheduleTTL ago: a booking asks which version is in force, and a
	// version must be published at least publishLead ahead, so every
	// process has read it before it takes effect.
	schedule       []scheduled
	scheduleReadAt time.Time
	// properties caches recent reads: every booking names a property, and
	// properties change rarely. A change made here is seen at once; one
	// made by another process within propertyTTL.
	properties map[string]cachedProperty
}

type scheduled struct {
	number      int
	effectiveAt time.Time
}

const (
	scheduleTTL = time.Second
	publishLead = 2 * scheduleTTL
	// MaxPublishAheadYears bounds how far ahead a version may start: each
	// version starts after the last, so one published for 9999 would be
	// the last ever.
	MaxPublishAheadYears = 2
)

type cachedProperty struct {
	property Property
	readAt   time.Time
}

// propertyTTL is how long another process's change to a property may take
// to be seen here.
const propertyTTL = 10 * time.Second

// New returns a store; clock nil means time.Now.
func New(l *ledger.Ledger, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: l.DB(), ledger: l, now: clock, versions: map[int]Version{}, properties: map[string]cachedProperty{}}
}

// EnsureDefault publishes the shipped programme as version 1, in force
// since the beginning of time, when no version exists yet.
func (s *Store) EnsureDefault(ctx context.Context) error {
	definition, err := json.Marshal(programme.Default())
	if err != nil {
		return err
	}
	err = s.db.WriteTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO programme_versions (version, effective_at, definition, created_at, created_by)
			VALUES (1, $1, $2, $3, 'default') ON CONFLICT (version) DO NOTHING`,
			time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), string(definition), s.now().UTC())
		return err
	})
	if err != nil {
		return fmt.Errorf("publish the default programme: %w", err)
	}
	return nil
}

// Publish makes p the next version, in force from effectiveAt, which must
// not be in the past: a change of the rules applies to new transactions
// only. It announces the version (loyalty.programme.published.v1) in the
// same transaction. A retry with the same idempotency key returns the same
// version.
func (s *Store) Publish(ctx context.Context, callerID, idempotencyKey string, effectiveAt time.Time, p programme.Programme) (Version, error) {
	if err := p.Validate(); err != nil { // its time zone included
		return Version{}, err
	}
	effectiveAt = effectiveAt.UTC().Truncate(time.Microsecond)
	if effectiveAt.Before(s.now().Add(publishLead)) {
		return Version{}, &ledger.FieldError{Field: "effective_at", Problem: fmt.Sprintf(
			"must be at least %s from now: a new version applies to new transactions only, and every server must know it first", publishLead)}
	}
	if latest := s.now().AddDate(MaxPublishAheadYears, 0, 0); effectiveAt.After(latest) {
		return Version{}, &ledger.FieldError{Field: "effective_at", Problem: fmt.Sprintf(
			"is after %s: a version starts at most %d years ahead (each starts after the last, so a far one would be the last)",
			latest.UTC().Format(time.RFC3339), MaxPublishAheadYears)}
	}
	definition, err := json.Marshal(p)
	if err != nil {
		return Version{}, err
	}
	request := struct {
		EffectiveAt time.Time       `json:"effective_at"`
		Definition  json.RawMessage `json:"definition"`
	}{effectiveAt, definition}
	published, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "publish_programme", request,
		func(ctx context.Context, tx pgx.Tx) (publishedVersion, error) {
			var latest int
			var latestAt time.Time
			err := tx.QueryRow(ctx, `SELECT version, effective_at FROM programme_versions ORDER BY version DESC LIMIT 1`).Scan(&latest, &latestAt)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return publishedVersion{}, err
			}
			if !effectiveAt.After(latestAt) {
				return publishedVersion{}, &ledger.FieldError{Field: "effective_at", Problem: fmt.Sprintf("must be after version %d's %s", latest, latestAt.UTC().Format(time.RFC3339))}
			}
			v := Version{Number: latest + 1, EffectiveAt: effectiveAt, Programme: p, CreatedAt: s.now().UTC().Truncate(time.Microsecond), CreatedBy: callerID}
			if _, err := tx.Exec(ctx, `INSERT INTO programme_versions (version, effective_at, definition, created_at, created_by)
				VALUES ($1, $2, $3, $4, $5)`, v.Number, v.EffectiveAt, string(definition), v.CreatedAt, callerID); err != nil {
				return publishedVersion{}, err
			}
			event := events.Row(events.ProgrammePublished(events.ProgrammePublishedData{Version: v.Number, TimeZone: p.TimeZone},
				v.EffectiveAt, v.CreatedAt))
			if _, err := tx.Exec(ctx, event.Text(), event.Args...); err != nil {
				return publishedVersion{}, fmt.Errorf("announce version %d: %w", v.Number, err)
			}
			return publishedVersion{Number: v.Number}, nil
		})
	if err != nil {
		return Version{}, fmt.Errorf("publish programme: %w", err)
	}
	s.mu.Lock()
	s.schedule = nil // read it afresh
	s.mu.Unlock()
	return s.Get(ctx, published.Number)
}

// publishedVersion is the stored answer of a publication.
type publishedVersion struct {
	Number int `json:"version"`
}

// At returns the version in force at t.
func (s *Store) At(ctx context.Context, t time.Time) (Version, error) {
	schedule, err := s.currentSchedule(ctx)
	if err != nil {
		return Version{}, err
	}
	for i := len(schedule) - 1; i >= 0; i-- {
		if !schedule[i].effectiveAt.After(t) {
			return s.Get(ctx, schedule[i].number)
		}
	}
	return Version{}, fmt.Errorf("%w at %s", ErrNoVersion, t.UTC().Format(time.RFC3339))
}

// currentSchedule returns the versions' effective times, oldest first,
// read at most scheduleTTL ago.
func (s *Store) currentSchedule(ctx context.Context) ([]scheduled, error) {
	now := s.now()
	s.mu.Lock()
	if s.schedule != nil && now.Sub(s.scheduleReadAt) < scheduleTTL && !now.Before(s.scheduleReadAt) {
		schedule := s.schedule
		s.mu.Unlock()
		return schedule, nil
	}
	s.mu.Unlock()
	rows, err := s.db.Pool.Query(ctx, `SELECT version, effective_at FROM programme_versions ORDER BY effective_at`)
	if err != nil {
		return nil, fmt.Errorf("read programme versions: %w", err)
	}
	schedule, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (scheduled, error) {
		var v scheduled
		return v, r.Scan(&v.number, &v.effectiveAt)
	})
	if err != nil {
		return nil, fmt.Errorf("read programme versions: %w", err)
	}
	s.mu.Lock()
	s.schedule, s.scheduleReadAt = schedule, now
	s.mu.Unlock()
	return schedule, nil
}

// Get returns a version by number.
func (s *Store) Get(ctx context.Context, number int) (Version, error) {
	s.mu.Lock()
	v, ok := s.versions[number]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	var definition []byte
	err := s.db.Pool.QueryRow(ctx, `SELECT version, effective_at, definition, created_at, created_by
		FROM programme_versions WHERE version = $1`, number).Scan(&v.Number, &v.EffectiveAt, &definition, &v.CreatedAt, &v.CreatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return Version{}, fmt.Errorf("%w: version %d", ErrNoVersion, number)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read programme version %d: %w", number, err)
	}
	if err := json.Unmarshal(definition, &v.Programme); err != nil {
		return Version{}, fmt.Errorf("decode programme version %d: %w", number, err)
	}
	if err := fillLaterFields(definition, &v.Programme); err != nil {
		return Version{}, fmt.Errorf("decode programme version %d: %w", number, err)
	}
	if v.Location, err = time.LoadLocation(v.Programme.TimeZone); err != nil {
		return Version{}, fmt.Errorf("programme version %d: time zone %q: %w", number, v.Programme.TimeZone, err)
	}
	v.EffectiveAt, v.CreatedAt = v.EffectiveAt.UTC(), v.CreatedAt.UTC()
	s.mu.Lock()
	s.versions[number] = v
	s.mu.Unlock()
	return v, nil
}

// PutProperty creates a property or changes its name, time zone or owner.
func (s *Store) PutProperty(ctx context.Context, callerID, idempotencyKey string, p Property) (Property, error) {
	p.Name = strings.TrimSpace(p.Name)
	if err := validateProperty(&p); err != nil {
		return Property{}, err
	}
	_, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "put_property", p,
		func(ctx context.Context, tx pgx.Tx) (Property, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			_, err := tx.Exec(ctx, `INSERT INTO properties (property_id, name, time_zone, owner, created_at, updated_at, updated_by)
				VALUES ($1, $2, $3, $4, $5, $5, $6)
				ON CONFLICT (property_id) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone,
					owner = excluded.owner, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
				p.ID, p.Name, p.TimeZone, p.Owner, now, callerID)
			if err != nil {
				return Property{}, err
			}
			return p, nil
		})
	if err != nil {
		return Property{}, fmt.Errorf("put property %s: %w", p.ID, err)
	}
	s.mu.Lock()
	delete(s.properties, p.ID)
	s.mu.Unlock()
	return p, nil
}

// Property returns a known property with its time zone loaded.
func (s *Store) Property(ctx context.Context, id string) (Property, error) {
	s.mu.Lock()
	c, ok := s.properties[id]
	s.mu.Unlock()
	if ok && time.Since(c.readAt) < propertyTTL {
		return c.property, nil
	}
	p := Property{ID: id}
	err := s.db.Pool.QueryRow(ctx, `SELECT name, time_zone, owner FROM properties WHERE property_id = $1`, id).
		Scan(&p.Name, &p.TimeZone, &p.Owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return Property{}, fmt.Errorf("%w %q", ErrUnknownProperty, id)
	}
	if err != nil {
		return Property{}, fmt.Errorf("read property %s: %w", id, err)
	}
	if p.Location, err = time.LoadLocation(p.TimeZone); err != nil {
		return Property{}, fmt.Errorf("property %s: time zone %q: %w", id, p.TimeZone, err)
	}
	s.mu.Lock()
	if len(s.properties) > 10_000 { // bound the cache: start afresh
		clear(s.properties)
	}
	s.properties[id] = cachedProperty{property: p, readAt: time.Now()}
	s.mu.Unlock()
	return p, nil
}

func validateProperty(p *Property) error {
	if p.ID == "" || len(p.ID) > MaxPropertyID || strings.ContainsFunc(p.ID, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return &ledger.FieldError{Field: "property_id", Problem: fmt.Sprintf("1 to %d printable ASCII characters without spaces", MaxPropertyID)}
	}
	if p.Name == "" || len([]rune(p.Name)) > MaxPropertyName {
		return &ledger.FieldError{Field: "name", Problem: fmt.Sprintf("1 to %d characters", MaxPropertyName)}
	}
	if p.TimeZone == "" {
		p.TimeZone = programme.Default().TimeZone
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil || p.TimeZone == "Local" {
		return &ledger.FieldError{Field: "time_zone", Problem: fmt.Sprintf("%q is not an IANA time zone such as Asia/Shanghai", p.TimeZone)}
	}
	p.Location = loc
	if p.Owner == "" {
		p.Owner = OwnerProgramme
	}
	if len(p.Owner) > MaxPropertyID {
		return &ledger.FieldError{Field: "owner", Problem: fmt.Sprintf("at most %d bytes", MaxPropertyID)}
	}
	return nil
}

// fillLaterFields gives a version stored before a rule existed the
// shipped default of that rule: points expiry and the cap on partners'
// rate cards came after the first versions.
func fillLaterFields(definition []byte, p *programme.Programme) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(definition, &fields); err != nil {
		return err
	}
	defaults := programme.Default()
	if _, ok := fields["expiry"]; !ok {
		p.Expiry = defaults.Expiry
	}
	if _, ok := fields["partner_max_points_per_unit"]; !ok {
		p.PartnerMaxPointsPerUnit = defaults.PartnerMaxPointsPerUnit
	}
	return nil
}
