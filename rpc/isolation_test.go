package rpc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// allProcedures are the procedures of every loyalty.v1 service, read from
// the generated descriptors: a new RPC is covered without touching the
// tests.
func allProcedures(t *testing.T) map[string]protoreflect.ServiceDescriptor {
	t.Helper()
	_ = loyaltyv1.File_loyalty_v1_alliance_service_proto // linked in
	out := map[string]protoreflect.ServiceDescriptor{}
	protoregistry.GlobalFiles.RangeFilesByPackage("loyalty.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				out["/"+string(svc.FullName())+"/"+string(svc.Methods().Get(j).Name())] = svc
			}
		}
		return true
	})
	if len(out) < 30 {
		t.Fatalf("found only %d procedures in the descriptors", len(out))
	}
	return out
}

// call sends an empty request message (valid for every request type) to
// a procedure with a key; a stream answers with its first message or its
// error.
func (e *env) call(procedure, key string) error {
	c := connect.NewClient[emptypb.Empty, emptypb.Empty](e.server.Client(), e.server.URL+procedure, connect.WithInterceptors(bearer(key)))
	service, method, _ := strings.Cut(strings.TrimPrefix(procedure, "/"), "/")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return err
	}
	if m := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method)); m != nil && m.IsStreamingServer() {
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		defer cancel()
		stream, err := c.CallServerStream(ctx, connect.NewRequest(&emptypb.Empty{}))
		if err != nil {
			return err
		}
		defer stream.Close()
		if stream.Receive() {
			return nil
		}
		return stream.Err()
	}
	_, err = c.CallUnary(e.ctx, connect.NewRequest(&emptypb.Empty{}))
	return err
}

// TestPartnerKeysReachOnlyTheAllianceService tries every procedure of
// every service with a partner key: only AllianceService answers, and no
// other key may call AllianceService.
func TestPartnerKeysReachOnlyTheAllianceService(t *testing.T) {
	w := newAllianceWorld(t)
	before := w.transactionCount(t)
	for procedure, svc := range allProcedures(t) {
		t.Run(strings.TrimPrefix(procedure, "/loyalty.v1."), func(t *testing.T) {
			err := w.call(procedure, w.alphaKey)
			if svc.FullName() != loyaltyv1connect.AllianceServiceName {
				wantCode(t, err, connect.CodePermissionDenied)
				return
			}
			if code := connect.CodeOf(err); err != nil && (code == connect.CodePermissionDenied || code == connect.CodeUnauthenticated) {
				t.Errorf("a partner key may not call %s: %v", procedure, err)
			}
			for _, key := range []string{w.adminKey, w.bookingKey} {
				wantCode(t, w.call(procedure, key), connect.CodePermissionDenied)
			}
		})
	}
	if n := w.transactionCount(t); n != before {
		t.Errorf("%d transactions recorded by refused or empty calls", n-before)
	}
}

// TestPartnerScope: every AllianceService RPC, called by BETA on ALPHA's
// properties and transactions and on the programme's own, answers exactly
// like it does for things that do not exist, and moves nothing.
func TestPartnerScope(t *testing.T) {
	w := newAllianceWorld(t)
	alpha, beta := w.alliance(w.alphaKey), w.alliance(w.betaKey)
	a, err := alpha.AwardStay(w.ctx, award("stay-a", w.m1, "A-1", "ALPHA-1", "2026-11-10", "500.00"))
	alphaTxn := mustTxn(t, a, err).GetTransactionId()
	if _, err := beta.AwardStay(w.ctx, award("stay-b", w.m2, "B-1", "BETA-1", "2026-11-11", "200.00")); err != nil {
		t.Fatal(err)
	}
	own, err := w.clients(w.bookingKey).booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("own", w.m1, "OWN-1", "100.00")))
	if err != nil {
		t.Fatal(err)
	}
	ownTxn := own.Msg.GetTransaction().GetTransactionId()
	before := w.transactionCount(t)

	// sameAsMissing asserts that each of errs answers like the first one,
	// the call on something that does not exist, once ids are set aside.
	sameAsMissing := func(t *testing.T, code connect.Code, missing string, errs map[string]error) {
		t.Helper()
		var want string
		for id, err := range errs {
			ce := wantCode(t, err, code)
			msg := strings.ReplaceAll(ce.Message(), id, "<id>")
			if want == "" {
				want = strings.ReplaceAll(wantCode(t, errs[missing], code).Message(), missing, "<id>")
			}
			if msg != want {
				t.Errorf("%s answers %q, something missing %q", id, msg, want)
			}
		}
	}
	cases := map[string]func(t *testing.T){
		loyaltyv1connect.AllianceServiceGetMemberStatusProcedure: func(t *testing.T) {
			// Intended: any partner recognises any member of the alliance
			// with both factors, and learns the tier, nothing more.
			res, err := beta.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: w.m1, FamilyName: "WEI"}))
			if err != nil || res.Msg.GetTier() != loyaltyv1.Tier_TIER_SILVER || res.Msg.GetBenefits().GetFreeCancellationUntil() != "18:00" {
				t.Fatalf("status of m1: %v, %v", res, err)
			}
			get := func(number, name string) error {
				_, err := beta.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: number, FamilyName: name}))
				return err
			}
			sameAsMissing(t, connect.CodeNotFound, "9999999999", map[string]error{
				"9999999999": get("9999999999", "Wei"),
				w.m1:         get(w.m1, "Wang"),
				w.m2:         get(w.m2, "Li"), // a given name is not the family name
			})
		},
		loyaltyv1connect.AllianceServiceAwardStayProcedure: func(t *testing.T) {
			try := func(property string) error {
				_, err := beta.AwardStay(w.ctx, award("x-"+property, w.m1, property, "X-1", "2026-11-12", "300.00"))
				return err
			}
			sameAsMissing(t, connect.CodeNotFound, "NOPE-1", map[string]error{"NOPE-1": try("NOPE-1"), "A-1": try("A-1"), "SH-HQ-001": try("SH-HQ-001")})
			// At its own hotel, a member number without the right family
			// name is an unknown member.
			byName := func(number, name string) error {
				req := award("n-"+number+name, number, "B-1", "X-2", "2026-11-12", "300.00")
				req.Msg.FamilyName = name
				_, err := beta.AwardStay(w.ctx, req)
				return err
			}
			sameAsMissing(t, connect.CodeNotFound, "9999999999", map[string]error{"9999999999": byName("9999999999", "Wei"), w.m1: byName(w.m1, "Wang")})
		},
		loyaltyv1connect.AllianceServiceAwardStaysProcedure: func(t *testing.T) {
			// Row by row, as AwardStay answers: another partner's hotel
			// and the programme's own are hotels that do not exist.
			properties := []string{"NOPE-1", "A-1", "SH-HQ-001"}
			var rows []*loyaltyv1.AwardStayRequest
			for _, property := range properties {
				rows = append(rows, award("xs-"+property, w.m1, property, "XS-1", "2026-11-12", "300.00").Msg)
			}
			res, err := beta.AwardStays(w.ctx, connect.NewRequest(&loyaltyv1.AwardStaysRequest{Stays: rows}))
			if err != nil {
				t.Fatal(err)
			}
			errs := map[string]error{}
			for i, property := range properties {
				r := res.Msg.GetResults()[i]
				if r.GetStatus() != loyaltyv1.StayRowStatus_STAY_ROW_STATUS_REFUSED || r.GetError().GetCode() != connect.CodeNotFound.String() {
					t.Fatalf("a stay at %s: %s %v", property, r.GetStatus(), r.GetError())
				}
				errs[property] = connect.NewError(connect.CodeNotFound, errors.New(r.GetError().GetMessage()))
			}
			sameAsMissing(t, connect.CodeNotFound, "NOPE-1", errs)
		},
		loyaltyv1connect.AllianceServiceRedeemProcedure: func(t *testing.T) {
			try := func(property string) error {
				_, err := beta.Redeem(w.ctx, redeem("r-"+property, w.m1, property, loyaltyv1.Reward_REWARD_BEDTIME_MILK))
				return err
			}
			sameAsMissing(t, connect.CodeNotFound, "NOPE-1", map[string]error{"NOPE-1": try("NOPE-1"), "A-2": try("A-2"), "SH-HQ-001": try("SH-HQ-001")})
			// A partner spends only the points of a member it recognised.
			byName := func(number, name string) error {
				req := redeem("rn-"+number+name, number, "B-1", loyaltyv1.Reward_REWARD_BEDTIME_MILK)
				req.Msg.FamilyName = name
				_, err := beta.Redeem(w.ctx, req)
				return err
			}
			sameAsMissing(t, connect.CodeNotFound, "9999999999", map[string]error{"9999999999": byName("9999999999", "Wei"), w.m1: byName(w.m1, "Wang")})
		},
		loyaltyv1connect.AllianceServiceReverseTransactionProcedure: func(t *testing.T) {
			try := func(id string) error {
				_, err := beta.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{
					IdempotencyKey: "rev-" + id, TransactionId: id, Reason: "not ours"}))
				return err
			}
			missing := uuid.NewString()
			sameAsMissing(t, connect.CodeNotFound, missing, map[string]error{missing: try(missing), alphaTxn: try(alphaTxn), ownTxn: try(ownTxn)})
		},
		loyaltyv1connect.AllianceServiceListPartnerActivityProcedure: func(t *testing.T) {
			for _, property := range []string{"A-1", "SH-HQ-001", ""} {
				res, err := beta.ListPartnerActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerActivityRequest{PropertyId: property}))
				if err != nil {
					t.Fatal(err)
				}
				for _, tx := range res.Msg.GetTransactions() {
					if tx.GetPropertyId() != "B-1" {
						t.Errorf("BETA sees a transaction at %s", tx.GetPropertyId())
					}
				}
				if want := map[string]int{"": 1}[property]; len(res.Msg.GetTransactions()) != want {
					t.Errorf("BETA's activity at %q: %d transactions, want %d", property, len(res.Msg.GetTransactions()), want)
				}
			}
		},
		loyaltyv1connect.AllianceServiceGetSettlementPreviewProcedure: func(t *testing.T) {
			// There is no partner field to ask for: the scope is the key's.
			s := w.settlement(t, w.betaKey)
			if s.GetPartnerId() != "BETA" || s.GetPointsIssued() != 200 || s.GetOwedToProgramme().GetAmount() != "1.86" {
				t.Errorf("BETA's settlement: %v", s)
			}
		},
	}
	for procedure, svc := range allProcedures(t) {
		if svc.FullName() != loyaltyv1connect.AllianceServiceName {
			continue
		}
		check, ok := cases[procedure]
		if !ok {
			t.Errorf("%s has no partner-scope case: add one", procedure)
			continue
		}
		t.Run(strings.TrimPrefix(procedure, "/loyalty.v1.AllianceService/"), check)
	}
	if n := w.transactionCount(t); n != before {
		t.Errorf("%d transactions recorded by calls outside the partner's scope", n-before)
	}
	w.verify(t)
}

// TestAdminReversesAPartnerTransaction: a reversal made outside the
// AllianceService still counts in the partner's settlement.
func TestAdminReversesAPartnerTransaction(t *testing.T) {
	w := newAllianceWorld(t)
	a, err := w.alliance(w.alphaKey).AwardStay(w.ctx, award("stay-a", w.m1, "A-1", "ALPHA-1", "2026-11-10", "500.00"))
	id := mustTxn(t, a, err).GetTransactionId()
	// Reversed through BookingService by an admin: it still counts in
	// ALPHA's settlement.
	if _, err := w.clients(w.adminKey).booking.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{
		IdempotencyKey: "admin-rev", TransactionId: id, Reason: "fraud"})); err != nil {
		t.Fatal(err)
	}
	s := w.settlement(t, w.alphaKey)
	if s.GetPointsIssued() != 0 || s.GetOwedToProgramme().GetAmount() != "0.00" || len(s.GetLines()) != 1 {
		t.Errorf("after the admin's reversal: %v", s)
	}
	w.verify(t)
}
