package queue

import "sync"

// gate orders this process's turns on SQLite's single connection. Intake
// goes first: an acknowledgement is what GitHub waits for (10 s), while
// dispatch and job commits can wait a little. So that a steady stream of
// deliveries cannot starve the workers, a waiting low-priority caller gets
// its turn after lowEvery high-priority turns.
type gate struct {
	mu          sync.Mutex
	cond        *sync.Cond
	held        bool
	highWaiting int
	lowWaiting  int
	highStreak  int // high-priority turns in a row while a low one waited
}

const lowEvery = 16

func newGate() *gate {
	g := &gate{}
	g.cond = sync.NewCond(&g.mu)
	return g
}

func (g *gate) lockHigh() {
	g.mu.Lock()
	g.highWaiting++
	for g.held || (g.lowWaiting > 0 && g.highStreak >= lowEvery) {
		g.cond.Wait()
	}
	g.highWaiting--
	g.held = true
	if g.lowWaiting > 0 {
		g.highStreak++
	}
	g.mu.Unlock()
}

func (g *gate) lockLow() {
	g.mu.Lock()
	g.lowWaiting++
	for g.held || (g.highWaiting > 0 && g.highStreak < lowEvery) {
		g.cond.Wait()
	}
	g.lowWaiting--
	g.held = true
	g.highStreak = 0
	g.mu.Unlock()
}

func (g *gate) unlock() {
	g.mu.Lock()
	g.held = false
	g.mu.Unlock()
	g.cond.Broadcast()
}
