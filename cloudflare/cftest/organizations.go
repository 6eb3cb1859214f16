package cftest

import (
	"encoding/json"
	"net/http"
)

// Name and auth domain of the Zero Trust organization the fake reports.
const (
	OrganizationName       = "cftest organization"
	OrganizationAuthDomain = "cftest.cloudflareaccess.com"
)

// ScriptOrganization queues answers to GET {accounts|zones}/{id}/access/organizations
// ("Get your Zero Trust organization"), consumed one per request that carries
// the right credentials and ID. When the queue is empty, the request succeeds
// with an organization named OrganizationName. For example,
// ScriptOrganization(Fail(403, 10000, "Authentication error")) plays a token
// that lacks the Access permission for the account. These requests are not
// recorded in Calls, and do not use the revoke_user Script.
func (s *Server) ScriptOrganization(responses ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgScript = append(s.orgScript, responses...)
}

// serveOrganization answers "Get your Zero Trust organization": a wrong
// credential gets 403 (code 10000), an account or zone other than the
// server's gets 404 (code 7003), and a method other than GET gets 405.
func (s *Server) serveOrganization(w http.ResponseWriter, r *http.Request, scope, id string) {
	wantScope, wantID := "accounts", s.accountID
	if s.zoneID != "" {
		wantScope, wantID = "zones", s.zoneID
	}
	var resp Response
	switch {
	case !s.authOK(r):
		resp = Fail(http.StatusForbidden, 10000, "Authentication error")
	case scope != wantScope || id != wantID:
		resp = Fail(http.StatusNotFound, 7003, "Could not route to "+r.URL.Path+", perhaps your object identifier is invalid?")
	case r.Method != http.MethodGet:
		resp = Fail(http.StatusMethodNotAllowed, 10405, "Method not allowed")
	default:
		s.mu.Lock()
		if len(s.orgScript) > 0 {
			resp, s.orgScript = s.orgScript[0], s.orgScript[1:]
		}
		s.mu.Unlock()
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Body == "" {
		resp.Body = defaultBody(resp.Status)
		if resp.Status >= 200 && resp.Status <= 299 {
			resp.Body = organizationBody()
		}
	}
	s.reply(w, r, resp)
}

// organizationBody is the success envelope of "Get your Zero Trust organization".
func organizationBody() string {
	b, err := json.Marshal(map[string]any{
		"success":  true,
		"errors":   []any{},
		"messages": []any{},
		"result": map[string]any{
			"name":             OrganizationName,
			"auth_domain":      OrganizationAuthDomain,
			"session_duration": "24h",
			"created_at":       "2024-01-01T00:00:00Z",
			"updated_at":       "2024-01-01T00:00:00Z",
		},
	})
	if err != nil {
		panic(err) // cannot happen: the map holds only JSON types
	}
	return string(b)
}
