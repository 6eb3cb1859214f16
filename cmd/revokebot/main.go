// Command revokebot is a Slack bot that revokes a user's Cloudflare Access
// sessions after a second person approves. Run it with no arguments to serve;
// `revokebot help` lists the commands.
package main

import (
	"os"

	"github.com/revokebot/revokebot/cmd/internal/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() { os.Exit(app.Main(version)) }
