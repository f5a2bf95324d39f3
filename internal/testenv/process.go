package testenv

import (
	"fmt"
	"io"
	"slices"
	"sync"
)

// T is what the fakes (ghfake, jirafake) need of their host. testing.TB
// satisfies it, and so does Process, for a fake that serves outside a
// test: `changegate demo`.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Process hosts fakes in a running program. Logf and Errorf write to its
// writer; Fatalf panics, since it means the program drove a fake wrongly;
// Close runs the cleanups, last registered first.
type Process struct {
	mu       sync.Mutex
	w        io.Writer
	cleanups []func()
	errors   int
}

// NewProcess returns a host whose messages go to w.
func NewProcess(w io.Writer) *Process { return &Process{w: w} }

func (p *Process) Helper() {}

func (p *Process) Logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *Process) Errorf(format string, args ...any) {
	p.mu.Lock()
	p.errors++
	p.mu.Unlock()
	p.Logf("error: "+format, args...)
}

func (p *Process) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Errors counts the Errorf calls: requests a fake did not understand.
func (p *Process) Errors() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errors
}

func (p *Process) Cleanup(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cleanups = append(p.cleanups, f)
}

// Close runs the cleanups once.
func (p *Process) Close() {
	p.mu.Lock()
	fs := p.cleanups
	p.cleanups = nil
	p.mu.Unlock()
	for _, f := range slices.Backward(fs) {
		f()
	}
}
