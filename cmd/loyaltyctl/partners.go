package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// The partners commands manage the alliance's partners through
// AdminService (an admin key), not the database: the service validates
// and records who did what, like any other call.
var partnerSubcommands = []subcommand{
	{name: "create", summary: "create a partner with its first rates and ledger accounts", run: partnersCreate},
	{name: "suspend", summary: "suspend a partner: its keys' writes are refused at once", run: partnersSuspend},
	{name: "reinstate", summary: "lift a partner's suspension", run: partnersReinstate},
	{name: "set-rates", summary: "add a rate version from -effective-at (not in the past)", run: partnersSetRates},
	{name: "add-property", summary: "register a hotel of a partner", run: partnersAddProperty},
	{name: "get", summary: "a partner with every rate version, as JSON", run: partnersGet},
	{name: "list", summary: "every partner, as JSON", run: partnersList},
}

// callTimeout bounds one call to the service.
const callTimeout = 30 * time.Second

// apiFlags are the flags every partners subcommand has: where the service
// is, the admin key, and the request's idempotency key.
type apiFlags struct {
	url, key, idempotencyKey *string
}

func addAPIFlags(fs *flag.FlagSet, writes bool) apiFlags {
	f := apiFlags{
		url: fs.String("url", "", "the service's URL (env LOYALTY_URL), e.g. http://127.0.0.1:8080"),
		key: fs.String("key", "", "an admin API key (env LOYALTY_KEY)"),
	}
	if writes {
		f.idempotencyKey = fs.String("idempotency-key", "",
			"the request's idempotency key (default: a new random one); repeat a failed command with the same key to retry it safely")
	}
	return f
}

// client is the admin client for the flags, with the environment's
// defaults filled in.
func (f apiFlags) client(e env) (loyaltyv1connect.AdminServiceClient, error) {
	url, key := *f.url, *f.key
	if url == "" {
		url = e.getenv("LOYALTY_URL")
	}
	if key == "" {
		key = e.getenv("LOYALTY_KEY")
	}
	if url == "" || key == "" {
		return nil, fmt.Errorf("-url and -key (or LOYALTY_URL and LOYALTY_KEY) are required")
	}
	if f.idempotencyKey != nil && *f.idempotencyKey == "" {
		*f.idempotencyKey = uuid.NewString()
	}
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	})
	// The Connect protocol over HTTP/1.1 or 2, whatever the URL offers.
	return loyaltyv1connect.NewAdminServiceClient(&http.Client{}, strings.TrimRight(url, "/"), connect.WithInterceptors(auth)), nil
}

// rateFlags are a rate version's flags.
type rateFlags struct {
	issue, reimburse, perUnit, tiers, effectiveAt *string
}

func addRateFlags(fs *flag.FlagSet) rateFlags {
	return rateFlags{
		issue:       fs.String("issue-rate", "", "money the partner owes per point it awards, a decimal (required), e.g. 0.0085"),
		reimburse:   fs.String("reimbursement-rate", "", "money the programme owes per point redeemed at the partner's hotels (required)"),
		perUnit:     fs.String("points-per-unit", "1", "the rate card: points per unit of room charge"),
		tiers:       fs.String("tier-multipliers", "regular=1,silver=1,gold=1.2,platinum=1.5", "the rate card: each tier's multiplier"),
		effectiveAt: fs.String("effective-at", "", "when the rates take effect: "+dateHelp+" (the zone of the programme in force now)"),
	}
}

// check refuses a malformed -effective-at before any call.
func (r rateFlags) check() error {
	if *r.effectiveAt == "" {
		return nil
	}
	_, err := parseTime("effective-at", *r.effectiveAt, func(time.Time) (*time.Location, error) { return time.UTC, nil })
	return err
}

// rates is the rate version the flags give; c tells a plain date's time zone.
func (r rateFlags) rates(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (*loyaltyv1.PartnerRates, error) {
	out := &loyaltyv1.PartnerRates{IssueRate: *r.issue, ReimbursementRate: *r.reimburse,
		RateCard: &loyaltyv1.RateCard{PointsPerCurrencyUnit: *r.perUnit, TierMultiplier: map[string]string{}}}
	for _, pair := range strings.Split(*r.tiers, ",") {
		tier, m, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			return nil, fmt.Errorf("-tier-multipliers: %q is not tier=multiplier", pair)
		}
		out.RateCard.TierMultiplier[tier] = m
	}
	if *r.effectiveAt != "" {
		t, err := parseTime("effective-at", *r.effectiveAt, func(time.Time) (*time.Location, error) { return serviceZone(ctx, c) })
		if err != nil {
			return nil, err
		}
		out.EffectiveAt = timestamppb.New(t)
	}
	return out, nil
}

// serviceZone is the time zone of the programme in force now, as the
// service tells it (AdminService.GetProgramme).
func serviceZone(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (*time.Location, error) {
	res, err := c.GetProgramme(ctx, connect.NewRequest(&loyaltyv1.GetProgrammeRequest{}))
	if err != nil {
		return nil, err
	}
	var definition struct {
		TimeZone string `json:"time_zone"`
	}
	if err := json.Unmarshal([]byte(res.Msg.GetDefinitionJson()), &definition); err != nil || definition.TimeZone == "" {
		return nil, fmt.Errorf("programme version %d names no time zone (%v)", res.Msg.GetVersion(), err)
	}
	return time.LoadLocation(definition.TimeZone)
}

// both is two checks, one after the other.
func both(a, b func() error) func() error {
	return func() error {
		if err := a(); err != nil {
			return err
		}
		return b()
	}
}

// adminCall parses the flags, calls the service and prints the answer as
// JSON: 0 done, 1 refused or failed, 2 usage.
func adminCall(e env, name string, fs *flag.FlagSet, args []string, api apiFlags, check func() error,
	call func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error)) int {
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	if err := check(); err != nil {
		return usageError(e, name, err)
	}
	c, err := api.client(e)
	if err != nil {
		return usageError(e, name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := call(ctx, c)
	if err != nil {
		fmt.Fprintf(e.stderr, "loyaltyctl %s: %v\n", name, err)
		// Only when a retry may help: the outcome is unknown, or the
		// service could not take the call then.
		if code := connect.CodeOf(err); api.idempotencyKey != nil && (code == connect.CodeUnavailable || code == connect.CodeDeadlineExceeded ||
			code == connect.CodeAborted || code == connect.CodeUnknown || code == connect.CodeCanceled) {
			fmt.Fprintf(e.stderr, "retry with -idempotency-key %s\n", *api.idempotencyKey)
		}
		return exitError
	}
	out, err := protojson.MarshalOptions{Multiline: true}.Marshal(res)
	if err != nil {
		return failed(e, name, err)
	}
	fmt.Fprintf(e.stdout, "%s\n", out)
	return exitOK
}

// required checks, once the flags are parsed, that each is given.
func required(flags map[string]*string) func() error {
	return func() error {
		for name, v := range flags {
			if *v == "" {
				return fmt.Errorf("-%s is required", name)
			}
		}
		return nil
	}
}

func partnersCreate(e env, args []string) int {
	const name = "partners create"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	id := fs.String("id", "", "the partner's id (required): 1-32 of A-Z a-z 0-9 . _ -")
	pname := fs.String("name", "", "the partner's name (required)")
	currency := fs.String("currency", "CNY", "the settlement currency")
	rates := addRateFlags(fs)
	api := addAPIFlags(fs, true)
	return adminCall(e, name, fs, args, api, both(required(map[string]*string{"id": id, "name": pname, "issue-rate": rates.issue, "reimbursement-rate": rates.reimburse}), rates.check), func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
		r, err := rates.rates(ctx, c)
		if err != nil {
			return nil, err
		}
		res, err := c.CreatePartner(ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{IdempotencyKey: *api.idempotencyKey,
			PartnerId: *id, Name: *pname, SettlementCurrency: *currency, Rates: r}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	})
}

func partnersStatus(e env, args []string, name string, suspend bool) int {
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	id := fs.String("id", "", "the partner's id (required)")
	reason := fs.String("reason", "", "why, for the audit trail (required)")
	api := addAPIFlags(fs, true)
	return adminCall(e, name, fs, args, api, required(map[string]*string{"id": id, "reason": reason}),
		func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
			if suspend {
				res, err := c.SuspendPartner(ctx, connect.NewRequest(&loyaltyv1.SuspendPartnerRequest{IdempotencyKey: *api.idempotencyKey, PartnerId: *id, Reason: *reason}))
				if err != nil {
					return nil, err
				}
				return res.Msg, nil
			}
			res, err := c.ReinstatePartner(ctx, connect.NewRequest(&loyaltyv1.ReinstatePartnerRequest{IdempotencyKey: *api.idempotencyKey, PartnerId: *id, Reason: *reason}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		})
}

func partnersSuspend(e env, args []string) int {
	return partnersStatus(e, args, "partners suspend", true)
}

func partnersReinstate(e env, args []string) int {
	return partnersStatus(e, args, "partners reinstate", false)
}

func partnersSetRates(e env, args []string) int {
	const name = "partners set-rates"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	id := fs.String("id", "", "the partner's id (required)")
	rates := addRateFlags(fs)
	api := addAPIFlags(fs, true)
	return adminCall(e, name, fs, args, api, both(required(map[string]*string{"id": id, "issue-rate": rates.issue, "reimbursement-rate": rates.reimburse, "effective-at": rates.effectiveAt}), rates.check), func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
		r, err := rates.rates(ctx, c)
		if err != nil {
			return nil, err
		}
		res, err := c.SetPartnerRates(ctx, connect.NewRequest(&loyaltyv1.SetPartnerRatesRequest{IdempotencyKey: *api.idempotencyKey, PartnerId: *id, Rates: r}))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	})
}

func partnersAddProperty(e env, args []string) int {
	const name = "partners add-property"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	id := fs.String("id", "", "the partner's id (required)")
	property := fs.String("property", "", "the hotel's property id (required)")
	pname := fs.String("name", "", "the hotel's name (required)")
	zone := fs.String("time-zone", "", "the hotel's IANA time zone (default Asia/Shanghai)")
	api := addAPIFlags(fs, true)
	return adminCall(e, name, fs, args, api, required(map[string]*string{"id": id, "property": property, "name": pname}),
		func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
			res, err := c.PutProperty(ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{IdempotencyKey: *api.idempotencyKey,
				Property: &loyaltyv1.Property{PropertyId: *property, Name: *pname, TimeZone: *zone, PartnerId: *id}}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		})
}

func partnersGet(e env, args []string) int {
	const name = "partners get"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	id := fs.String("id", "", "the partner's id (required)")
	api := addAPIFlags(fs, false)
	return adminCall(e, name, fs, args, api, required(map[string]*string{"id": id}),
		func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
			res, err := c.GetPartner(ctx, connect.NewRequest(&loyaltyv1.GetPartnerRequest{PartnerId: *id}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		})
}

func partnersList(e env, args []string) int {
	const name = "partners list"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	api := addAPIFlags(fs, false)
	return adminCall(e, name, fs, args, api, func() error { return nil },
		func(ctx context.Context, c loyaltyv1connect.AdminServiceClient) (proto.Message, error) {
			res, err := c.ListPartners(ctx, connect.NewRequest(&loyaltyv1.ListPartnersRequest{}))
			if err != nil {
				return nil, err
			}
			return res.Msg, nil
		})
}
