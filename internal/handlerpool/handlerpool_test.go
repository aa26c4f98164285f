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

func TestARequestRunsOnAWorkerAndGetsItsAnswer(t *testing.T) {
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
	for range 3 {
		if got := get(t, srv.URL+"/a"); got != "worker /a" {
			t.Fatalf("answer %q, want %q", got, "worker /a")
		}
	}
}

func TestARequestThatFindsEveryWorkerBusyRunsOnItsOwnGoroutineAtOnce(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			close(started)
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
	var held sync.WaitGroup
	var heldAnswer string
	held.Go(func() { heldAnswer = get(t, srv.URL+"/hold") })
	<-started
	// The only worker waits: this request must not wait behind it.
	if got := get(t, srv.URL+"/next"); got != "own goroutine" {
		t.Fatalf("answer %q while the worker is busy, want %q", got, "own goroutine")
	}
	close(release)
	held.Wait()
	if heldAnswer != "worker" {
		t.Fatalf("the held request's answer %q, want %q", heldAnswer, "worker")
	}
}

// serveAndRecover calls pool.ServeHTTP as net/http would and returns
// what it panicked with.
func serveAndRecover(pool *Pool, path string) (panicked any) {
	defer func() { panicked = recover() }()
	pool.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	return nil
}

func TestAHandlersPanicReachesTheRequestsGoroutine(t *testing.T) {
	boom := errors.New("boom")
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/error":
			panic(boom)
		case "/abort":
			panic(http.ErrAbortHandler)
		}
		_, _ = io.WriteString(w, "ok")
	}), 1)
	defer pool.Close()

	got := serveAndRecover(pool, "/error")
	hp, ok := got.(HandlerPanic)
	if !ok {
		t.Fatalf("panicked with %T %v, want a HandlerPanic", got, got)
	}
	if !errors.Is(hp, boom) || !bytes.Contains(hp.Stack, []byte("handlerpool.(*Pool).serve")) {
		t.Fatalf("HandlerPanic %v: want boom and the worker's stack", hp)
	}
	// net/http's quiet abort keeps its identity: net/http does not log it.
	if got := serveAndRecover(pool, "/abort"); got != http.ErrAbortHandler {
		t.Fatalf("panicked with %v, want http.ErrAbortHandler", got)
	}
	// The worker survived both.
	rec := httptest.NewRecorder()
	pool.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Body.String() != "ok" {
		t.Fatalf("after the panics: %q, want ok", rec.Body.String())
	}
}

func TestAHandlerThatExitsItsGoroutineEndsTheRequestsAndTheWorkerIsReplaced(t *testing.T) {
	pool := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/exit" {
			runtime.Goexit()
		}
		if onWorker() {
			_, _ = io.WriteString(w, "worker")
		}
	}), 1)
	defer pool.Close()
	returned := false
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		pool.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/exit", nil))
		returned = true
	}()
	<-exited
	if returned {
		t.Fatal("ServeHTTP returned after the handler called runtime.Goexit")
	}
	// The replacement worker may not be waiting yet: a request served on
	// its own goroutine answers nothing here.
	for i := 0; ; i++ {
		rec := httptest.NewRecorder()
		pool.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Body.String() == "worker" {
			break
		}
		if i == 10000 {
			t.Fatal("no worker serves after one exited")
		}
		runtime.Gosched()
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
