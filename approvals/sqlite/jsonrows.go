package sqlite

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonRows reads, row by row, what SQLite's json_group_array(json_array(…))
// makes of rows of TEXT and INTEGER values: [[v, …], …], with no spaces.
// It is read here rather than by encoding/json so that the values come
// back exactly as stored:
//   - SQLite copies a text's bytes as they are, escaping only '"', '\' and
//     the control characters below U+0020 (NUL as \u0000), and does not
//     check that they are UTF-8: encoding/json would turn bytes that are not
//     into U+FFFD. Here every byte is kept, and escapes are undone.
//   - A text is always a JSON string, even one holding JSON (the observed
//     column): SQLite quotes a column's value, and here it stays a string.
//   - Integers are read as int64, never through a float64, which would
//     round those above 2^53.
//
// A string read shares the memory of the text, unless it had escapes.
type jsonRows struct {
	s string
	i int // where the next row, or the closing ']', begins; 0: before the '['
}

// errJSON is the error of a text that is not what jsonRows reads.
var errJSON = errors.New("malformed JSON rows")

// scan reads the next row into dest, each a *string (a JSON string) or an
// *int64 (a JSON integer), and reports whether there was one.
func (r *jsonRows) scan(dest ...any) (bool, error) {
	switch {
	case r.i == 0:
		if !r.consume('[') {
			return false, r.fail("want the array's [")
		}
		if r.consume(']') {
			return false, r.end()
		}
	case r.consume(']'):
		return false, r.end()
	case !r.consume(','):
		return false, r.fail("want , or ] after a row")
	}
	if !r.consume('[') {
		return false, r.fail("want a row's [")
	}
	for k, d := range dest {
		if k > 0 && !r.consume(',') {
			return false, r.fail(fmt.Sprintf("want a row of %d values", len(dest)))
		}
		var err error
		switch d := d.(type) {
		case *string:
			*d, err = r.string()
		case *int64:
			*d, err = r.int()
		default:
			panic(fmt.Sprintf("jsonRows.scan into %T", d))
		}
		if err != nil {
			return false, err
		}
	}
	if !r.consume(']') {
		return false, r.fail(fmt.Sprintf("want a row of %d values", len(dest)))
	}
	return true, nil
}

// consume reports whether the next byte is c, moving past it if so.
func (r *jsonRows) consume(c byte) bool {
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// end checks that nothing follows the closing ']'.
func (r *jsonRows) end() error {
	if r.i != len(r.s) {
		return r.fail("want nothing after the array")
	}
	return nil
}

// fail returns an error saying what was wanted, at the current byte.
func (r *jsonRows) fail(want string) error { return r.failAt(r.i, want) }

// failAt returns an error saying what was wanted at byte i.
func (r *jsonRows) failAt(i int, want string) error {
	return fmt.Errorf("%w: %s at byte %d of %d", errJSON, want, i, len(r.s))
}

// string reads a JSON string.
func (r *jsonRows) string() (string, error) {
	if !r.consume('"') {
		return "", r.fail("want a string")
	}
	// Find its end, the first quote not escaped: a backslash escapes the
	// character after it (or starts \uXXXX, which holds no quote).
	start, end, escaped := r.i, r.i, false
	for ; end < len(r.s) && r.s[end] != '"'; end++ {
		if r.s[end] == '\\' {
			escaped = true
			end++
		}
	}
	if end >= len(r.s) {
		return "", r.fail("want the string's closing quote")
	}
	r.i = end + 1
	if !escaped { // the text as it is
		return r.s[start:end], nil
	}
	return r.unescape(start, end)
}

// unescape returns the JSON string between start and end, its escapes
// undone.
func (r *jsonRows) unescape(start, end int) (string, error) {
	var b strings.Builder
	b.Grow(end - start) // no escape is shorter than what it stands for
	for i := start; i < end; {
		n := strings.IndexByte(r.s[i:end], '\\')
		if n < 0 {
			b.WriteString(r.s[i:end])
			break
		}
		b.WriteString(r.s[i : i+n])
		i += n + 1
		c := r.s[i] // there is one: see string
		i++
		switch c {
		case '"', '\\', '/':
			b.WriteByte(c)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			c, err := r.hex4(i, end)
			if err != nil {
				return "", err
			}
			i += 4
			if utf16.IsSurrogate(c) {
				// Only a pair stands for a character.
				lo := rune(-1)
				if strings.HasPrefix(r.s[i:end], `\u`) {
					if lo, err = r.hex4(i+2, end); err != nil {
						return "", err
					}
					i += 6
				}
				if c = utf16.DecodeRune(c, lo); c == utf8.RuneError {
					return "", r.failAt(i, "want a surrogate pair")
				}
			}
			b.WriteRune(c)
		default:
			return "", r.failAt(i-1, "want an escape")
		}
	}
	return b.String(), nil
}

// hex4 reads the four hex digits of a \u escape at i, before end.
func (r *jsonRows) hex4(i, end int) (rune, error) {
	if i+4 > end {
		return 0, r.failAt(i, "want 4 hex digits")
	}
	v, err := strconv.ParseUint(r.s[i:i+4], 16, 16)
	if err != nil {
		return 0, r.failAt(i, "want 4 hex digits")
	}
	return rune(v), nil
}

// int reads a JSON integer.
func (r *jsonRows) int() (int64, error) {
	start := r.i
	if r.i < len(r.s) && r.s[r.i] == '-' {
		r.i++
	}
	for r.i < len(r.s) && '0' <= r.s[r.i] && r.s[r.i] <= '9' {
		r.i++
	}
	v, err := strconv.ParseInt(r.s[start:r.i], 10, 64)
	if err != nil {
		r.i = start
		return 0, r.fail("want an integer")
	}
	return v, nil
}
