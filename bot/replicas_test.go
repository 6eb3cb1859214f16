package bot_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/revokebot/revokebot/bot"
	"github.com/revokebot/revokebot/bot/bottest"
	"github.com/slack-go/slack"
)

// runCouriers starts n more Couriers on f's store and Slack, as n replicas
// would run them, and returns a stop for all of them.
func (f *courierFixture) runCouriers(t *testing.T, n int, claimTTL ...time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		api := slack.New(f.ws.BotToken(), slack.OptionAPIURL(f.ws.APIURL()))
		c := bot.NewCourier(api, f.db, auditChannel, bot.Unpaced, nil)
		c.MinBackoff, c.MaxBackoff, c.Poll = time.Millisecond, 20*time.Millisecond, 20*time.Millisecond
		c.RefusalWindow = 0
		c.Replica = fmt.Sprintf("replica-%d", i)
		if len(claimTTL) > 0 {
			c.ClaimTTL = claimTTL[0]
		}
		wg.Go(func() { c.Run(ctx) })
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// checkOnceInOrder checks that the audit channel holds each of want once,
// and each request's records in the order of want.
func checkOnceInOrder(t *testing.T, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, rec := range got {
		seen[rec]++
	}
	for _, rec := range want {
		if seen[rec] != 1 {
			t.Errorf("%q posted %d times, want once", rec, seen[rec])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records posted, want %d", len(got), len(want))
	}
	order := map[string][]string{}
	for _, rec := range got {
		word, id, _ := strings.Cut(rec, " ")
		order[id] = append(order[id], word)
	}
	for id, words := range order {
		if !slices.Equal(words, []string{"requested", "approved", "revoked"}) {
			t.Errorf("request %s audited as %v, want requested, approved, revoked", id, words)
		}
	}
}

// Three replicas' Couriers on one store, through a Slack that fails now and
// then: every record is posted exactly once, each request's in order, and
// every refusal is audited (by whichever replica holds the refusal lane).
func TestCouriersOfThreeReplicasPostEachRecordOnce(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	var want []string
	for range 12 {
		r := f.record(t, approvals.EventRefused, approvals.EventApproved, approvals.EventRevoked)
		for _, k := range []string{"requested", "approved", "revoked"} {
			want = append(want, k+" "+r.ID)
		}
	}
	var failures []bottest.Failure
	for i := range 9 {
		failures = append(failures, []bottest.Failure{{Error: "internal_error"}, {Status: 503}, {Error: "ratelimited"}}[i%3])
	}
	f.ws.Fail("chat.postMessage", failures...)
	f.runCouriers(t, 3)
	f.waitEmpty(t)
	var got []string
	for _, rec := range f.audit() {
		if !strings.HasPrefix(rec, "refused ") {
			got = append(got, rec)
		}
	}
	checkOnceInOrder(t, got, want)
	// Each refusal is in exactly one record: a record folds count=N of them.
	refused := 0
	for _, m := range f.ws.Messages(auditChannel) {
		if !strings.HasPrefix(m.Text, "refused ") {
			continue
		}
		n := 1
		if _, rest, ok := strings.Cut(m.Text, " count="); ok && strings.HasPrefix(m.Text, "refused count=") {
			fmt.Sscanf(rest, "%d", &n)
		}
		refused += n
	}
	if refused != 12 {
		t.Errorf("the refusal records count %d refusals, want the 12, each once", refused)
	}
}

// A replica that died holding claims (it claimed, then nothing) leaves
// them to end by themselves; the others then deliver those records, once.
func TestCouriersTakeOverTheClaimsOfADeadReplica(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	var want []string
	for range 3 {
		r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
		for _, k := range []string{"requested", "approved", "revoked"} {
			want = append(want, k+" "+r.ID)
		}
	}
	ctx := context.Background()
	claimed, err := f.db.Claim(ctx, approvals.AuditRecord, "dead-replica", 100, 300*time.Millisecond)
	if err != nil || len(claimed) != len(want) {
		t.Fatalf("dead replica claimed %d, %v", len(claimed), err)
	}
	f.runCouriers(t, 2)
	time.Sleep(100 * time.Millisecond)
	if n := len(f.audit()); n != 0 {
		t.Fatalf("%d records posted while the dead replica's claims lasted", n)
	}
	f.waitEmpty(t)
	checkOnceInOrder(t, f.audit(), want)
}

// A post that takes Slack longer than a claim lasts: the Courier posting it
// keeps renewing its claim meanwhile, so no other Courier posts it too.
func TestCouriersRenewClaimsWhileSlackIsSlow(t *testing.T) {
	t.Parallel()
	f := newCourierFixture(t)
	r := f.record(t, approvals.EventApproved, approvals.EventRevoked)
	release := f.ws.Hold("chat.postMessage")
	// Claims of 400 ms are renewed every 133 ms: a renewal may come over
	// 250 ms late (a loaded machine running the race detector) and still
	// hold them. (With 150 ms, a CI run under load posted records twice.)
	f.runCouriers(t, 3, 400*time.Millisecond)
	f.ws.Eventually("a post under way", 5*time.Second, func() bool { return f.ws.HeldCalls("chat.postMessage") > 0 })
	time.Sleep(2500 * time.Millisecond) // more than six claims long
	release()
	f.waitEmpty(t)
	checkOnceInOrder(t, f.audit(), []string{"requested " + r.ID, "approved " + r.ID, "revoked " + r.ID})
}
