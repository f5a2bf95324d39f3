package fs

// Die drops the store as a crashed process would: its journal lock is
// released without a flush, so the next Open replays the journal.
func (s *Store) Die() { s.j.lock.Close() }

// JournalDir is the store's own journal directory.
func (s *Store) JournalDir() string { return s.j.dir }

// Flush runs the background flush now.
func (s *Store) Flush() error { return s.j.flush() }
