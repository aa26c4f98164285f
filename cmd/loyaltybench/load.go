package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

const (
	targetService  = "service"
	targetBaseline = "baseline"

	kindStay      = "stay"      // RecordStay
	kindRedeem    = "redeem"    // Redeem a bedtime milk
	kindGuarantee = "guarantee" // PlaceGuarantee then ReleaseGuarantee
	kindGet       = "get"       // GetMember
	kindReplay    = "replay"    // a write re-sent with its idempotency key
	kindWrite     = "write"     // aggregate of first-time stays, redemptions and guarantees
	kindTransfer  = "transfer"  // baseline

	modeSpread = "spread"
	modeHot    = "hot"

	// spreadProperties is how many hotels spread mode books stays at.
	spreadProperties = 50
	// ringSize is how many recent acknowledged writes a client keeps to
	// re-send as duplicates.
	ringSize = 64
	// maxExamples bounds the error and mismatch messages a report keeps.
	maxExamples = 8
	// enrolParallel is how many enrolments are in flight at once: half of
	// loyaltyd's pool (16 connections), so that the setup leaves
	// connections to other callers of a shared server.
	enrolParallel = 8
	// warmUpBatch and warmUpParallel are the warm-up's RecordStays calls:
	// stays per call and calls in flight, as stayimport sends them (about
	// 1,300 to 1,700 stays/s here, against 300 to 500 one call at a time).
	warmUpBatch    = 500
	warmUpParallel = 2
	// warmUpAttempts bounds the calls of one warm-up batch whose stays
	// were not recorded for now (unavailable, aborted, deadline exceeded).
	warmUpAttempts = 5
)

var opKinds = []string{kindStay, kindRedeem, kindGuarantee, kindGet}

// mix is the weight of each operation kind, in opKinds order.
type mix struct {
	weights [4]int
	total   int
}

const defaultMix = "stay=70,redeem=10,guarantee=10,get=10"

func parseMix(s string) (mix, error) {
	var m mix
	for part := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return mix{}, fmt.Errorf("-mix: %q is not name=weight", part)
		}
		w, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || w < 0 {
			return mix{}, fmt.Errorf("-mix: weight of %q must be a whole number >= 0", name)
		}
		i := -1
		for j, k := range opKinds {
			if k == strings.TrimSpace(name) {
				i = j
			}
		}
		if i < 0 {
			return mix{}, fmt.Errorf("-mix: unknown operation %q (stay, redeem, guarantee, get)", name)
		}
		m.weights[i] = w
	}
	for _, w := range m.weights {
		m.total += w
	}
	if m.total == 0 {
		return mix{}, errors.New("-mix: all weights are zero")
	}
	return m, nil
}

func (m mix) pick(r *rand.Rand) string {
	n := r.IntN(m.total)
	for i, w := range m.weights {
		if n < w {
			return opKinds[i]
		}
		n -= w
	}
	return opKinds[len(opKinds)-1]
}

func (m mix) String() string {
	parts := make([]string, len(opKinds))
	for i, k := range opKinds {
		parts[i] = fmt.Sprintf("%s=%d", k, m.weights[i])
	}
	return strings.Join(parts, ",")
}

// maxRate bounds -rate (operations per second).
const maxRate = 100_000

// runConfig is one load run against the service.
type runConfig struct {
	URL      string
	Key      string // admin API key
	Clients  int
	Duration time.Duration // 0: until Count
	Count    int64         // operations; 0: until Duration
	Members  int
	// MemberNumbers, when set, are members enrolled before the run, each
	// with a first stay already (steadyMembers): the setup enrols none,
	// and the run's stays are a running programme's, not first stays.
	// Members is then ignored.
	MemberNumbers []string
	Mix           mix
	Dist          string // "uniform" or "zipf"
	Duplicates    float64
	Mode          string // "spread" or "hot"
	Seed          uint64
	// Rate paces the operations: at most this many start per second, all
	// clients together (0: each client as fast as the service answers).
	// Latency then shows the service below its peak.
	Rate float64

	MetricsURL  string // optional: scrape the retries and group-commit counters before and after
	ServerPID   int    // optional: read the server's VmHWM at the end, and its CPU time
	PostgresPID int    // optional: the database server's postmaster, for its CPU time
	// WALPosition, optional, reads the database's write-ahead log position
	// in bytes, for the WAL written per committed write.
	WALPosition  func(context.Context) (int64, error)
	ResetPeakRSS bool // reset the server's VmHWM after setup, so the peak is the load's
	// AfterSetup, optional, runs between the setup and the measured load
	// (events-ab: lets the event pipeline catch up with the setup's
	// enrolments, so that a phase carries the events of its own writes).
	AfterSetup func(context.Context) error
	TrackAcks  bool // keep every acknowledged stay and redemption in the report

	RequestTimeout time.Duration // per request; default 30 s
	Progress       io.Writer     // setup progress; nil: none
	// Now is the calendar the stays, the guarantees and the partner's
	// rates are dated by: the server's; nil means time.Now.
	Now func() time.Time
}

func (cfg *runConfig) check() error {
	switch {
	case cfg.URL == "":
		return errors.New("-url is required (or LOYALTY_URL)")
	case cfg.Key == "":
		return errors.New("-key is required (or LOYALTY_KEY): an admin API key")
	case cfg.Clients < 1:
		return errors.New("-clients must be at least 1")
	case cfg.Members < 1 && len(cfg.MemberNumbers) == 0:
		return errors.New("-members must be at least 1")
	case cfg.Duration <= 0 && cfg.Count <= 0:
		return errors.New("give -duration or -count")
	case cfg.Duplicates < 0 || cfg.Duplicates > 1:
		return errors.New("-duplicates is a share between 0 and 1")
	case cfg.Dist != "uniform" && cfg.Dist != "zipf":
		return fmt.Errorf("-members-dist %q: uniform or zipf", cfg.Dist)
	case cfg.Mode != modeSpread && cfg.Mode != modeHot:
		return fmt.Errorf("-mode %q: spread or hot", cfg.Mode)
	case cfg.Mix.total == 0:
		return errors.New("-mix: no operations")
	case cfg.Rate < 0 || cfg.Rate > maxRate:
		return fmt.Errorf("-rate %g: between 0 (unpaced) and %d operations/s", cfg.Rate, maxRate)
	}
	return nil
}

// api is the generated clients, authenticated with the admin key.
type api struct {
	members loyaltyv1connect.MemberServiceClient
	booking loyaltyv1connect.BookingServiceClient
	admin   loyaltyv1connect.AdminServiceClient
}

func newAPI(hc *http.Client, url, key string) api {
	auth := bearerAuth(key)
	return api{
		members: loyaltyv1connect.NewMemberServiceClient(hc, url, auth),
		booking: loyaltyv1connect.NewBookingServiceClient(hc, url, auth),
		admin:   loyaltyv1connect.NewAdminServiceClient(hc, url, auth),
	}
}

// bearerAuth sends key as the bearer credential of every call.
func bearerAuth(key string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	}))
}

// h2cClients returns a factory of HTTP clients that speak HTTP/2 without
// TLS (prior knowledge) to http:// URLs, and HTTP/2 over TLS to https://
// ones. Each client has its own transport, so each load client has its
// own connection, as separate callers would.
func h2cClients(url string) func() *http.Client {
	return func() *http.Client {
		t := &http.Transport{}
		t.Protocols = new(http.Protocols)
		if strings.HasPrefix(url, "https://") {
			t.Protocols.SetHTTP2(true)
		} else {
			t.Protocols.SetUnencryptedHTTP2(true)
		}
		return &http.Client{Transport: t}
	}
}

// runLoad enrols the members and creates the properties, then drives the
// service from cfg.Clients goroutines until cfg.Duration has passed or
// cfg.Count operations have run. httpClient is called once for the setup
// and once per load client.
func runLoad(ctx context.Context, cfg runConfig, httpClient func() *http.Client) (*report, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	rep := &report{Target: targetService, Mode: cfg.Mode, Clients: cfg.Clients, Retries: -1, Rate: cfg.Rate,
		KeyPrefix: fmt.Sprintf("lb-%08x-", rand.Uint32()), FirstStay: len(cfg.MemberNumbers) == 0}

	setupStart := time.Now()
	var httpClients []*http.Client
	newClient := func() *http.Client {
		hc := httpClient()
		httpClients = append(httpClients, hc)
		return hc
	}
	defer func() {
		for _, hc := range httpClients {
			hc.CloseIdleConnections()
		}
	}()
	setupAPI := newAPI(newClient(), cfg.URL, cfg.Key)
	properties, err := putProperties(ctx, setupAPI, cfg.Mode, rep.KeyPrefix)
	if err != nil {
		return nil, err
	}
	members := cfg.MemberNumbers
	if len(members) == 0 {
		if members, err = enrolMembers(ctx, setupAPI, cfg.Members, enrolParallel, rep.KeyPrefix, cfg.RequestTimeout); err != nil {
			return nil, err
		}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	stays := newStayDates(now())
	var partner *benchPartner
	if cfg.Mode == modeHot {
		p, err := setUpPartner(ctx, setupAPI, rep.KeyPrefix, stays.first)
		if err != nil {
			return nil, err
		}
		partner = &p
	}
	rep.Setup = time.Since(setupStart)
	if rep.FirstStay {
		fmt.Fprintf(progress, "setup: %d properties, %d members enrolled (no stay yet: most stays are first stays) in %s\n",
			len(properties), len(members), rep.Setup.Round(time.Millisecond))
	} else {
		fmt.Fprintf(progress, "setup: %d properties in %s; %d members enrolled before, each with a first stay (steady state)\n",
			len(properties), rep.Setup.Round(time.Millisecond), len(members))
	}
	if cfg.AfterSetup != nil {
		if err := cfg.AfterSetup(ctx); err != nil {
			return nil, fmt.Errorf("after the setup: %w", err)
		}
	}

	rssReset := false
	if cfg.ServerPID > 0 && cfg.ResetPeakRSS {
		if err := resetPeakRSS(cfg.ServerPID); err != nil {
			fmt.Fprintf(progress, "note: could not reset the server's peak RSS (%v): it includes the setup\n", err)
		} else {
			rssReset = true
		}
	}
	var countersBefore map[string]float64
	if cfg.MetricsURL != "" {
		if countersBefore, err = scrapeCounters(ctx, cfg.MetricsURL, metricRetries, metricGroups, metricGroupRequests); err != nil {
			fmt.Fprintf(progress, "note: no retries or group sizes from %s: %v\n", cfg.MetricsURL, err)
		}
	}

	workers := make([]*worker, cfg.Clients)
	perWorkerSamples := maxSamples/cfg.Clients + 1
	for i := range workers {
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1))
		hc := newClient()
		w := &worker{id: i, cfg: &cfg, api: newAPI(hc, cfg.URL, cfg.Key), rng: r, partner: partner,
			members: members, properties: properties, prefix: rep.KeyPrefix, stays: stays,
			lat: map[string]*latencies{}, refused: map[string]int64{}, errs: map[string]map[string]int64{}}
		if cfg.Dist == "zipf" {
			w.zipf = rand.NewZipf(r, 1.1, 1, uint64(len(members)-1))
		}
		if partner != nil {
			w.alliance = partner.allianceClient(hc, cfg.URL)
		}
		for _, k := range []string{kindWrite, kindStay, kindRedeem, kindGuarantee, kindGet, kindReplay} {
			w.lat[k] = &latencies{limit: perWorkerSamples}
		}
		workers[i] = w
	}

	var started atomic.Int64
	var wg sync.WaitGroup
	meter := cpuMeter{postgresPID: cfg.PostgresPID, serverPID: cfg.ServerPID}
	cpuBefore, cpuErr := meter.read()
	walBefore, walErr := int64(0), errors.New("no WAL position")
	if cfg.WALPosition != nil {
		walBefore, walErr = cfg.WALPosition(ctx)
	}
	start := time.Now()
	var end time.Time
	if cfg.Duration > 0 {
		end = start.Add(cfg.Duration)
	}
	for _, w := range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				n := started.Add(1)
				if cfg.Count > 0 && n > cfg.Count {
					return
				}
				if cfg.Rate > 0 {
					// Operation n starts at its slot of the schedule, not
					// earlier: the clients together keep to the rate.
					slot := start.Add(time.Duration(float64(n-1) / cfg.Rate * float64(time.Second)))
					if !end.IsZero() && !slot.Before(end) {
						return
					}
					if wait := time.Until(slot); wait > 0 {
						select {
						case <-time.After(wait):
						case <-ctx.Done():
							return
						}
					}
				}
				if !end.IsZero() && !time.Now().Before(end) {
					return
				}
				w.step(ctx)
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	rep.measureCPU(meter, cpuBefore, cpuErr, progress)
	walAfter := int64(0)
	if walErr == nil {
		walAfter, walErr = cfg.WALPosition(ctx)
	}

	if countersBefore != nil {
		if after, err := scrapeCounters(ctx, cfg.MetricsURL, metricRetries, metricGroups, metricGroupRequests); err == nil {
			rep.Retries = int64(after[metricRetries] - countersBefore[metricRetries])
			rep.Groups = int64(after[metricGroups] - countersBefore[metricGroups])
			rep.GroupRequests = int64(after[metricGroupRequests] - countersBefore[metricGroupRequests])
		} else {
			fmt.Fprintf(progress, "note: no retries or group sizes from %s: %v\n", cfg.MetricsURL, err)
		}
	}
	if cfg.ServerPID > 0 {
		if rss, err := peakRSS(cfg.ServerPID); err == nil {
			rep.PeakRSS = rss
			rep.RSSSource = fmt.Sprintf("server pid %d, VmHWM during the load", cfg.ServerPID)
			if !rssReset {
				rep.RSSSource = fmt.Sprintf("server pid %d, VmHWM since it started", cfg.ServerPID)
			}
		} else {
			fmt.Fprintf(progress, "note: no peak RSS for pid %d: %v\n", cfg.ServerPID, err)
		}
	}

	// Merge the workers.
	for _, name := range []string{kindWrite, kindStay, kindRedeem, kindGuarantee, kindGet, kindReplay} {
		k := &kindStats{Name: name, Errors: map[string]int64{}}
		for _, w := range workers {
			k.merge(w.lat[name])
			k.Refused += w.refused[name]
			for c, n := range w.errs[name] {
				k.Errors[c] += n
			}
		}
		k.finish()
		rep.Kinds = append(rep.Kinds, k)
	}
	for _, w := range workers {
		rep.Ops += w.ops
		rep.Committed += w.committed
		rep.LedgerTx += w.ledgerTx
		rep.Replays += w.replays
		rep.Mismatches += w.mismatches
		rep.BalanceDrifts += w.drifts
		rep.Acked = append(rep.Acked, w.acked...)
		for _, e := range w.examples {
			if len(rep.Examples) < maxExamples {
				rep.Examples = append(rep.Examples, e)
			}
		}
	}
	if walErr == nil && rep.Committed > 0 {
		fmt.Fprintf(progress, "WAL written: %.1f MiB, %.1f KiB per committed write\n",
			float64(walAfter-walBefore)/(1<<20), float64(walAfter-walBefore)/1024/float64(rep.Committed))
	}
	return rep, nil
}

// putProperties registers the hotels the mode books at: BENCH-1 in hot
// mode, BENCH-1..50 in spread mode.
func putProperties(ctx context.Context, a api, mode, prefix string) ([]string, error) {
	n := 1
	if mode == modeSpread {
		n = spreadProperties
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("BENCH-%d", i+1)
		_, err := a.admin.PutProperty(ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{
			IdempotencyKey: prefix + "property-" + ids[i],
			Property:       &loyaltyv1.Property{PropertyId: ids[i], Name: fmt.Sprintf("Bench Hotel %d", i+1), TimeZone: "Asia/Shanghai"},
		}))
		if err != nil {
			return nil, fmt.Errorf("put property %s: %w", ids[i], err)
		}
	}
	return ids, nil
}

// enrolMembers enrols n members from parallel goroutines and returns their
// member numbers.
func enrolMembers(ctx context.Context, a api, n, parallel int, prefix string, timeout time.Duration) ([]string, error) {
	numbers := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range min(parallel, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, timeout)
				res, err := a.members.EnrollMember(rctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
					IdempotencyKey: fmt.Sprintf("%senrol-%d", prefix, i),
					FullName:       fmt.Sprintf("Bench Member %d", i),
					Email:          fmt.Sprintf("member%d@bench.example", i),
					Channel:        loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP,
				}))
				rcancel()
				if err == nil && res.Msg.GetMember().GetMemberNumber() == "" {
					err = errors.New("no member number in the answer")
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("enrol member %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				numbers[i] = res.Msg.GetMember().GetMemberNumber()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return numbers, nil
}

// steadyMembers enrols n members and records one past stay for each,
// through RecordStays, so that a phase that uses them (runConfig.
// MemberNumbers) measures the stays of a running programme: a member's
// first stay also claims it (first_stay_claims) and earns the first-stay
// bonus, which a phase of fresh members pays on most of its stays. The
// stays are drawn as the load draws its own: 1 to 3 nights at 150.00 to
// 800.00 CNY at one of the spread hotels, in the past year.
func steadyMembers(ctx context.Context, a api, n, parallel int, prefix string, now time.Time, seed uint64, timeout time.Duration) ([]string, error) {
	properties, err := putProperties(ctx, a, modeSpread, prefix)
	if err != nil {
		return nil, err
	}
	members, err := enrolMembers(ctx, a, n, parallel, prefix, timeout)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	dates := newStayDates(now)
	stays := make([]*loyaltyv1.RecordStayRequest, len(members))
	for i, number := range members {
		nights := 1 + rng.IntN(3)
		arrival := dates.first.AddDate(0, 0, rng.IntN(dates.days))
		req := &loyaltyv1.RecordStayRequest{
			IdempotencyKey: fmt.Sprintf("%swarm-%d", prefix, i),
			MemberNumber:   number,
			PropertyId:     properties[rng.IntN(len(properties))],
			StayId:         fmt.Sprintf("W%s%d", prefix, i),
			ArrivalDate:    arrival.Format(time.DateOnly),
			DepartureDate:  arrival.AddDate(0, 0, nights).Format(time.DateOnly),
			Channel:        spreadChannels[rng.IntN(len(spreadChannels))],
		}
		for range nights {
			cents := 15000 + rng.IntN(65001)
			req.Nights = append(req.Nights, &loyaltyv1.StayNight{
				RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100)}})
		}
		stays[i] = req
	}
	if err := recordWarmUp(ctx, a, stays, timeout); err != nil {
		return nil, err
	}
	return members, nil
}

// recordWarmUp records the stays in RecordStays calls of warmUpBatch,
// warmUpParallel in flight, and fails unless every one is recorded. A
// call whose stays were not recorded for now is sent again as it was (the
// keys make that safe), warmUpAttempts times at most.
func recordWarmUp(ctx context.Context, a api, stays []*loyaltyv1.RecordStayRequest, timeout time.Duration) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := (len(stays) + warmUpBatch - 1) / warmUpBatch
	for range min(warmUpParallel, batches) {
		wg.Go(func() {
			for ctx.Err() == nil {
				b := int(next.Add(1) - 1)
				if b >= batches {
					return
				}
				batch := stays[b*warmUpBatch : min((b+1)*warmUpBatch, len(stays))]
				if err := recordWarmUpBatch(ctx, a, batch, timeout); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func recordWarmUpBatch(ctx context.Context, a api, batch []*loyaltyv1.RecordStayRequest, timeout time.Duration) error {
	for attempt := 1; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		res, err := a.booking.RecordStays(rctx, connect.NewRequest(&loyaltyv1.RecordStaysRequest{Stays: batch}))
		cancel()
		again := connect.CodeOf(err) == connect.CodeUnavailable
		if err != nil && !again {
			return fmt.Errorf("warm-up: record %d stays: %w", len(batch), err)
		}
		if err == nil {
			if len(res.Msg.GetResults()) != len(batch) {
				return fmt.Errorf("warm-up: %d results for %d stays", len(res.Msg.GetResults()), len(batch))
			}
			// Results come in the request's order, one per stay.
			for i, r := range res.Msg.GetResults() {
				if r.GetStatus() == loyaltyv1.StayRowStatus_STAY_ROW_STATUS_RECORDED {
					continue
				}
				switch code := r.GetError().GetCode(); code {
				case "unavailable", "aborted", "deadline_exceeded":
					again = true
				default:
					return fmt.Errorf("warm-up: stay %s of member %s: %s (%s: %s)", batch[i].GetStayId(),
						batch[i].GetMemberNumber(), r.GetStatus(), code, r.GetError().GetMessage())
				}
			}
			if !again {
				return nil
			}
		}
		if attempt == warmUpAttempts {
			return fmt.Errorf("warm-up: %d stays not recorded after %d calls (last: %v)", len(batch), attempt, err)
		}
		select {
		case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stayDates are the arrival dates stays are drawn from: the year up to
// four days ago, so that every stay, up to three nights, is over, and none
// is old enough for its points to have expired.
type stayDates struct {
	first time.Time
	days  int
	today time.Time
}

func newStayDates(now time.Time) stayDates {
	utc := now.UTC()
	today := time.Date(utc.Year(), utc.Month(), utc.Day(), 0, 0, 0, 0, time.UTC)
	last := today.AddDate(0, 0, -4)
	first := last.AddDate(-1, 0, 0)
	return stayDates{first: first, days: int(last.Sub(first).Hours()/24) + 1, today: today}
}

var spreadChannels = []loyaltyv1.BookingChannel{
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_SMS,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_CALL_CENTRE,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_TRAVEL_AGENCY,
}

// replayable is an acknowledged write that can be sent again.
type replayable struct {
	kind  string
	send  func(ctx context.Context) (proto.Message, error)
	first proto.Message
}

// worker is one load client. Only its goroutine touches it.
type worker struct {
	id         int
	cfg        *runConfig
	api        api
	rng        *rand.Rand
	zipf       *rand.Zipf
	members    []string
	properties []string
	prefix     string
	stays      stayDates
	seq        int64
	// partner and alliance: hot mode's partner, and its client.
	partner  *benchPartner
	alliance loyaltyv1connect.AllianceServiceClient

	lat     map[string]*latencies
	refused map[string]int64
	errs    map[string]map[string]int64

	ring     []replayable
	ringNext int

	ops, committed, ledgerTx    int64
	replays, mismatches, drifts int64
	acked                       []ack
	examples                    []string
}

func (w *worker) member() string {
	number, _ := w.memberAndFamily()
	return number
}

// memberAndFamily picks a member and gives its family name too (member i
// was enrolled as "Bench Member i"), which partners ask for.
func (w *worker) memberAndFamily() (string, string) {
	var i int
	if w.zipf != nil {
		i = int(w.zipf.Uint64())
	} else {
		i = w.rng.IntN(len(w.members))
	}
	return w.members[i], strconv.Itoa(i)
}

func (w *worker) nextKey(kind string) string {
	w.seq++
	return fmt.Sprintf("%sc%d-%d-%s", w.prefix, w.id, w.seq, kind)
}

func (w *worker) property() string {
	if w.cfg.Mode == modeHot {
		return w.properties[0]
	}
	return w.properties[w.rng.IntN(len(w.properties))]
}

func (w *worker) channel() loyaltyv1.BookingChannel {
	if w.cfg.Mode == modeHot {
		return loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP
	}
	return spreadChannels[w.rng.IntN(len(spreadChannels))]
}

func (w *worker) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	// Requests in flight finish even when the run is interrupted.
	return context.WithTimeout(context.WithoutCancel(ctx), w.cfg.RequestTimeout)
}

func (w *worker) fail(kind string, err error) {
	code := connect.CodeOf(err).String()
	if w.errs[kind] == nil {
		w.errs[kind] = map[string]int64{}
	}
	w.errs[kind][code]++
	w.example(fmt.Sprintf("%s: %v", kind, err))
}

func (w *worker) example(s string) {
	if len(w.examples) < maxExamples {
		if len(s) > 600 {
			s = s[:600] + "..."
		}
		w.examples = append(w.examples, s)
	}
}

func (w *worker) remember(r replayable) {
	if len(w.ring) < ringSize {
		w.ring = append(w.ring, r)
		return
	}
	w.ring[w.ringNext] = r
	w.ringNext = (w.ringNext + 1) % ringSize
}

// step runs one operation.
func (w *worker) step(ctx context.Context) {
	w.ops++
	kind := w.cfg.Mix.pick(w.rng)
	if kind != kindGet && len(w.ring) > 0 && w.cfg.Duplicates > 0 && w.rng.Float64() < w.cfg.Duplicates {
		w.replay(ctx, w.ring[w.rng.IntN(len(w.ring))])
		return
	}
	t0 := time.Now()
	switch kind {
	case kindStay:
		w.stay(ctx)
	case kindRedeem:
		w.redeem(ctx)
	case kindGuarantee:
		w.guarantee(ctx)
	case kindGet:
		w.get(ctx)
	}
	d := time.Since(t0)
	w.lat[kind].add(d)
	if kind != kindGet {
		w.lat[kindWrite].add(d)
	}
}

func (w *worker) stay(ctx context.Context) {
	if w.partner != nil && w.rng.IntN(2) == 0 {
		w.partnerStay(ctx)
		return
	}
	nights := 1 + w.rng.IntN(3)
	arrival := w.stays.first.AddDate(0, 0, w.rng.IntN(w.stays.days))
	key := w.nextKey("stay")
	req := &loyaltyv1.RecordStayRequest{
		IdempotencyKey: key,
		MemberNumber:   w.member(),
		PropertyId:     w.property(),
		StayId:         fmt.Sprintf("S%s%d-%d", w.prefix[3:], w.id, w.seq),
		ArrivalDate:    arrival.Format(time.DateOnly),
		DepartureDate:  arrival.AddDate(0, 0, nights).Format(time.DateOnly),
		Channel:        w.channel(),
	}
	for range nights {
		cents := 15000 + w.rng.IntN(65001) // 150.00 to 800.00 CNY
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{
			RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100)}})
	}
	w.write(ctx, kindStay, key, func(ctx context.Context) (proto.Message, string, error) {
		res, err := w.api.booking.RecordStay(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, "", err
		}
		return res.Msg, res.Msg.GetTransaction().GetTransactionId(), nil
	})
}

func (w *worker) redeem(ctx context.Context) {
	if w.partner != nil && w.rng.IntN(2) == 0 {
		w.partnerRedeem(ctx)
		return
	}
	req := &loyaltyv1.RedeemRequest{
		IdempotencyKey: w.nextKey("redeem"),
		MemberNumber:   w.member(),
		Reward:         loyaltyv1.Reward_REWARD_BEDTIME_MILK,
		Quantity:       1,
		PropertyId:     w.property(),
	}
	w.write(ctx, kindRedeem, req.IdempotencyKey, func(ctx context.Context) (proto.Message, string, error) {
		res, err := w.api.booking.Redeem(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, "", err
		}
		return res.Msg, res.Msg.GetTransaction().GetTransactionId(), nil
	})
}

// write sends one stay or redemption (call returns the response and its
// transaction id) and books its outcome: a redemption refused for want of
// points is refused, not an error; an acknowledged write is counted, with
// its transaction when it posted one, and remembered for a replay.
func (w *worker) write(ctx context.Context, kind, key string, call func(context.Context) (proto.Message, string, error)) {
	send := func(ctx context.Context) (proto.Message, error) {
		msg, _, err := call(ctx)
		return msg, err
	}
	rctx, cancel := w.reqCtx(ctx)
	defer cancel()
	msg, id, err := call(rctx)
	if connect.CodeOf(err) == connect.CodeFailedPrecondition && kind == kindRedeem {
		w.refused[kind]++
		return
	}
	if err != nil {
		w.fail(kind, err)
		return
	}
	w.committed++
	if id != "" {
		w.ledgerTx++
		if w.cfg.TrackAcks {
			w.acked = append(w.acked, ack{Key: key, TransactionID: id})
		}
	}
	w.remember(replayable{kind: kind, send: send, first: msg})
}

// guarantee places a late-arrival guarantee for a coming stay and releases
// it: one operation, two writes.
func (w *worker) guarantee(ctx context.Context) {
	key := w.nextKey("place")
	stayID := fmt.Sprintf("G%s%d-%d", w.prefix[3:], w.id, w.seq)
	place := &loyaltyv1.PlaceGuaranteeRequest{
		IdempotencyKey: key,
		MemberNumber:   w.member(),
		PropertyId:     w.property(),
		StayId:         stayID,
		ArrivalDate:    w.stays.today.AddDate(0, 0, 2+w.rng.IntN(30)).Format(time.DateOnly),
		HoldUntil:      fmt.Sprintf("%02d:00", 19+w.rng.IntN(2)), // 500 or 1,000 points
	}
	sendPlace := func(ctx context.Context) (proto.Message, error) {
		res, err := w.api.booking.PlaceGuarantee(ctx, connect.NewRequest(place))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	rctx, cancel := w.reqCtx(ctx)
	defer cancel()
	msg, err := sendPlace(rctx)
	if connect.CodeOf(err) == connect.CodeFailedPrecondition {
		w.refused[kindGuarantee]++
		return
	}
	if err != nil {
		w.fail(kindGuarantee, err)
		return
	}
	w.committed++
	w.remember(replayable{kind: kindGuarantee, send: sendPlace, first: msg})

	reason := loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED
	if w.rng.IntN(4) == 0 {
		reason = loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_WITHDRAWN
	}
	release := &loyaltyv1.ReleaseGuaranteeRequest{
		IdempotencyKey: w.nextKey("release"),
		PropertyId:     place.PropertyId,
		StayId:         stayID,
		Reason:         reason,
	}
	sendRelease := func(ctx context.Context) (proto.Message, error) {
		res, err := w.api.booking.ReleaseGuarantee(ctx, connect.NewRequest(release))
		if err != nil {
			return nil, err
		}
		return res.Msg, nil
	}
	msg, err = sendRelease(rctx)
	if err != nil {
		w.fail(kindGuarantee, err)
		return
	}
	w.committed++
	w.remember(replayable{kind: kindGuarantee, send: sendRelease, first: msg})
}

func (w *worker) get(ctx context.Context) {
	rctx, cancel := w.reqCtx(ctx)
	defer cancel()
	if _, err := w.api.members.GetMember(rctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: w.member()})); err != nil {
		w.fail(kindGet, err)
	}
}

// replay re-sends an acknowledged write with its idempotency key: the
// answer must be the first answer.
func (w *worker) replay(ctx context.Context, r replayable) {
	w.replays++
	rctx, cancel := w.reqCtx(ctx)
	defer cancel()
	t0 := time.Now()
	got, err := r.send(rctx)
	w.lat[kindReplay].add(time.Since(t0))
	if err != nil {
		w.fail(kindReplay, fmt.Errorf("%s: %w", r.kind, err))
		return
	}
	if proto.Equal(got, r.first) {
		return
	}
	// The guarantee calls answer with the member's balance as it is when
	// they answer, on a replay too: a replay that differs from the first
	// answer only there is counted apart.
	if withoutBalance(got) != nil && proto.Equal(withoutBalance(got), withoutBalance(r.first)) {
		w.drifts++
		return
	}
	w.mismatches++
	w.example(fmt.Sprintf("replay mismatch (%s): first %s; replay %s", r.kind,
		prototext.MarshalOptions{}.Format(r.first), prototext.MarshalOptions{}.Format(got)))
}

// withoutBalance is a copy of a guarantee response without its balance;
// nil for other messages.
func withoutBalance(m proto.Message) proto.Message {
	switch v := m.(type) {
	case *loyaltyv1.PlaceGuaranteeResponse:
		c := proto.CloneOf(v)
		c.Balance = nil
		return c
	case *loyaltyv1.ReleaseGuaranteeResponse:
		c := proto.CloneOf(v)
		c.Balance = nil
		return c
	}
	return nil
}

// The server's counters a phase reports, read before and after it.
const (
	metricRetries       = "loyalty_db_transaction_retries_total"
	metricGroups        = "loyalty_ledger_groups_total"
	metricGroupRequests = "loyalty_ledger_group_requests_total"
)

// scrapeCounters reads the named unlabelled counters from a Prometheus
// text endpoint; each must be there.
func scrapeCounters(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, res.Status)
	}
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 || !slices.Contains(names, fields[0]) {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", url, fields[0], err)
		}
		out[fields[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("%s has no %s", url, name)
		}
	}
	return out, nil
}

// peakRSS is a process's peak resident set size (VmHWM) in MiB.
func peakRSS(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				kb, err := strconv.ParseFloat(fields[0], 64)
				if err != nil {
					return 0, err
				}
				return kb / 1024, nil
			}
		}
	}
	return 0, errors.New("no VmHWM line")
}

// resetPeakRSS resets a process's VmHWM to its current RSS (Linux 4.0+;
// writing 5 to clear_refs touches nothing else).
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
