package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

const (
	readmeBegin = "<!-- readme-curl:begin -->"
	readmeEnd   = "<!-- readme-curl:end -->"
	// startTimeout covers initdb, migrations and the first admin key.
	startTimeout = 45 * time.Second
	// stopTimeout is the longest a clean shutdown may take (the server's own
	// grace period for requests in flight is 30 s; the test's are short).
	stopTimeout = 30 * time.Second
)

// TestREADME builds loyaltyd, starts it on a fresh embedded PostgreSQL, runs
// the curl lines of README.md's "Try it" section with the key the server
// printed, checks the metrics, stops it with SIGTERM, and starts it again on
// the same data to check that the data and the key survive and that no new
// key is printed; the second run is stopped with a request in flight, which
// must still be answered.
func TestREADME(t *testing.T) {
	bash := requireTool(t, "bash")
	requireTool(t, "curl")
	script := readmeScript(t)
	bin := buildServer(t)
	dataDir := postgresDataDir(t)

	// First start: a new cluster, so a new admin key.
	srv := startServer(t, bin, dataDir)
	if want := "export LOYALTY_URL=" + srv.url; !hasLine(srv.stdout(), want) {
		t.Errorf("stdout lacks %q:\n%s", want, srv.stdout())
	}
	m := regexp.MustCompile(`(?m)^export LOYALTY_KEY=(lk_\S+)$`).FindStringSubmatch(srv.stdout())
	if m == nil {
		t.Fatalf("the first start printed no 'export LOYALTY_KEY=lk_...' line; stdout:\n%s", srv.stdout())
	}
	key := m[1]
	if !strings.Contains(srv.stdout(), "only this once") {
		t.Errorf("stdout does not say that the key is shown only once:\n%s", srv.stdout())
	}
	checkUnencryptedHTTP2(t, srv.url)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", script)
	cmd.Env = append(childEnv(), "LOYALTY_URL="+srv.url, "LOYALTY_KEY="+key)
	out, err := cmd.CombinedOutput()
	t.Logf("README curl lines:\n%s\noutput:\n%s", script, out)
	if err != nil {
		t.Fatalf("the README curl lines failed: %v", err)
	}
	got := string(out)
	m = regexp.MustCompile(`member number: ([0-9]{10})\n`).FindStringSubmatch(got)
	if m == nil {
		t.Fatalf("the README lines printed no 'member number: <10 digits>'")
	}
	member := m[1]
	// The stay is one night at 388.00 CNY booked on the app by a new
	// (REGULAR) member. The programme gives 1 point per CNY of room charge
	// (388 stay_points), 1.5x for a member's first stay (+194
	// first_stay_bonus) and the direct-booking bonus for app/web/SMS
	// bookings, 77 points for a regular member (not halved): 659 in all,
	// checked by hand against the running service. The first completed stay
	// raises the member to SILVER.
	if !strings.Contains(got, `"availablePointsDelta":"659"`) {
		t.Errorf(`the output lacks "availablePointsDelta":"659"`)
	}
	// The answers are compared as JSON: protojson adds random spaces after
	// commas on purpose, so their text differs from build to build.
	var stays []stayAnswer
	var members []memberAnswer
	for line := range strings.Lines(got) {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var stay stayAnswer
		var m memberAnswer
		switch {
		case strings.HasPrefix(line, `{"transaction":`) && json.Unmarshal([]byte(line), &stay) == nil:
			stays = append(stays, stay)
		case strings.HasPrefix(line, `{"member":`) && json.Unmarshal([]byte(line), &m) == nil:
			members = append(members, m)
		case strings.HasPrefix(line, `{"property":`):
			// PutProperty's answer: the hotel the stay is at.
		default:
			t.Errorf("unexpected JSON line in the output: %s", line)
		}
	}
	wantStay := stayAnswer{Tier: "TIER_SILVER"}
	wantStay.Transaction.MemberNumber = member
	wantStay.Transaction.AvailablePointsDelta = "659"
	wantStay.Transaction.BalanceAfter = balance{PostedPoints: "659", AvailablePoints: "659"}
	wantStay.Transaction.Breakdown = []breakdownLine{
		{Rule: "stay_points", Description: "1 night at 388.00 CNY, 1 point per CNY", Points: "388"},
		{Rule: "first_stay_bonus", Description: "first stay: each night's points before rounding × 1.5 (after the regular member multiplier), rounded down per night: 582 in all instead of 388", Points: "194"},
		{Rule: "direct_booking_bonus", Description: "booked directly (app): regular member bonus per stay, not halved", Points: "77"},
	}
	if len(stays) != 1 || !reflect.DeepEqual(stays[0], wantStay) {
		t.Errorf("RecordStay answers: got %+v, want one: %+v", stays, wantStay)
	}
	// GetMember, as GET and as POST: the member with the stay's points.
	var wantMember memberAnswer
	wantMember.Member.MemberNumber = member
	wantMember.Member.FullName = "Li Wei"
	wantMember.Member.Tier = "TIER_SILVER"
	wantMember.Member.Balance = balance{PostedPoints: "659", AvailablePoints: "659"}
	// EnrollMember's answer is captured by the script, not printed.
	if len(members) != 2 || !reflect.DeepEqual(members[0], wantMember) || !reflect.DeepEqual(members[1], wantMember) {
		t.Errorf("GetMember answers (GET and POST): got %+v, want two: %+v", members, wantMember)
	}

	// Metrics: the calls just made, by procedure and code, on the
	// operators' port; the public port shows none.
	if status, _ := httpStatus(t, srv.url+"/metrics"); status == http.StatusOK {
		t.Errorf("the public port serves /metrics")
	}
	metrics := httpGet(t, srv.metricsURL)
	for _, re := range []string{
		`(?m)^loyalty_rpc_requests_total\{code="ok",procedure="/loyalty.v1.MemberService/EnrollMember"\} 1$`,
		`(?m)^loyalty_rpc_requests_total\{code="ok",procedure="/loyalty.v1.BookingService/RecordStay"\} 1$`,
		`(?m)^loyalty_rpc_requests_total\{code="ok",procedure="/loyalty.v1.MemberService/GetMember"\} 2$`,
		`(?m)^loyalty_rpc_request_duration_seconds_count\{procedure="/loyalty.v1.BookingService/RecordStay"\} 1$`,
		`(?m)^loyalty_db_transaction_attempts_total [1-9][0-9]*$`,
		`(?m)^loyalty_db_transaction_retries_total [0-9]+$`,
		`(?m)^loyalty_db_ambiguous_commits_total 0$`,
		// The stay was written by the group commit.
		`(?m)^loyalty_ledger_groups_total [1-9][0-9]*$`,
		`(?m)^loyalty_ledger_group_requests_total [1-9][0-9]*$`,
		`(?m)^loyalty_db_pool_max_conns [1-9][0-9]*$`,
		`(?m)^loyalty_db_pool_total_conns [0-9]+$`,
		`(?m)^go_goroutines [0-9]+$`,
		`(?m)^process_open_fds [0-9]+$`,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics does not match %s", re)
		}
	}

	// The finance page is mounted beside the services: the admin key opens
	// it (Basic auth), nothing else does, and the banner says where it is.
	if !strings.Contains(srv.stdout(), srv.url+"/finance/") {
		t.Errorf("the banner does not give the finance page's URL %s/finance/:\n%s", srv.url, srv.stdout())
	}
	for _, tc := range []struct {
		key    string
		status int
	}{{key, http.StatusOK}, {"", http.StatusUnauthorized}} {
		status, ctype := getFinancePage(t, srv.url, tc.key)
		if status != tc.status || (status == http.StatusOK && ctype != "text/html; charset=utf-8") {
			t.Errorf("GET /finance/ with key %v: HTTP %d %s, want %d", tc.key != "", status, ctype, tc.status)
		}
	}

	// The Events section: its lines create an endpoint for its receiver,
	// built from the README and run here, which gets the goodwill event
	// the lines then write, signed. The goodwill is the member's from now.
	checkEventsExample(t, bash, srv, key, member)
	wantMember.Member.Balance = balance{PostedPoints: "759", AvailablePoints: "759"}

	// An event stream open at SIGTERM ends, cleanly, when the shutdown
	// begins (it would otherwise hold the server for its 30 s grace).
	stream := openEventStream(t, srv.url, key)
	srv.stop(t)
	for stream.Receive() {
	}
	if err := stream.Err(); err != nil {
		t.Errorf("an event stream open at SIGTERM ended with %v, want a clean end", err)
	}
	if strings.Contains(srv.stderr(), key) {
		t.Errorf("the admin key's secret is in the log")
	}

	// Second start on the same data: no new key; the old one works and
	// the member still has the stay's points.
	srv = startServer(t, bin, dataDir)
	if strings.Contains(srv.stdout(), "LOYALTY_KEY=") {
		t.Errorf("a restart printed a key:\n%s", srv.stdout())
	}
	if !strings.Contains(srv.stdout(), "already exists") || !strings.Contains(srv.stdout(), "AdminService.CreateApiKey") {
		t.Errorf("a restart does not say that the admin key exists and how to make another:\n%s", srv.stdout())
	}
	status, body := getMemberPOST(t, srv.url, key, member)
	var after memberAnswer
	if err := json.Unmarshal([]byte(body), &after); status != http.StatusOK || err != nil || !reflect.DeepEqual(after, wantMember) {
		t.Errorf("after a restart, GetMember with the first key: HTTP %d %s; want %+v", status, body, wantMember)
	}
	if status, body := getMemberPOST(t, srv.url, "", member); status != http.StatusUnauthorized {
		t.Errorf("GetMember without a key: want HTTP 401, got %d %s", status, body)
	}
	// Paths made up by callers without a key are counted under one label,
	// not one series each.
	for _, made := range []string{"/loyalty.v1.MemberService/Nope1", "/loyalty.v1.MemberService/Nope2"} {
		res, err := http.Post(srv.url+made, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	metricsText := httpGet(t, srv.metricsURL)
	for _, re := range []string{
		`(?m)^loyalty_rpc_requests_total\{code="unauthenticated",procedure="/loyalty.v1.MemberService/GetMember"\} 1$`,
		`(?m)^loyalty_rpc_requests_total\{code="unauthenticated",procedure="unknown"\} 2$`,
	} {
		if !regexp.MustCompile(re).MatchString(metricsText) {
			t.Errorf("/metrics does not match %s", re)
		}
	}
	if strings.Contains(metricsText, "Nope") {
		t.Errorf("/metrics has a series for a made-up path")
	}

	// SIGTERM with a request in flight: the server stops accepting
	// connections but answers that request before it exits.
	answer := srv.stopWithRequestInFlight(t, key, member)
	var inFlight memberAnswer
	if err := json.Unmarshal([]byte(answer), &inFlight); err != nil || !reflect.DeepEqual(inFlight, wantMember) {
		t.Errorf("the request in flight at SIGTERM got %s; want %+v", answer, wantMember)
	}
}

// stopWithRequestInFlight starts a GetMember call, sending its headers and
// half its body, sends SIGTERM, waits until the server refuses new
// connections, sends the rest of the body, and returns the answer's body.
// It wants a clean exit as stop does.
func (s *server) stopWithRequestInFlight(t *testing.T, key, member string) string {
	t.Helper()
	addr := strings.TrimPrefix(s.url, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(stopTimeout))
	body := fmt.Sprintf(`{"memberNumber":%q}`, member)
	head := "POST /loyalty.v1.MemberService/GetMember HTTP/1.1\r\nHost: " + addr +
		"\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key +
		"\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n"
	if _, err := io.WriteString(conn, head+body[:len(body)/2]); err != nil {
		t.Fatal(err)
	}
	// Give the server time to read the headers: from then on the
	// connection is active, and shutdown waits for it.
	time.Sleep(300 * time.Millisecond)

	s.stopped = true
	sigterm := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // refused: no longer accepting
		}
		c.Close()
		if time.Since(sigterm) > 10*time.Second {
			t.Fatalf("loyaltyd still accepts connections 10s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-s.done:
		t.Fatalf("loyaltyd exited with a request in flight (%v); stderr:\n%s", s.waitErr, s.stderr())
	default:
	}

	if _, err := io.WriteString(conn, body[len(body)/2:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight at SIGTERM got no answer: %v", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("the request in flight at SIGTERM: HTTP %d %s (%v)", resp.StatusCode, answer, err)
	}
	s.waitClean(t, sigterm)
	return string(answer)
}

// The parts of the answers the test checks (encoding/json matches the
// protojson camelCase names case-insensitively; int64 values are strings).
type (
	balance struct {
		PostedPoints, HeldPoints, AvailablePoints string
	}
	breakdownLine struct {
		Rule, Description, Points string
	}
	stayAnswer struct {
		Transaction struct {
			MemberNumber         string
			AvailablePointsDelta string
			BalanceAfter         balance
			Breakdown            []breakdownLine
		}
		Tier string
	}
	memberAnswer struct {
		Member struct {
			MemberNumber, FullName, Tier string
			Balance                      balance
		}
	}
)

// server is a running loyaltyd.
type server struct {
	cmd *exec.Cmd
	url string
	// metricsURL is the operators' port's /metrics.
	metricsURL string
	out, errs  lockedBuffer
	done       chan struct{} // closed when the process has exited
	waitErr    error         // read after done is closed
	stopped    bool
}

func (s *server) stdout() string { return s.out.String() }
func (s *server) stderr() string { return s.errs.String() }

// startServer starts bin on dataDir and a free loopback port, and waits
// until the health check answers and the start-up block is on stdout.
func startServer(t *testing.T, bin, dataDir string) *server {
	t.Helper()
	url := "http://" + freeAddr(t)
	metricsAddr := freeAddr(t)
	s := &server{url: url, metricsURL: "http://" + metricsAddr + "/metrics", done: make(chan struct{})}
	s.cmd = exec.Command(bin, "-data-dir", dataDir, "-listen", strings.TrimPrefix(url, "http://"), "-metrics-listen", metricsAddr, "-log-level", "info")
	s.cmd.Env = childEnv()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errs
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.stopped {
			s.kill(t)
		}
		if t.Failed() {
			t.Logf("loyaltyd stdout:\n%s\nloyaltyd stderr (log):\n%s", s.stdout(), s.stderr())
		}
	})

	started := time.Now()
	for {
		// The banner's last line is the example call; the health check
		// answers once the server serves.
		if hasLinePrefix(s.stdout(), "curl -s -X POST ") && healthy(url) {
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("loyaltyd exited during start-up (%v); stderr:\n%s", s.waitErr, s.stderr())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(started) > startTimeout {
			t.Fatalf("loyaltyd did not become healthy within %s; stdout:\n%s\nstderr:\n%s", startTimeout, s.stdout(), s.stderr())
		}
	}
}

// stop sends SIGTERM and wants a clean exit (code 0) within stopTimeout.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.stopped = true
	t0 := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	s.waitClean(t, t0)
}

// waitClean wants the server, sent SIGTERM at t0, to exit with code 0
// within stopTimeout.
func (s *server) waitClean(t *testing.T, t0 time.Time) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(stopTimeout - time.Since(t0)):
		s.kill(t)
		t.Fatalf("loyaltyd did not exit within %s of SIGTERM; stderr:\n%s", stopTimeout, s.stderr())
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("loyaltyd exited with %v after SIGTERM, want code 0; stderr:\n%s", s.waitErr, s.stderr())
	}
	if !strings.Contains(s.stderr(), `"msg":"loyaltyd stopped cleanly"`) {
		t.Errorf("the log does not end with a clean stop:\n%s", s.stderr())
	}
	t.Logf("loyaltyd stopped cleanly %s after SIGTERM", time.Since(t0).Round(time.Millisecond))
}

// kill ends a server the test is abandoning: SIGTERM, then SIGKILL.
func (s *server) kill(t *testing.T) {
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// checkEventsExample runs the README's Events lines against srv with the
// README's receiver: the endpoint's secret is in their output, the
// receiver verifies and prints the goodwill event (after a retry, as it
// starts after the event is written), and the metrics count the events
// and the delivery.
func checkEventsExample(t *testing.T, bash string, srv *server, key, member string) {
	t.Helper()
	receiverAddr := freeAddr(t)
	receiver := buildReceiver(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", readmeBlock(t, readmeEventsBegin, readmeEventsEnd))
	cmd.Env = append(childEnv(), "LOYALTY_URL="+srv.url, "LOYALTY_KEY="+key, "MEMBER="+member,
		"WEBHOOK_URL=http://"+receiverAddr+"/loyalty-events")
	out, err := cmd.CombinedOutput()
	t.Logf("README Events lines' output:\n%s", out)
	if err != nil {
		t.Fatalf("the README Events lines failed: %v", err)
	}
	m := regexp.MustCompile(`"secret":\s*"(whsec_[A-Za-z0-9+/=]+)"`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("CreateWebhookEndpoint's answer has no secret")
	}
	if !strings.Contains(string(out), `"nextPageToken"`) || !strings.Contains(string(out), `"loyalty.points.earned.v1"`) {
		t.Errorf("ListEvents did not answer with the member's events and a next page token")
	}

	var printed lockedBuffer
	rcv := exec.Command(receiver)
	rcv.Env = append(childEnv(), "WEBHOOK_SECRET="+string(m[1]), "LISTEN="+receiverAddr)
	rcv.Stdout, rcv.Stderr = &printed, &printed
	if err := rcv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = rcv.Process.Kill()
		_ = rcv.Wait()
	})
	// The first attempt found no receiver; the retry comes within seconds.
	deadline := time.After(30 * time.Second)
	for !strings.Contains(printed.String(), `"type":"loyalty.points.adjusted.v1"`) {
		select {
		case <-deadline:
			t.Fatalf("the README receiver got no goodwill event within 30 s; it printed:\n%s\nloyaltyd's log:\n%s", printed.String(), srv.stderr())
		case <-time.After(100 * time.Millisecond):
		}
	}
	line, _, _ := strings.Cut(printed.String()[strings.Index(printed.String(), `{"specversion"`):], "\n")
	var envelope struct {
		ID, Type, Subject string
		Data              struct{ Points int64 }
	}
	if err := json.Unmarshal([]byte(line), &envelope); err != nil || envelope.Subject != member || envelope.Data.Points != 100 ||
		!strings.Contains(printed.String(), envelope.ID+" {") {
		t.Errorf("the receiver printed %q (%v); want the member's 100 goodwill points under their webhook-id", line, err)
	}
	for deadline := time.After(10 * time.Second); ; {
		metrics := httpGet(t, srv.metricsURL)
		missing := ""
		for _, re := range []string{
			`(?m)^loyalty_db_up 1$`,
			`(?m)^loyalty_events_last_position [1-9][0-9]*$`,
			`(?m)^loyalty_events_outbox_rows [0-9]+$`,
			`(?m)^loyalty_events_outbox_oldest_age_seconds [0-9.e+-]+$`,
			`(?m)^loyalty_webhook_delivered_total [1-9][0-9]*$`,
			`(?m)^loyalty_webhook_attempts_total [1-9][0-9]*$`,
			`(?m)^loyalty_webhook_dead_total 0$`,
			`(?m)^loyalty_webhook_backlog_age_seconds [0-9.e+-]+$`,
			`(?m)^loyalty_webhook_pending_deliveries [0-9]+$`,
			`(?m)^loyalty_webhook_oldest_pending_age_seconds [0-9.e+-]+$`,
			`(?m)^loyalty_webhook_unsent_events [0-9]+$`,
			`(?m)^loyalty_webhook_oldest_unsent_age_seconds [0-9.e+-]+$`,
		} {
			if !regexp.MustCompile(re).MatchString(metrics) {
				missing = re
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-deadline:
			t.Errorf("/metrics does not match %s", missing)
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openEventStream subscribes to the events from the beginning and
// returns the stream once its first event has arrived.
func openEventStream(t *testing.T, url, key string) *connect.ServerStreamForClient[loyaltyv1.SubscribeEventsResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	req := connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{FromBeginning: true})
	req.Header().Set("Authorization", "Bearer "+key)
	stream, err := loyaltyv1connect.NewEventServiceClient(http.DefaultClient, url).SubscribeEvents(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stream.Close() })
	if !stream.Receive() || stream.Msg().GetEvent().GetPosition() != 1 {
		t.Fatalf("the event stream's first message: %v, %v", stream.Msg(), stream.Err())
	}
	return stream
}

const (
	readmeEventsBegin   = "<!-- readme-events:begin -->"
	readmeEventsEnd     = "<!-- readme-events:end -->"
	readmeReceiverBegin = "<!-- readme-receiver:begin -->"
	readmeReceiverEnd   = "<!-- readme-receiver:end -->"
)

// readmeBlock returns the one fenced block between the README markers.
func readmeBlock(t *testing.T, begin, end string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), begin+"\n")
	block, _, ok2 := strings.Cut(rest, end)
	if !ok || !ok2 {
		t.Fatalf("README.md has no %s ... %s", begin, end)
	}
	var lines []string
	fences := 0
	for line := range strings.Lines(block) {
		if strings.HasPrefix(line, "```") {
			fences++
			continue
		}
		lines = append(lines, line)
	}
	if fences != 2 {
		t.Fatalf("between %s and %s: want one fenced block, found %d fence lines", begin, end, fences)
	}
	return strings.Join(lines, "")
}

// buildReceiver builds the README's webhook receiver, as a reader would
// (a module of its own, the standard library only).
func buildReceiver(t *testing.T) string {
	t.Helper()
	goTool := requireTool(t, "go")
	dir := t.TempDir()
	for name, text := range map[string]string{
		"receiver.go": readmeBlock(t, readmeReceiverBegin, readmeReceiverEnd),
		"go.mod":      "module receiver\n\ngo 1.22\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "receiver")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(childEnv(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the README's receiver does not build: %v\n%s", err, out)
	}
	return bin
}

// readmeScript returns the lines between the README markers, without the
// code fence around them.
func readmeScript(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	_, rest, ok := strings.Cut(readme, readmeBegin+"\n")
	if !ok {
		t.Fatalf("README.md has no line %s", readmeBegin)
	}
	block, _, ok := strings.Cut(rest, readmeEnd)
	if !ok {
		t.Fatalf("README.md has no line %s after %s", readmeEnd, readmeBegin)
	}
	var lines []string
	fences := 0
	for line := range strings.Lines(block) {
		if strings.HasPrefix(line, "```") {
			fences++
			continue
		}
		lines = append(lines, line)
	}
	if fences != 2 {
		t.Fatalf("between the README markers: want one ```sh block, found %d fence lines", fences)
	}
	script := strings.Join(lines, "")
	if !strings.Contains(script, "curl ") {
		t.Fatalf("no curl command between the README markers")
	}
	return script
}

// buildServer builds loyaltyd into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	goTool := requireTool(t, "go") // go test puts its own GOROOT/bin first in PATH
	bin := filepath.Join(t.TempDir(), "loyaltyd")
	t0 := time.Now()
	out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built loyaltyd in %s", time.Since(t0).Round(time.Millisecond))
	return bin
}

// postgresDataDir returns a data directory that the embedded PostgreSQL can
// reach. As root the server runs as the postgres user, which has to get
// through every parent: t.TempDir() is private (0700), so the directory is
// made under os.TempDir() and opened to 0755.
func postgresDataDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp(os.TempDir(), "loyaltyd-readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "postgres")
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test needs %s on PATH (it runs the README's curl lines with bash and curl): %v", name, err)
	}
	return path
}

// childEnv is our environment without LOYALTY_* variables, so that a
// developer's settings (a database URL above all) do not leak into the test.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOYALTY_") {
			env = append(env, kv)
		}
	}
	return env
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// healthy reports whether the Connect health check says SERVING.
func healthy(url string) bool {
	resp, err := httpClient.Post(url+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "SERVING_STATUS_SERVING")
}

// checkUnencryptedHTTP2 calls the health check over HTTP/2 without TLS
// (prior knowledge), as gRPC clients do.
func checkUnencryptedHTTP2(t *testing.T, url string) {
	t.Helper()
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: protocols}
	// An idle HTTP/2 connection would hold up the server's shutdown by a
	// second (it waits for the client to answer GOAWAY).
	defer transport.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: transport}
	resp, err := client.Post(url+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatalf("health check over unencrypted HTTP/2: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Errorf("health check over unencrypted HTTP/2: %s, HTTP %d", resp.Proto, resp.StatusCode)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// getFinancePage GETs /finance/ with key as the Basic auth password.
func getFinancePage(t *testing.T, url, key string) (status int, contentType string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/finance/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.SetBasicAuth("finance", key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

func getMemberPOST(t *testing.T, url, key, member string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/loyalty.v1.MemberService/GetMember",
		strings.NewReader(fmt.Sprintf(`{"memberNumber":%q}`, member)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func hasLine(text, line string) bool {
	for l := range strings.Lines(text) {
		if strings.TrimRight(l, "\n") == line {
			return true
		}
	}
	return false
}

func hasLinePrefix(text, prefix string) bool {
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// lockedBuffer is a bytes.Buffer safe for a writer and readers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// httpStatus GETs url and returns its status and body.
func httpStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestARestartRightAfterKill9JustWorks: loyaltyd killed with SIGKILL
// leaves its embedded PostgreSQL stopping for a moment; started again at
// once on the same data, it waits for it and serves, and the run directory
// the killed run left is swept.
func TestARestartRightAfterKill9JustWorks(t *testing.T) {
	bin := buildServer(t)
	dataDir := postgresDataDir(t)
	first := startServer(t, bin, dataDir)
	first.stopped = true
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	second := startServer(t, bin, dataDir) // fails the test if it does not become healthy
	if !healthy(second.url) {
		t.Fatal("the restarted loyaltyd is not healthy")
	}
}

// TestLoyaltydStopsWhenItsEmbeddedDatabaseDies: the embedded PostgreSQL
// killed (the OOM killer, an operator), loyaltyd would answer UNAVAILABLE
// for ever; it stops instead, with an error and exit code 1, so that
// whoever runs it starts the pair again, and a restart serves.
func TestLoyaltydStopsWhenItsEmbeddedDatabaseDies(t *testing.T) {
	bin := buildServer(t)
	dataDir := postgresDataDir(t)
	srv := startServer(t, bin, dataDir)
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.stopped = true
	select {
	case <-srv.done:
	case <-time.After(stopTimeout):
		t.Fatalf("loyaltyd still runs %s after its database was killed; stderr:\n%s", stopTimeout, srv.stderr())
	}
	if code := srv.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(srv.stderr(), "the embedded PostgreSQL exited on its own") {
		t.Fatalf("loyaltyd exited with code %d; want 1 and the reason in the log:\n%s", code, srv.stderr())
	}
	again := startServer(t, bin, dataDir)
	if !healthy(again.url) {
		t.Fatal("the restarted loyaltyd is not healthy")
	}
}
