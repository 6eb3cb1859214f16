package approvals

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// The event log is a hash chain: every event, in the order of its record
// number (seq), carries
//
//	hash = hex(SHA-256(previous hash ‖ canonical encoding of the event))
//
// where the previous hash is the lower-case hex text of the hash of the
// event recorded before it (empty for the first event), and the canonical
// encoding is the JSON array
//
//	[seq, request_id, kind, state, actor, target, detail, at, key]
//
// with seq and at (Unix milliseconds, UTC) as numbers and the rest as
// strings, written without spaces and without escaping <, > and & (as Go's
// json.Encoder with SetEscapeHTML(false), minus the final newline). A
// changed, removed or inserted event breaks the chain at that point, so
// that anyone can check the log with a few lines of code. Every Store keeps
// it (see Store.Chain).

// Link is one event of the chain as stored.
type Link struct {
	Seq int64
	// Event is the event as recorded; its Request has only its ID.
	Event Event
	// Hash is the event's stored hash.
	Hash string
}

// Canonical returns the canonical encoding of event e numbered seq.
func Canonical(seq int64, e Event) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	// Encoding strings and integers cannot fail.
	var at int64 // the zero time is 0, as stored
	if !e.At.IsZero() {
		at = e.At.UnixMilli()
	}
	_ = enc.Encode([]any{seq, e.Request.ID, string(e.Kind), string(e.State), e.Actor, e.Target, e.Detail, at, e.Key})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ChainHash returns the hash of event e numbered seq, after the event whose
// hash is prev ("" for the first).
func ChainHash(prev string, seq int64, e Event) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(Canonical(seq, e))
	return hex.EncodeToString(h.Sum(nil))
}

// ChainBreak says where a chain does not hold.
type ChainBreak struct {
	// Seq is the first event whose stored hash is not the one its content
	// and its predecessor give.
	Seq int64
	// Stored and Want are its stored hash and the computed one.
	Stored, Want string
}

func (b *ChainBreak) Error() string {
	return fmt.Sprintf("the event log's chain breaks at record %d: stored hash %.12s…, computed %.12s… (the record, or one before it, was changed, removed or inserted)", b.Seq, b.Stored, b.Want)
}

// VerifyChain checks links, in order, as following the event whose hash is
// prev ("" when links start at the first event). It returns the hash of
// the last link, and a *ChainBreak at the first link that does not hold.
func VerifyChain(prev string, links []Link) (string, error) {
	for _, l := range links {
		want := ChainHash(prev, l.Seq, l.Event)
		if l.Hash != want {
			return prev, &ChainBreak{Seq: l.Seq, Stored: l.Hash, Want: want}
		}
		prev = l.Hash
	}
	return prev, nil
}
