package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

func TestCredentialsAndRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.clients(e.adminKey)
	member := e.enroll(t, e.clients(e.bookingKey), "enrol-1")
	getMember := func(c clients) error {
		_, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		return err
	}

	t.Run("no credentials are unauthenticated", func(t *testing.T) {
		wantCode(t, getMember(e.clients("")), connect.CodeUnauthenticated)
	})
	t.Run("an unknown key is unauthenticated", func(t *testing.T) {
		wantCode(t, getMember(e.clients("lk_not-a-key")), connect.CodeUnauthenticated)
	})
	t.Run("a revoked key stops working at once", func(t *testing.T) {
		created, err := admin.admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "key-1",
			Name: "front desk 7", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL}))
		if err != nil {
			t.Fatal(err)
		}
		secret := created.Msg.GetSecret()
		if !strings.HasPrefix(secret, "lk_") {
			t.Fatalf("secret %q", secret)
		}
		replayed, err := admin.admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "key-1",
			Name: "front desk 7", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL}))
		if err != nil || replayed.Msg.GetApiKey().GetKeyId() != created.Msg.GetApiKey().GetKeyId() || replayed.Msg.GetSecret() != "" {
			t.Fatalf("a replayed creation must return the same key and no secret: %v, %v", replayed, err)
		}
		if err := getMember(e.clients(secret)); err != nil {
			t.Fatalf("the new key: %v", err)
		}
		if _, err := admin.admin.RevokeApiKey(e.ctx, connect.NewRequest(&loyaltyv1.RevokeApiKeyRequest{IdempotencyKey: "revoke-1",
			KeyId: created.Msg.GetApiKey().GetKeyId(), Reason: "desk closed"})); err != nil {
			t.Fatal(err)
		}
		wantCode(t, getMember(e.clients(secret)), connect.CodeUnauthenticated)
	})
	t.Run("a booking channel may not call the admin service", func(t *testing.T) {
		_, err := e.clients(e.bookingKey).admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "adj-1",
			MemberNumber: member, Points: 100, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "x"}))
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("finance and partner keys may not record bookings", func(t *testing.T) {
		e.createPartner(t, "P-JINJIANG", "0.01", "0.01", nil)
		for _, role := range []loyaltyv1.ApiKeyRole{loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE, loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER} {
			req := &loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "role-" + role.String(), Name: role.String(), Role: role}
			if role == loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER {
				req.PartnerId = "P-JINJIANG"
			}
			created, err := admin.admin.CreateApiKey(e.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.clients(created.Msg.GetSecret()).booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("s-1", member, "B-1", "100.00")))
			wantCode(t, err, connect.CodePermissionDenied)
		}
	})
	t.Run("a caller may reverse only its own transactions", func(t *testing.T) {
		stay, err := e.clients(e.bookingKey).booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-9", member, "B-9", "100.00")))
		if err != nil {
			t.Fatal(err)
		}
		other, err := admin.admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "key-2",
			Name: "call centre", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL}))
		if err != nil {
			t.Fatal(err)
		}
		before := e.transactionCount(t)
		_, err = e.clients(other.Msg.GetSecret()).booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{
			IdempotencyKey: "rev-1", TransactionId: stay.Msg.GetTransaction().GetTransactionId(), Reason: "not mine"}))
		wantCode(t, err, connect.CodePermissionDenied)
		if e.transactionCount(t) != before {
			t.Fatal("a refused reversal posted")
		}
	})
}

// TestHostileInput sends malformed and hostile requests: each gets a clear
// error with the right code (and the field, for invalid arguments), and
// nothing is written.
func TestHostileInput(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	admin := e.clients(e.adminKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "388.00"))); err != nil {
		t.Fatal(err)
	}
	stay := func(mod func(*loyaltyv1.RecordStayRequest)) error {
		req := stayRequest("stay-x", member, "B-X", "388.00")
		mod(req)
		_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
		return err
	}
	enroll := func(mod func(*loyaltyv1.EnrollMemberRequest)) error {
		req := &loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-x", FullName: "Wang Fang", Email: "wf@example.com",
			Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB}
		mod(req)
		_, err := c.members.EnrollMember(e.ctx, connect.NewRequest(req))
		return err
	}
	cases := []struct {
		name  string
		call  func() error
		code  connect.Code
		field string
	}{
		{"an enrolment without a name", func() error { return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.FullName = " " }) }, connect.CodeInvalidArgument, "fullName"},
		{"an enrolment with a 201-character name", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.FullName = strings.Repeat("名", 201) })
		}, connect.CodeInvalidArgument, "fullName"},
		{"an enrolment with a 1,000-character name", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.FullName = strings.Repeat("名", 1000) })
		}, connect.CodeInvalidArgument, "fullName"},
		{"an enrolment on an unknown channel", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.Channel = 99 })
		}, connect.CodeInvalidArgument, "channel"},
		{"an enrolment with a broken email", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.Email = "li.wei at example" })
		}, connect.CodeInvalidArgument, "email"},
		{"an enrolment without an idempotency key", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.IdempotencyKey = "" })
		}, connect.CodeInvalidArgument, "idempotencyKey"},
		{"an idempotency key too long", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.IdempotencyKey = strings.Repeat("k", 129) })
		}, connect.CodeInvalidArgument, "idempotencyKey"},
		{"an idempotency key with a space", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.IdempotencyKey = "stay 1" })
		}, connect.CodeInvalidArgument, "idempotencyKey"},
		{"a malformed member number", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.MemberNumber = "1; DROP TABLE members" })
		}, connect.CodeInvalidArgument, "memberNumber"},
		{"an unknown member", func() error { return stay(func(r *loyaltyv1.RecordStayRequest) { r.MemberNumber = "1000000000" }) }, connect.CodeNotFound, ""},
		{"fewer nights than the dates say", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.DepartureDate = "2026-11-05" })
		}, connect.CodeInvalidArgument, "nights"},
		{"a stay of zero nights", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.DepartureDate = r.ArrivalDate; r.Nights = nil })
		}, connect.CodeInvalidArgument, "departureDate"},
		{"a stay at an unknown property", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.PropertyId = "NOWHERE-1" })
		}, connect.CodeNotFound, ""},
		{"a booking looked up at an unknown property", func() error {
			_, err := c.booking.GetBooking(e.ctx, connect.NewRequest(&loyaltyv1.GetBookingRequest{PropertyId: "NOWHERE-1", StayId: "B-1"}))
			if err != nil && !strings.Contains(err.Error(), "no property with this propertyId") {
				return fmt.Errorf("not named as an unknown property: %w", err)
			}
			return err
		}, connect.CodeNotFound, ""},
		{"an enrolment at an unknown property", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.PropertyId = "NOWHERE-1" })
		}, connect.CodeNotFound, ""},
		{"a departure before the arrival", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.DepartureDate = "2026-10-01" })
		}, connect.CodeInvalidArgument, "departureDate"},
		{"an impossible date", func() error { return stay(func(r *loyaltyv1.RecordStayRequest) { r.ArrivalDate = "2026-13-01" }) }, connect.CodeInvalidArgument, "arrivalDate"},
		{"a negative room charge", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.Amount = "-388.00" })
		}, connect.CodeInvalidArgument, "nights[0].roomCharge.amount"},
		{"a room charge in exponent form", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.Amount = "1e9" })
		}, connect.CodeInvalidArgument, "nights[0].roomCharge.amount"},
		{"a room charge over 1,000,000.00 a night", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.Amount = "1000000.01" })
		}, connect.CodeInvalidArgument, "nights[0].roomCharge.amount"},
		{"a room charge with a tenth of a fen", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.Amount = "388.001" })
		}, connect.CodeInvalidArgument, "nights[0].roomCharge.amount"},
		{"a room charge in another currency", func() error {
			return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.CurrencyCode = "USD" })
		}, connect.CodeInvalidArgument, "nights[0].roomCharge.currencyCode"},
		{"a night without a charge", func() error { return stay(func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge = nil }) }, connect.CodeInvalidArgument, "nights[0].roomCharge"},
		{"an unknown booking channel", func() error { return stay(func(r *loyaltyv1.RecordStayRequest) { r.Channel = 42 }) }, connect.CodeInvalidArgument, "channel"},
		{"a stay id with control characters", func() error { return stay(func(r *loyaltyv1.RecordStayRequest) { r.StayId = "B-1\n" }) }, connect.CodeInvalidArgument, "stayId"},
		{"a no-show of minus one night", func() error {
			_, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns", MemberNumber: member,
				PropertyId: "P1", StayId: "N1", ArrivalDate: "2026-11-20", Nights: -1}))
			return err
		}, connect.CodeInvalidArgument, "nights"},
		{"a no-show without its booking time", func() error {
			_, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns", MemberNumber: member,
				PropertyId: "P1", StayId: "N1", ArrivalDate: "2026-11-20", Nights: 1}))
			return err
		}, connect.CodeInvalidArgument, "bookedAt"},
		{"an unknown reward", func() error {
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: member, Reward: 77}))
			return err
		}, connect.CodeInvalidArgument, "reward"},
		{"a redemption for an unknown member", func() error {
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: "1000000000",
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK}))
			return err
		}, connect.CodeNotFound, ""},
		{"a thousand rewards at once", func() error {
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, Quantity: 1000}))
			return err
		}, connect.CodeInvalidArgument, "quantity"},
		{"a negative quantity", func() error {
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, Quantity: -3}))
			return err
		}, connect.CodeInvalidArgument, "quantity"},
		{"a negative price shown", func() error {
			shown := int64(-5)
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, ExpectedPoints: &shown}))
			return err
		}, connect.CodeInvalidArgument, "expectedPoints"},
		{"a price the member was not shown", func() error {
			wrong := int64(1)
			_, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, ExpectedPoints: &wrong}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"zero hours of late check-out", func() error {
			_, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "l", MemberNumber: member,
				PropertyId: "P1", StayId: "B-1", DepartureDate: "2026-11-02"}))
			return err
		}, connect.CodeInvalidArgument, "hours"},
		{"a guarantee past 23:00", func() error {
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g", MemberNumber: member,
				PropertyId: "P1", StayId: "G1", ArrivalDate: "2026-11-23", HoldUntil: "23:30"}))
			return err
		}, connect.CodeInvalidArgument, "holdUntil"},
		{"a guarantee at 25 o'clock", func() error {
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g", MemberNumber: member,
				PropertyId: "P1", StayId: "G1", ArrivalDate: "2026-11-23", HoldUntil: "25:00"}))
			return err
		}, connect.CodeInvalidArgument, "holdUntil"},
		{"releasing a guarantee that does not exist", func() error {
			_, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "rg",
				PropertyId: "P1", StayId: "nothing", Reason: loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED}))
			return err
		}, connect.CodeNotFound, ""},
		{"reversing something that is not a transaction id", func() error {
			_, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "rv", TransactionId: "../../etc", Reason: "x"}))
			return err
		}, connect.CodeInvalidArgument, "transactionId"},
		{"reversing an unknown transaction", func() error {
			_, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "rv",
				TransactionId: "00000000-0000-4000-8000-000000000000", Reason: "x"}))
			return err
		}, connect.CodeNotFound, ""},
		{"a statement page of a million", func() error {
			_, err := c.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: member, PageSize: 1_000_000}))
			return err
		}, connect.CodeInvalidArgument, "pageSize"},
		{"a forged page token", func() error {
			_, err := c.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: member, PageToken: "AAAA"}))
			return err
		}, connect.CodeInvalidArgument, "pageToken"},
		{"an adjustment without a category", func() error {
			_, err := admin.admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "a", MemberNumber: member, Points: 5, Reason: "x"}))
			return err
		}, connect.CodeInvalidArgument, "category"},
		{"a goodwill debit beyond the balance", func() error {
			_, err := admin.admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "a", MemberNumber: member, Points: -100000,
				Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "clawback"}))
			return err
		}, connect.CodeFailedPrecondition, ""},
		{"a request body over 64 KiB", func() error {
			return enroll(func(r *loyaltyv1.EnrollMemberRequest) { r.FullName = strings.Repeat("x", 70<<10) })
		}, connect.CodeResourceExhausted, ""},
	}
	var members int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM members`).Scan(&members); err != nil {
		t.Fatal(err)
	}
	before := e.transactionCount(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), tc.code)
			if tc.field != "" {
				if got := badRequestField(t, ce); got != tc.field {
					t.Fatalf("the error names field %q, want %q (%v)", got, tc.field, ce)
				}
			}
			if strings.Contains(strings.ToLower(ce.Message()), "sql") || strings.Contains(ce.Message(), "pgx") {
				t.Fatalf("the error leaks internals: %v", ce)
			}
		})
	}
	var after int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM members`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if e.transactionCount(t) != before || after != members {
		t.Fatalf("hostile input wrote: transactions %d -> %d, members %d -> %d", before, e.transactionCount(t), members, after)
	}
	e.verify(t)
}

// TestManyEnrolmentsAtOnce enrols more members at once than the server has
// database connections: none may wait for a connection another holds.
func TestManyEnrolmentsAtOnce(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()
	const n = 48 // the pool has 16 connections
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := c.members.EnrollMember(ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
				IdempotencyKey: fmt.Sprintf("burst-%d", i), FullName: "Guest", Phone: "+86 100",
				Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK}))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestGuaranteeReplaysReturnTheFirstBalance: a guarantee replayed after
// the member's points moved answers with the balance of the first answer.
func TestGuaranteeReplaysReturnTheFirstBalance(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "800.00"))); err != nil {
		t.Fatal(err)
	}
	place := &loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member, PropertyId: "SH-HQ-001",
		StayId: "G-1", ArrivalDate: "2026-11-24", HoldUntil: "19:00"}
	first, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(place))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-2", member, "B-2", "100.00"))); err != nil {
		t.Fatal(err)
	}
	again, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(place))
	if err != nil || !proto.Equal(first.Msg, again.Msg) {
		t.Fatalf("replayed guarantee %v (%v), first %v", again, err, first)
	}
	release := &loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "g-1-arrived", PropertyId: "SH-HQ-001", StayId: "G-1",
		Reason: loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED}
	released, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(release))
	if err != nil || released.Msg.GetBalance().GetHeldPoints() != 0 {
		t.Fatalf("release: %v, %v", released, err)
	}
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-3", member, "B-3", "100.00"))); err != nil {
		t.Fatal(err)
	}
	releasedAgain, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(release))
	if err != nil || !proto.Equal(released.Msg, releasedAgain.Msg) {
		t.Fatalf("replayed release %v (%v), first %v", releasedAgain, err, released)
	}
}

// TestNamesUpToTheContractsLengthAreTaken: the contract's "1-200
// characters" for a member's and an API key's name, in characters, not
// bytes (200 Chinese characters are 600 bytes).
func TestNamesUpToTheContractsLengthAreTaken(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("名", 200)
	res, err := e.clients(e.bookingKey).members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
		IdempotencyKey: "enrol-long", FullName: long, Email: "long@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil || res.Msg.GetMember().GetFullName() != long {
		t.Fatalf("a 200-character name: %v, %v", res, err)
	}
	key, err := e.clients(e.adminKey).admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{
		IdempotencyKey: "key-long", Name: long, Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL}))
	if err != nil || key.Msg.GetApiKey().GetName() != long {
		t.Fatalf("a key named with 200 characters: %v, %v", key, err)
	}
}
