package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Checkpointing. SQLite's automatic checkpoint runs inside the COMMIT that crosses the
// threshold, so one batch in a few hundred would pay for copying the WAL into the
// database file and for its fsyncs. The store turns it off and checkpoints from a
// goroutine with a connection of its own instead: PASSIVE checkpoints (which never block
// a batch) after every checkpointEvery commits and once a second while there are
// uncheckpointed commits; when the WAL has grown past walHardLimit frames because
// batches kept it busy, a RESTART checkpoint (which makes the next batch wait for it)
// lets the WAL start over from its beginning. Checkpoints are crash-safe. Fewer, larger
// checkpoints mean fewer fsyncs competing with the batches (a wrap is ~14 frames).
const (
	checkpointEvery    = 256
	checkpointInterval = time.Second
	walHardLimit       = 16384 // frames (64 MiB with 4 KiB pages)
)

type checkpointer struct {
	db      *sql.DB
	pending atomic.Int64 // commits since the last checkpoint
	kick    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startCheckpointer opens the checkpoint connection and starts its goroutine.
func startCheckpointer(dsn string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), cancel: cancel}
	c.wg.Go(func() { c.loop(ctx) })
	return c, nil
}

// committed records a committed batch and wakes the goroutine every checkpointEvery.
func (c *checkpointer) committed() {
	if c == nil {
		return
	}
	if c.pending.Add(1)%checkpointEvery == 0 {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

func (c *checkpointer) loop(ctx context.Context) {
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-tick.C:
		}
		if c.pending.Swap(0) == 0 {
			continue
		}
		c.checkpoint(ctx)
	}
}

// checkpoint runs one PASSIVE checkpoint, and a RESTART one if the WAL is too long.
func (c *checkpointer) checkpoint(ctx context.Context) {
	var busy, frames, done int64
	err := c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &done)
	if err == nil && frames > walHardLimit {
		err = c.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(RESTART)").Scan(&busy, &frames, &done)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		// Nothing is lost (the WAL holds the data); try again at the next tick.
		c.pending.Add(1)
	}
}

// stop ends the goroutine and closes its connection. A failed checkpoint is not a
// failure of the store (the WAL holds the data and the next checkpoint or Close copies
// it), so stop returns only the close error.
func (c *checkpointer) stop() error {
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}
