package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/loyalty-ledger/loyalty/database"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/stayimport"
)

// importABConfig is what import-ab measures.
type importABConfig struct {
	bin                     string
	stays, members, singles int
	singleClients           []int
	batch, parallel         int
	dir                     string
	postgresPID             int // for the CPU meter
}

func importABCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loyaltybench import-ab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg importABConfig
	fs.StringVar(&cfg.bin, "loyaltyd", "bin/loyaltyd", "the loyaltyd binary to start")
	fs.IntVar(&cfg.stays, "stays", 100_000, "stays in the generated file the batch path imports (1 to 1,000,000)")
	fs.IntVar(&cfg.members, "members", 20_000, "members the stays are spread over (1 to 200,000)")
	fs.IntVar(&cfg.singles, "singles", 20_000, "stays recorded with single RecordStay calls, the first of the same kind of file (1 to -stays)")
	singleClients := fs.String("single-clients", "1,2,16", "concurrent single RecordStay callers, one measurement of -singles stays each: "+
		"one at a time, the import's calls in flight (-parallel), then a busy client's (each 1 to 256)")
	fs.IntVar(&cfg.batch, "batch", 500, "stays per RecordStays call of the import (1 to 1000)")
	fs.IntVar(&cfg.parallel, "parallel", 2, "RecordStays calls in flight (1 to 8)")
	fs.StringVar(&cfg.dir, "dir", "", "where to write the generated files (default: a temporary directory, removed after)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench import-ab -loyaltyd bin/loyaltyd [flags]

Starts a private PostgreSQL (fsync on) with two fresh databases and, on
each, loyaltyd. On the first it enrols -members members, writes a file of
-stays past stays (CSV, sorted by departure, as loyaltyctl import stays
reads it) and imports it through the batch path (package stayimport,
RecordStays, -parallel calls in flight); on the second it enrols as many
members and records -singles stays of the same kind of file with single
RecordStay calls, once per number of callers in -single-clients (by
default one at a time, as many calls in flight as the import, and 16).
Prints stays/s of each, the ratios and the CPU per stay (PostgreSQL +
loyaltyd + this process), and checks both ledgers (every stay recorded
once, ledger.Verify clean).

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	for _, f := range strings.Split(*singleClients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 256 || len(cfg.singleClients) == 4 {
			fmt.Fprintln(stderr, "loyaltybench import-ab: -single-clients is up to 4 numbers from 1 to 256, like 2,16")
			return 2
		}
		cfg.singleClients = append(cfg.singleClients, n)
	}
	switch {
	case cfg.stays < 1 || cfg.stays > 1_000_000, cfg.members < 1 || cfg.members > 200_000,
		cfg.singles < 1 || cfg.singles > cfg.stays,
		cfg.batch < 1 || cfg.batch > 1000, cfg.parallel < 1 || cfg.parallel > 8:
		fmt.Fprintln(stderr, "loyaltybench import-ab: a flag is out of its range (see -h)")
		return 2
	}
	if err := importAB(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loyaltybench import-ab: %v\n", err)
		return 1
	}
	return 0
}

// singleDatabase is the second database, where single calls record.
const singleDatabase = "loyalty_single"

func importAB(ctx context.Context, cfg importABConfig, stdout, stderr io.Writer) (err error) {
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "loyaltybench-import-"); err != nil {
			return err
		}
		defer os.RemoveAll(cfg.dir)
	}
	pg, batchURL, err := startBenchDatabase(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := pg.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", stopErr))
		}
	}()
	if err := createDatabase(ctx, pg.ConnString("postgres"), singleDatabase); err != nil {
		return err
	}
	singleURL := pg.ConnString(singleDatabase)
	cfg.postgresPID = pg.PID()
	fmt.Fprintf(stdout, "PostgreSQL %s started (fsync on), databases %q and %q\n", pg.Version(), benchDatabase, singleDatabase)

	var batch phaseResult
	err = importPhase(ctx, cfg, batchURL, cfg.stays, stdout, stderr, func(ctx context.Context, srv *server, file string) (int64, error) {
		var last time.Time
		meter := cpuMeter{postgresPID: cfg.postgresPID, serverPID: srv.pid()}
		cpuBefore, cpuErr := meter.read()
		started := time.Now()
		sum, err := stayimport.Run(ctx, stayimport.Options{
			Path: file, BaseURL: srv.url, APIKey: srv.key, HTTPClient: h2cClients(srv.url)(), BatchSize: cfg.batch, Parallel: cfg.parallel,
			API: stayimport.APIBooking,
			Progress: func(p stayimport.Progress) {
				if now := time.Now(); now.Sub(last) >= 10*time.Second {
					last = now
					fmt.Fprintf(stdout, "  import: %d of %d rows\n", p.Done, p.Total)
				}
			},
		})
		batch = phaseResult{stays: int64(sum.Recorded), elapsed: time.Since(started)}
		batch.measureCPU(meter, cpuBefore, cpuErr)
		if err != nil {
			return 0, err
		}
		if sum.Refused > 0 || sum.Recorded != cfg.stays {
			return 0, fmt.Errorf("the import recorded %d of %d stays, %d refused: %+v", sum.Recorded, cfg.stays, sum.Refused, sum.Refusals)
		}
		return int64(sum.Recorded), nil
	})
	if err != nil {
		return fmt.Errorf("batch path: %w", err)
	}
	// The single calls record the stays of one file in parts, one part per
	// number of callers, each timed alone.
	singles := make([]phaseResult, len(cfg.singleClients))
	err = importPhase(ctx, cfg, singleURL, cfg.singles*len(cfg.singleClients), stdout, stderr, func(ctx context.Context, srv *server, file string) (int64, error) {
		stays, err := readStayFile(file)
		if err != nil {
			return 0, err
		}
		var recorded int64
		meter := cpuMeter{postgresPID: cfg.postgresPID, serverPID: srv.pid()}
		for k, clients := range cfg.singleClients {
			cpuBefore, cpuErr := meter.read()
			started := time.Now()
			n, err := recordSingly(ctx, srv, stays[k*cfg.singles:(k+1)*cfg.singles], clients)
			singles[k] = phaseResult{stays: n, elapsed: time.Since(started)}
			singles[k].measureCPU(meter, cpuBefore, cpuErr)
			recorded += n
			if err != nil {
				return recorded, err
			}
		}
		return recorded, nil
	})
	if err != nil {
		return fmt.Errorf("single calls: %w", err)
	}
	fmt.Fprintf(stdout, "\n== importing past stays, %d members, fsync on ==\n", cfg.members)
	fmt.Fprintf(stdout, "%-52s %8d stays in %9s: %7.0f stays/s; CPU ms per stay %s\n", fmt.Sprintf("batch path (RecordStays of %d, %d calls in flight)", cfg.batch, cfg.parallel),
		batch.stays, batch.elapsed.Round(time.Millisecond), batch.perSecond(), batch.cpuText())
	for k, clients := range cfg.singleClients {
		fmt.Fprintf(stdout, "%-52s %8d stays in %9s: %7.0f stays/s; CPU ms per stay %s; batch/single %.2fx\n", fmt.Sprintf("single RecordStay calls, %d in flight", clients),
			singles[k].stays, singles[k].elapsed.Round(time.Millisecond), singles[k].perSecond(), singles[k].cpuText(), batch.perSecond()/singles[k].perSecond())
	}
	return nil
}

// phaseResult is one path's stays, time and CPU.
type phaseResult struct {
	stays   int64
	elapsed time.Duration
	cpu     cpuTimes // zero: not measured
}

// measureCPU records the CPU used since before (read by m).
func (p *phaseResult) measureCPU(m cpuMeter, before cpuTimes, beforeErr error) {
	after, err := m.read()
	if beforeErr == nil && err == nil {
		p.cpu = after.sub(before)
	}
}

// cpuText is the CPU per stay: PostgreSQL + loyaltyd + this process.
func (p phaseResult) cpuText() string {
	if p.cpu.total() == 0 || p.stays == 0 {
		return "n/a"
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(p.stays) }
	return fmt.Sprintf("%.2f + %.2f + %.2f = %.2f", per(p.cpu.Postgres), per(p.cpu.Server), per(p.cpu.Client), per(p.cpu.total()))
}

func (p phaseResult) perSecond() float64 { return float64(p.stays) / p.elapsed.Seconds() }

// importPhase starts loyaltyd on dbURL, enrols the members and creates the
// hotels, writes a file of n stays and runs record on it; then checks
// that the ledger holds exactly the file's stays and verifies it.
func importPhase(ctx context.Context, cfg importABConfig, dbURL string, n int, stdout, stderr io.Writer,
	record func(context.Context, *server, string) (int64, error)) error {
	srv, err := startServer(ctx, cfg.bin, dbURL, true, "", stderr)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := srv.stop(); stopErr != nil {
			fmt.Fprintf(stdout, "WARNING: loyaltyd did not stop cleanly: %v\n", stopErr)
		}
	}()
	a := newAPI(h2cClients(srv.url)(), srv.url, srv.key)
	properties, err := putProperties(ctx, a, modeSpread, "import-")
	if err != nil {
		return err
	}
	started := time.Now()
	members, err := enrolMembers(ctx, a, cfg.members, 16, "import-", time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d members enrolled in %s\n", len(members), time.Since(started).Round(time.Millisecond))
	file := filepath.Join(cfg.dir, fmt.Sprintf("stays-%d.csv", n))
	if err := writeStayFile(file, generateStays(n, members, properties, time.Now())); err != nil {
		return err
	}
	recorded, err := record(ctx, srv, file)
	if err != nil {
		return err
	}
	db, err := database.Open(ctx, dbURL, database.Options{MaxConns: 2})
	if err != nil {
		return err
	}
	defer db.Close()
	var stays int64
	if err := db.Pool.QueryRow(ctx, `SELECT COUNT(*) FROM booking_outcomes WHERE outcome = 'stayed'`).Scan(&stays); err != nil {
		return fmt.Errorf("count the stays recorded: %w", err)
	}
	if stays != int64(n) || recorded != int64(n) {
		return fmt.Errorf("%d stays acknowledged, %d bookings with a stay in the ledger; want %d", recorded, stays, n)
	}
	if bad, err := verifyLedger(ctx, dbURL); err != nil || len(bad) > 0 {
		return fmt.Errorf("ledger.Verify: %v %v", bad, err)
	}
	return nil
}

// fileStay is one row of a generated stay file.
type fileStay struct {
	property, stayID, member string
	arrival, departure       time.Time
	charges                  []string
	channel                  string
}

// stayColumns is the generated file's header, as stayimport reads it.
var stayColumns = []string{"property_id", "stay_id", "member_number", "arrival_date", "departure_date", "room_charges", "currency_code", "channel"}

// generateStays draws n stays of one to three nights over the members and
// hotels, sorted by departure over the 180 days up to two days before now
// (Shanghai dates, the hotels' zone): all over, none old enough to expire.
// The same n, members and hotels give the same stays.
func generateStays(n int, members, properties []string, now time.Time) []fileStay {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err) // the binary embeds no zone database only when built without time/tzdata; Go ships it
	}
	local := now.In(shanghai)
	lastDeparture := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -2)
	const days = 180
	rng := rand.New(rand.NewPCG(1, 2))
	channels := []string{"WEB", "APP", "FRONT_DESK", "CALL_CENTRE"}
	stays := make([]fileStay, n)
	for i := range stays {
		departure := lastDeparture.AddDate(0, 0, -days+days*i/n)
		nights := 1 + rng.IntN(3)
		charges := make([]string, nights)
		for j := range charges {
			charges[j] = strconv.Itoa(300+10*rng.IntN(60)) + ".00"
		}
		stays[i] = fileStay{
			property: properties[rng.IntN(len(properties))], stayID: fmt.Sprintf("IMP-%07d", i+1),
			member: members[rng.IntN(len(members))], arrival: departure.AddDate(0, 0, -nights), departure: departure,
			charges: charges, channel: channels[rng.IntN(len(channels))],
		}
	}
	return stays
}

func writeStayFile(path string, stays []fileStay) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(stayColumns)
	for _, s := range stays {
		_ = w.Write([]string{s.property, s.stayID, s.member, s.arrival.Format(time.DateOnly), s.departure.Format(time.DateOnly),
			strings.Join(s.charges, ";"), "CNY", s.channel})
	}
	w.Flush()
	return errors.Join(w.Error(), f.Close())
}

// readStayFile reads back a file writeStayFile wrote.
func readStayFile(path string) ([]fileStay, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, err
	}
	stays := make([]fileStay, 0, len(records))
	for _, r := range records[1:] {
		arrival, err1 := time.Parse(time.DateOnly, r[3])
		departure, err2 := time.Parse(time.DateOnly, r[4])
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		stays = append(stays, fileStay{property: r[0], stayID: r[1], member: r[2], arrival: arrival, departure: departure,
			charges: strings.Split(r[5], ";"), channel: r[7]})
	}
	return stays, nil
}

// singleAttempts bounds the tries of one single call that meets an
// unavailable service.
const singleAttempts = 8

// recordSingly records stays with one RecordStay call each, from
// clients goroutines, each with its own connection; a member's stays go
// through one goroutine, in the file's order, as the batch path keeps them.
func recordSingly(ctx context.Context, srv *server, stays []fileStay, clients int) (int64, error) {
	lanes := make([][]fileStay, clients)
	for _, s := range stays {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s.member))
		lane := int(h.Sum32() % uint32(clients))
		lanes[lane] = append(lanes[lane], s)
	}
	var recorded atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for _, lane := range lanes {
		hc := h2cClients(srv.url)()
		booking := newAPI(hc, srv.url, srv.key).booking
		wg.Go(func() {
			for _, s := range lane {
				if err := recordOne(ctx, booking, s); err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				recorded.Add(1)
			}
		})
	}
	wg.Wait()
	return recorded.Load(), firstErr
}

func recordOne(ctx context.Context, booking loyaltyv1connect.BookingServiceClient, s fileStay) error {
	req := &loyaltyv1.RecordStayRequest{IdempotencyKey: "single-" + s.stayID, MemberNumber: s.member, PropertyId: s.property, StayId: s.stayID,
		ArrivalDate: s.arrival.Format(time.DateOnly), DepartureDate: s.departure.Format(time.DateOnly),
		Channel: loyaltyv1.BookingChannel(loyaltyv1.BookingChannel_value["BOOKING_CHANNEL_"+s.channel])}
	for _, c := range s.charges {
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: c}})
	}
	var err error
	for attempt := range singleAttempts {
		_, err = booking.RecordStay(ctx, connect.NewRequest(req))
		if connect.CodeOf(err) != connect.CodeUnavailable {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("record stay %s: %w", s.stayID, err)
	}
	return nil
}
