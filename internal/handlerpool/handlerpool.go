// Package handlerpool serves HTTP requests on long-lived goroutines, so
// that a request runs on a stack that has already grown to what the
// service's handlers need.
//
// net/http runs every request (every HTTP/2 stream) on a new goroutine,
// which starts with a small stack. A Connect call's handler chain
// (protobuf, validation, the application service, the ledger) is deep
// enough to outgrow it several times, and every growth copies the whole
// stack: about 7% of loyaltyd's CPU under make bench's load. A pool's
// goroutines keep the stacks they grew (the garbage collector halves an
// idle one at most once per cycle), so most requests never grow one.
//
// The pool never queues: a request that finds no idle goroutine runs on
// its own, as it would without the pool. A handler that panics panics
// again on the request's goroutine, where net/http recovers it as usual.
package handlerpool

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
)

// MaxWorkers bounds a pool's goroutines.
const MaxWorkers = 4096

// Pool is an http.Handler that serves next on its goroutines.
type Pool struct {
	next  http.Handler
	tasks chan *task
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	free  sync.Pool
}

// task is a request handed to a worker, and what became of it.
type task struct {
	w    http.ResponseWriter
	r    *http.Request
	done chan ending
}

// ending is how a handler ended: it returned (zero), panicked, or its
// goroutine exited (runtime.Goexit).
type ending struct {
	panicked any
	stack    []byte
	exited   bool
}

// New returns a pool of workers goroutines (1 to MaxWorkers) that serve
// next. Close stops them.
func New(next http.Handler, workers int) *Pool {
	if workers < 1 || workers > MaxWorkers {
		panic(fmt.Sprintf("handlerpool: %d workers: must be 1 to %d", workers, MaxWorkers))
	}
	p := &Pool{next: next, tasks: make(chan *task), stop: make(chan struct{})}
	p.free.New = func() any { return &task{done: make(chan ending, 1)} }
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// ServeHTTP hands the request to an idle worker and waits for it, or
// serves it on the caller's goroutine when every worker is busy.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.free.Get().(*task)
	t.w, t.r = w, r
	select {
	case p.tasks <- t:
	default:
		t.w, t.r = nil, nil
		p.free.Put(t)
		p.next.ServeHTTP(w, r)
		return
	}
	end := <-t.done
	t.w, t.r = nil, nil
	p.free.Put(t)
	switch {
	case end.exited:
		runtime.Goexit()
	case end.panicked == http.ErrAbortHandler:
		// net/http's way to abort a response quietly: kept as it is.
		panic(http.ErrAbortHandler)
	case end.panicked != nil:
		panic(HandlerPanic{Value: end.panicked, Stack: end.stack})
	}
}

// Close stops the workers once they are idle. Requests still being
// served finish; later ones run on their own goroutines.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}

func (p *Pool) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case t := <-p.tasks:
			p.serve(t)
		}
	}
}

// serve runs one request and tells its caller how the handler ended.
func (p *Pool) serve(t *task) {
	returned := false
	defer func() {
		if v := recover(); v != nil {
			var stack []byte
			if v != http.ErrAbortHandler {
				stack = debug.Stack()
			}
			t.done <- ending{panicked: v, stack: stack}
			return
		}
		if !returned {
			// runtime.Goexit ends this goroutine once the deferred calls
			// have run: another takes its place.
			t.done <- ending{exited: true}
			p.wg.Add(1)
			go p.work()
		}
	}()
	p.next.ServeHTTP(t.w, t.r)
	returned = true
	t.done <- ending{}
}

// HandlerPanic is what a handler that panicked on a worker panics with
// on the request's goroutine: its value and the worker's stack, which
// net/http's log of the panic would otherwise not show.
type HandlerPanic struct {
	Value any
	Stack []byte
}

func (h HandlerPanic) Error() string {
	return fmt.Sprintf("%v\n\nhandler goroutine:\n%s", h.Value, h.Stack)
}

// Unwrap gives the handler's panic value when it was an error.
func (h HandlerPanic) Unwrap() error {
	err, _ := h.Value.(error)
	return err
}
