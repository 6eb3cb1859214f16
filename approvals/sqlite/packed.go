package sqlite

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Packed rows: how a request's targets and reviews come with its row, in
// the same statement (see requestColumns). A correlated subquery packs the
// rows of a table into one text,
//
//	<n>:<value><n>:<value>…
//
// each value as its text preceded by its length in bytes and a colon, and
// the whole preceded the same way by the number of rows (so that a row
// group_concat left out, which it does when a value is NULL, is an error,
// not a row gone). Nothing is escaped, so every byte of a text comes back
// as stored (NULs, quotes, text that is not UTF-8; the observed column's
// JSON stays a string), and integers are written and read in decimal,
// never through a float64.
//
// JSON (json_group_array(json_array(…))) would do too, read with care
// (encoding/json turns bytes that are not UTF-8 into U+FFFD), but escaping
// it in SQLite and unescaping it here (the observed column is JSON, all
// quotes) made a request of 50 targets with previews as slow to read as
// with three statements, or up to 12% slower; packed, it is 6% faster, and
// one of 1 target 19% (BenchmarkGet).

// packed returns the SQL of a subquery packing, as packedRows reads them,
// the values of cols from the rows of table (with its alias) matching
// where.
func packed(table, where string, cols ...string) string {
	pack := func(v string) string { return "octet_length(" + v + ") || ':' || " + v }
	vals := make([]string, len(cols))
	for i, c := range cols {
		vals[i] = pack(c)
	}
	return `(SELECT ` + pack("count(*)") + ` || COALESCE(group_concat(` + strings.Join(vals, " || ") + `, ''), '')
		FROM ` + table + ` WHERE ` + where + `)`
}

// errPacked is the error of a text that is not packed rows as asked for.
var errPacked = errors.New("malformed packed rows")

// packedRows reads packed rows, row by row.
type packedRows struct {
	s    string
	i    int
	left int // rows still to read; -1 before the count is read
}

// newPackedRows returns a reader of the packed rows s.
func newPackedRows(s string) *packedRows { return &packedRows{s: s, left: -1} }

// scan reads the next row into dest, each a *string or an *int64, and
// reports whether there was one. A string read shares the memory of s.
func (p *packedRows) scan(dest ...any) (bool, error) {
	if p.left < 0 {
		n, err := p.int()
		if err != nil {
			return false, err
		}
		if n < 0 {
			return false, p.fail("want a count of rows")
		}
		p.left = int(n)
	}
	if p.left == 0 {
		if p.i != len(p.s) {
			return false, p.fail("want no more than the rows counted")
		}
		return false, nil
	}
	p.left--
	for _, d := range dest {
		var err error
		switch d := d.(type) {
		case *string:
			*d, err = p.value()
		case *int64:
			*d, err = p.int()
		default:
			panic(fmt.Sprintf("packedRows.scan into %T", d))
		}
		if err != nil {
			return false, err
		}
	}
	return true, nil
}

// value reads the next value.
func (p *packedRows) value() (string, error) {
	colon := strings.IndexByte(p.s[p.i:], ':')
	if colon < 1 {
		return "", p.fail("want a length and a colon")
	}
	n, err := strconv.ParseUint(p.s[p.i:p.i+colon], 10, 31)
	if err != nil {
		return "", p.fail("want a length and a colon")
	}
	start := p.i + colon + 1
	if uint64(len(p.s)-start) < n {
		return "", p.fail(fmt.Sprintf("want %d bytes", n))
	}
	p.i = start + int(n)
	return p.s[start:p.i], nil
}

// int reads the next value as an integer.
func (p *packedRows) int() (int64, error) {
	at := p.i
	v, err := p.value()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.i = at
		return 0, p.fail("want an integer")
	}
	return n, nil
}

// fail returns an error saying what was wanted where.
func (p *packedRows) fail(want string) error {
	return fmt.Errorf("%w: %s at byte %d of %d", errPacked, want, p.i, len(p.s))
}
