package sqlite

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/revokebot/revokebot/approvals"
)

// awkward are texts that JSON encoders and decoders tend to change.
var awkward = []string{
	"",
	"plain",
	`q"uo\te/`,
	"nul\x00mid\x00",
	"not UTF-8 \xff\xfe, cut short \xe2\x82",
	"control \x01\x08\x0c\n\r\t\x1f\x7f",
	"é 😀 \u2028\u2029 \ufffd",
	`{"look":{"state":"done"},"x":"\"\\u0041"}`,
	`\u0041\ud83d\ude00`,
	"</script>&<>",
}

// TestPackedRoundTrip: texts and integers packed by SQLite (see packed)
// read back exactly as they were bound.
func TestPackedRoundTrip(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	ints := []int64{0, 1, -1, 1<<53 + 1, math.MaxInt64, math.MinInt64}
	for i, s := range awkward {
		checkPacked(t, d, s, ints[i%len(ints)])
	}
}

// FuzzPacked checks that any text and integer packed by SQLite read back
// as they were (go test -fuzz FuzzPacked ./approvals/sqlite/).
func FuzzPacked(f *testing.F) {
	for i, s := range awkward {
		f.Add(s, int64(i)<<50)
	}
	d, err := Open(bg, f.TempDir()+"/fuzz.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	f.Fuzz(func(t *testing.T, s string, n int64) { checkPacked(t, d, s, n) })
}

// checkPacked has SQLite pack two rows of s and n, and checks that
// packedRows reads them back.
func checkPacked(t *testing.T, d *DB, s string, n int64) {
	t.Helper()
	var text string
	err := d.read.QueryRowContext(bg, `SELECT `+packed("(SELECT ? AS a, ? AS b UNION ALL SELECT ?, ?) x", "1", "x.a", "x.b"),
		s, n, s, n).Scan(&text)
	if err != nil {
		t.Fatal(err)
	}
	pr := newPackedRows(text)
	for row := range 3 {
		var (
			gotS string
			gotN int64
		)
		ok, err := pr.scan(&gotS, &gotN)
		if err != nil {
			t.Fatalf("%q (from %q): %v", text, s, err)
		}
		if ok != (row < 2) {
			t.Fatalf("%q: row %d read: %v", text, row, ok)
		}
		if ok && (gotS != s || gotN != n) {
			t.Errorf("%q read as %q, %d; want %q, %d", text, gotS, gotN, s, n)
		}
	}
}

// TestPackedMalformed: a text that is not packed rows of the shape asked
// for is an error, not a panic nor a wrong value; a NULL that made
// group_concat leave a row out too.
func TestPackedMalformed(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		``, `1`, `1:`, `1:x`, `:1`, `1:1`, `1:11:a`, `1:11:a1:`, `1:11:a1:x`, `1:11:a2:1`, `1:01:a1:11:b`, `1:21:a1:1`,
		`1:11:a1:1x`, `1:11:a1:1.5`, `1:11:a3:1e3`, `1:11:a1:-`, `1:11:a20:99999999999999999999`, `1:11:a-1:`,
		`1:11:a+1:1`, `1:11:a99:1`, `2:-11:a1:1`, `2:-1`, `1:11:a1:12:`,
	} {
		pr := newPackedRows(text)
		var (
			s string
			n int64
		)
		var err error
		for ok := true; ok && err == nil; {
			ok, err = pr.scan(&s, &n)
		}
		if !errors.Is(err, errPacked) {
			t.Errorf("%q: %v, want errPacked", text, err)
		}
	}
	d, _ := openTest(t)
	var text string
	err := d.read.QueryRowContext(bg, `SELECT `+packed("(SELECT 'a' AS a, 1 AS b UNION ALL SELECT NULL, 2) x", "1", "x.a", "x.b")).Scan(&text)
	if err != nil {
		t.Fatal(err)
	}
	pr := newPackedRows(text)
	var (
		s string
		n int64
	)
	for ok := true; ok && err == nil; {
		ok, err = pr.scan(&s, &n)
	}
	if !errors.Is(err, errPacked) {
		t.Errorf("%q, a row with a NULL: %v, want errPacked", text, err)
	}
}

// TestRequestRoundTrip: a request whose texts are awkward, whose times are
// far off and whose targets have observations reads back exactly as
// written, by Get and by the lists.
func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	d, _ := openTest(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	far := time.UnixMilli(1<<53 + 1).UTC() // past what a float64 holds exactly
	r := pending("UREQ", "first@example.com")
	r.Reason, r.Required = strings.Join(awkward, "|"), 5
	r.Targets = nil
	for i, s := range awkward {
		// The observations are stored as JSON made by encoding/json, which
		// makes text that is not UTF-8 so (package observed): not this
		// store's doing.
		why := strings.ToValidUTF8(s, "\uFFFD")
		r.Targets = append(r.Targets, approvals.Target{Email: fmt.Sprintf("%d%s@example.com", i, s), Person: s,
			State: approvals.TargetWaiting, Look: approvals.Look{State: approvals.LookFailed, Why: why, Preview: approvals.Preview{At: now}}})
	}
	r.Targets[1].State, r.Targets[1].Outcome, r.Targets[1].FinishedAt = approvals.TargetFailed, awkward[4], far
	r.Targets[2].State, r.Targets[2].Outcome, r.Targets[2].FinishedAt = approvals.TargetRevoked, awkward[3], now
	for i, s := range awkward[:4] {
		r.Reviews = append(r.Reviews, approvals.Review{By: fmt.Sprintf("U%d%s", i, s), Decision: approvals.Approve, Reason: s, At: far.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := create(d, r, 0); err != nil {
		t.Fatal(err)
	}
	r.Version = 1
	got, err := d.Get(bg, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		for i := range max(len(got.Targets), len(r.Targets)) {
			if i >= len(got.Targets) || i >= len(r.Targets) || !reflect.DeepEqual(got.Targets[i], r.Targets[i]) {
				t.Errorf("Get: target %d differs", i)
			}
		}
		g, w := got, r
		g.Targets, w.Targets = nil, nil
		t.Errorf("Get:\n got %#v\nwant %#v", g, w)
	}
	list, err := d.ListByState(bg, approvals.StatePending)
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], r) {
		t.Errorf("ListByState: %d requests, %v; want the one written", len(list), err)
	}
	ds, err := d.Undelivered(bg, approvals.AuditRecord, 10)
	if err != nil || len(ds) != 1 || !reflect.DeepEqual(ds[0].Current, r) || !reflect.DeepEqual(ds[0].Event.Request, r) {
		t.Errorf("Undelivered: %d deliveries, %v; want the request written", len(ds), err)
	}
}
