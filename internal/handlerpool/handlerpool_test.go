package handlerpool

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
)

// onWorker reports whether the calling goroutine is one of a pool's.
func onWorker() bool {
	buf := make([]byte, 64<<10)
	return bytes.Contains(buf[:runtime.Stack(buf, false)], []byte("handlerpool.(*Pool).work"))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// maxTries bounds the requests a test sends until one lands on a worker:
// a worker that has just started, or just finished a request, takes a
// moment to wait for the next, and a request that comes first runs on
// its own goroutine (the pool never queues).
const maxTries = 10000

func TestEveryRequestIsAnsweredWhereverItRuns(t *testing.T) {
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onWorker() {
			_, _ = io.WriteString(w, "worker "+r.URL.Path)
			return
		}
		_, _ = io.WriteString(w, "own goroutine "+r.URL.Path)
	}), 2)
	defer pool.Close()
	srv := httptest.NewServer(pool)
	defer srv.Close()
	onWorkers := 0
	for i := 0; i < 50 || onWorkers == 0; i++ {
		if i == maxTries {
			t.Fatal("no request ran on a worker")
		}
		switch got := get(t, srv.URL+"/a"); got {
		case "worker /a":
			onWorkers++
		case "own goroutine /a":
		default:
			t.Fatalf("answer %q", got)
		}
	}
}

func TestARequestThatFindsEveryWorkerBusyRunsOnItsOwnGoroutineAtOnce(t *testing.T) {
	release := make(chan struct{})
	held := make(chan struct{})
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			if !onWorker() {
				_, _ = io.WriteString(w, "again")
				return
			}
			close(held)
			<-release
		}
		if onWorker() {
			_, _ = io.WriteString(w, "worker")
			return
		}
		_, _ = io.WriteString(w, "own goroutine")
	}), 1)
	defer pool.Close()
	srv := httptest.NewServer(pool)
	defer srv.Close()
	var holding sync.WaitGroup
	holding.Go(func() {
		for i := 0; get(t, srv.URL+"/hold") == "again"; i++ {
			if i == maxTries {
				t.Error("the held request never ran on the worker")
				close(held)
				return
			}
		}
	})
	<-held
	// The only worker waits: this request must not wait behind it.
	if got := get(t, srv.URL+"/next"); got != "own goroutine" {
		t.Errorf("answer %q while the worker is busy, want %q", got, "own goroutine")
	}
	close(release)
	holding.Wait()
}

// onAWorker serves GET path through pool until a worker serves it, and
// returns what that request panicked with, or nil.
func onAWorker(t *testing.T, pool *Pool, path string) any {
	t.Helper()
	for range maxTries {
		panicked, rec := serveAndRecover(pool, path)
		if panicked != nil || rec.Body.String() != "own goroutine" {
			return panicked
		}
		runtime.Gosched()
	}
	t.Fatalf("%s never ran on a worker", path)
	return nil
}

// serveAndRecover calls pool.ServeHTTP as net/http would and returns
// what it panicked with, and the answer.
func serveAndRecover(pool *Pool, path string) (panicked any, rec *httptest.ResponseRecorder) {
	rec = httptest.NewRecorder()
	defer func() { panicked = recover() }()
	pool.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return nil, rec
}

func TestAHandlersPanicReachesTheRequestsGoroutine(t *testing.T) {
	boom := errors.New("boom")
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !onWorker() {
			_, _ = io.WriteString(w, "own goroutine")
			return
		}
		switch r.URL.Path {
		case "/error":
			panic(boom)
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "ok")
	}), 1)
	defer pool.Close()

	got := onAWorker(t, pool, "/error")
	hp, ok := got.(HandlerPanic)
	if !ok {
		t.Fatalf("panicked with %T %v, want a HandlerPanic", got, got)
	}
	if !errors.Is(hp, boom) || !bytes.Contains(hp.Stack, []byte("handlerpool.(*Pool).serve")) {
		t.Fatalf("HandlerPanic %v: want boom and the worker's stack", hp)
	}
	// net/http's quiet abort keeps its identity: net/http does not log it.
	if got := onAWorker(t, pool, "/abort"); got != http.ErrAbortHandler {
		t.Fatalf("panicked with %v, want http.ErrAbortHandler", got)
	}
	// The worker survived both.
	if got := onAWorker(t, pool, "/"); got != nil {
		t.Fatalf("after the panics: panicked with %v", got)
	}
}

func TestAHandlerThatExitsItsGoroutineEndsTheRequestsAndTheWorkerIsReplaced(t *testing.T) {
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !onWorker() {
			_, _ = io.WriteString(w, "own goroutine")
			return
		}
		if r.URL.Path == "/exit" {
			runtime.Goexit()
		}
		_, _ = io.WriteString(w, "worker")
	}), 1)
	defer pool.Close()
	for i := 0; ; i++ {
		if i == maxTries {
			t.Fatal("/exit never ran on a worker")
		}
		returned := false
		var rec *httptest.ResponseRecorder
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			rec = httptest.NewRecorder()
			pool.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/exit", nil))
			returned = true
		}()
		<-exited
		if !returned {
			break // the handler ran on a worker and exited: so did ServeHTTP's caller
		}
		if rec.Body.String() != "own goroutine" {
			t.Fatalf("ServeHTTP returned %q after the handler called runtime.Goexit", rec.Body.String())
		}
		runtime.Gosched()
	}
	// The worker that exited has a successor.
	if got := onAWorker(t, pool, "/"); got != nil {
		t.Fatalf("after the exit: panicked with %v", got)
	}
}

func TestAfterCloseRequestsRunOnTheirOwnGoroutines(t *testing.T) {
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if onWorker() {
			_, _ = io.WriteString(w, "worker")
			return
		}
		_, _ = io.WriteString(w, "own goroutine")
	}), 4)
	pool.Close()
	rec := httptest.NewRecorder()
	pool.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Body.String() != "own goroutine" {
		t.Fatalf("after Close: %q, want %q", rec.Body.String(), "own goroutine")
	}
}

func TestNewRefusesAPoolOutsideItsBounds(t *testing.T) {
	for _, workers := range []int{0, -1, MaxWorkers + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New with %d workers did not panic", workers)
				}
			}()
			New(http.NotFoundHandler(), workers)
		}()
	}
}

// deep uses about depth KiB of stack, as a Connect call's handler chain
// does.
//
//go:noinline
func deep(depth int) byte {
	var frame [1024]byte
	frame[depth%len(frame)] = byte(depth)
	if depth == 0 {
		return frame[0]
	}
	return deep(depth-1) + frame[depth%len(frame)]
}

var sink byte

// BenchmarkDeepHandler compares a handler that needs 48 KiB of stack run
// on a new goroutine per request (as net/http does) with the same run
// through a pool: go test -bench DeepHandler ./internal/handlerpool/
func BenchmarkDeepHandler(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sink = deep(48) })
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.Run("goroutine per request", func(b *testing.B) {
		for b.Loop() {
			done := make(chan struct{})
			go func() {
				h.ServeHTTP(nil, req)
				close(done)
			}()
			<-done
		}
	})
	b.Run("pool", func(b *testing.B) {
		pool := New(h, 4)
		defer pool.Close()
		for b.Loop() {
			done := make(chan struct{})
			go func() {
				pool.ServeHTTP(nil, req)
				close(done)
			}()
			<-done
		}
	})
}
