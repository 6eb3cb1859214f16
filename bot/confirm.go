package bot

import (
	"context"
	"time"
)

// lookEvery is how often the confirmer looks in the store for the approval
// messages it waits for, unless told sooner by MessagePosted.
const lookEvery = 250 * time.Millisecond

// Bounds of the confirmer: the confirmations waiting for a message, and the
// private replies waiting to be sent (confirmations and "busy" replies), by
// replySenders goroutines.
const (
	confirmBacklog = 1024
	replyBacklog   = 1024
	replySenders   = 4
)

// confirmation is a requester's confirmation waiting for request id's
// approval message: then says what became of it, by deadline at the latest.
type confirmation struct {
	id       string
	deadline time.Time
	then     func(ctx context.Context, posted bool)
}

// confirmer tells requesters where their request waits once its approval
// message is posted, without holding a worker meanwhile: one goroutine
// holds the confirmations waiting, looks at a request when MessagePosted
// says this replica's courier posted its message, and at all of them every
// lookEvery (another replica's courier may post one: the store is where to
// look). The replies, and the "busy, try again" replies to clicks, are
// sent by replySenders goroutines of their own: they never take a place in
// the queue of commands and clicks.
type confirmer struct {
	waiting chan confirmation
	posted  chan string
	replies chan func(context.Context)
	every   time.Duration
}

func newConfirmer(b *Bot, every time.Duration) confirmer {
	c := confirmer{
		waiting: make(chan confirmation, confirmBacklog),
		posted:  make(chan string, confirmBacklog),
		replies: make(chan func(context.Context), replyBacklog),
		every:   every,
	}
	go b.runConfirmer(c)
	for range replySenders {
		go func() {
			for send := range c.replies {
				ctx, cancel := context.WithTimeout(context.Background(), slackCallTimeout)
				send(ctx)
				cancel()
			}
		}()
	}
	return c
}

// stop ends the confirmer's goroutines once the work accepted is done
// (b.inflight): nothing is waiting then.
func (b *Bot) stop() {
	b.work.stop()
	close(b.confirm.waiting)
	close(b.confirm.replies)
}

// whenPosted calls then, once, when request id's approval message is
// posted (posted true), or once wait has passed without it: at once if it
// is posted already, otherwise from a reply sender.
func (b *Bot) whenPosted(ctx context.Context, id string, wait time.Duration, then func(ctx context.Context, posted bool)) {
	if r, err := b.svc.Get(ctx, id); err == nil && r.MessageTS != "" {
		then(ctx, true)
		return
	}
	b.inflight.Add(1) // done once then has run
	b.confirm.waiting <- confirmation{id: id, deadline: time.Now().Add(wait), then: then}
}

// MessagePosted tells the Bot that request id's approval message is posted
// and recorded, so that its requester is told at once. It never blocks.
func (b *Bot) MessagePosted(id string) {
	select {
	case b.confirm.posted <- id:
	default: // the next look at all of them finds it
	}
}

// runConfirmer runs the confirmations until b.stop.
func (b *Bot) runConfirmer(c confirmer) {
	waiting := map[string]confirmation{}
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case w, ok := <-c.waiting:
			if !ok {
				return
			}
			waiting[w.id] = w
		case id := <-c.posted:
			if w, ok := waiting[id]; ok {
				b.settle(waiting, w)
			}
		case <-t.C:
			for _, w := range waiting {
				b.settle(waiting, w)
			}
		}
	}
}

// settle looks whether w's message is posted; if it is, or w's deadline
// has passed, w is done: its reply goes to a sender.
func (b *Bot) settle(waiting map[string]confirmation, w confirmation) {
	ctx, cancel := context.WithTimeout(context.Background(), slackCallTimeout)
	r, err := b.svc.Get(ctx, w.id)
	cancel()
	posted := err == nil && r.MessageTS != ""
	if !posted && time.Now().Before(w.deadline) {
		return
	}
	delete(waiting, w.id)
	// A full backlog of replies holds the confirmer until a sender is
	// free: bounded memory, the replies late rather than lost.
	b.confirm.replies <- func(ctx context.Context) {
		defer b.inflight.Done()
		w.then(ctx, posted)
	}
}

// tellBusy has the clicker told privately that their click was not taken.
// Past replyBacklog replies waiting, the refusal is only logged.
func (b *Bot) tellBusy(responseURL, requestID string) {
	b.inflight.Add(1)
	select {
	case b.confirm.replies <- func(ctx context.Context) {
		defer b.inflight.Done()
		b.reply(ctx, b.log.With("request_id", requestID), responseURL, busyClick)
	}:
	default:
		b.inflight.Done()
		b.log.Warn("busy: too many replies waiting to be sent; this refusal is only logged", "request_id", requestID)
	}
}
