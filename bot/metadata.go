package bot

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/revokebot/revokebot/approvals"
	"github.com/slack-go/slack"
)

// Message metadata event types: every message revokebot posts carries one,
// so that it can be found again in the channel's history (after a crash, or
// by an auditor). They are public interface.
const (
	// MetadataRequest marks a request's approval message; its payload holds
	// request_id.
	MetadataRequest = "revokebot_request"
	// MetadataAudit marks an audit record; its payload holds request_id, seq
	// (the record number), event, hash (the record's link in the log's
	// hash chain, see approvals.Link; of the last one for a folded record),
	// and for a folded record of refusals first_seq and count.
	MetadataAudit = "revokebot_audit"
)

// historyLookback is how far before an earlier attempt began the channel's
// history is searched for its post: room for clocks that disagree.
const historyLookback = 5 * time.Minute

// historyPages bounds the search for an earlier post. A channel so busy
// that the post is not within them gets it posted again (with its record
// number, so that the copy can be told apart).
const historyPages = 20

func requestMetadata(r approvals.Request) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: MetadataRequest, EventPayload: map[string]any{"request_id": r.ID}}
}

// auditMetadata is the metadata of the audit record of events first..seq
// (count of them; first == seq for one event), e being the last.
func auditMetadata(e approvals.Event, first, seq int64, count int) slack.SlackMetadata {
	payload := map[string]any{"request_id": e.Request.ID, "seq": seq, "event": string(e.Kind)}
	if e.Hash != "" {
		payload["hash"] = e.Hash // the record's link in the log's hash chain
	}
	if count != 1 || first != seq {
		payload["first_seq"] = first
		payload["count"] = count
	}
	return slack.SlackMetadata{EventType: MetadataAudit, EventPayload: payload}
}

// sameMetadata reports whether a message's metadata names the same post as
// want: same event type, and the same request ID and record number.
func sameMetadata(got, want slack.SlackMetadata) bool {
	if got.EventType != want.EventType {
		return false
	}
	for _, key := range []string{"request_id", "seq"} {
		w, ok := want.EventPayload[key]
		if !ok {
			continue
		}
		if payloadString(got.EventPayload[key]) != payloadString(w) {
			return false
		}
	}
	return true
}

// payloadString renders a metadata value the same way whether it is the
// int64 we sent or the float64 or string JSON decoding gives back.
func payloadString(v any) string {
	switch v := v.(type) {
	case nil:
		return "\x00nil"
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	}
	return fmt.Sprint(v)
}

// findPosted looks in channel's history, from a little before since, for a
// message the bot posted with metadata matching want, and returns its ts, or
// "" if there is none.
func (c *Courier) findPosted(ctx context.Context, channel string, since time.Time, want slack.SlackMetadata) (string, error) {
	params := &slack.GetConversationHistoryParameters{
		ChannelID:          channel,
		Oldest:             strconv.FormatInt(since.Add(-historyLookback).Unix(), 10),
		Limit:              200,
		IncludeAllMetadata: true,
	}
	for page := 0; page < historyPages; page++ {
		if err := c.pace.read(ctx); err != nil {
			return "", err
		}
		callCtx, cancel := context.WithTimeout(ctx, slackCallTimeout)
		resp, err := c.api.GetConversationHistoryContext(callCtx, params)
		cancel()
		if err != nil {
			return "", fmt.Errorf("conversations.history %s: %w", channel, err)
		}
		for _, m := range resp.Messages {
			if c.postedByUs(m) && sameMetadata(m.Metadata, want) {
				return m.Timestamp, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", nil
		}
		params.Cursor = resp.ResponseMetaData.NextCursor
	}
	c.log.Warn("earlier post not found within the history searched; posting again", "channel", channel, "pages", historyPages)
	return "", nil
}

// postedByUs reports whether m was posted by revokebot: by its bot user when
// that is known (BotUserID), by some bot otherwise.
func (c *Courier) postedByUs(m slack.Message) bool {
	if c.BotUserID != "" {
		return m.User == c.BotUserID
	}
	return m.BotID != ""
}
