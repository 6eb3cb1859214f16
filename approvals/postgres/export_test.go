package postgres

import "time"

// SetCallTimeout shortens the bound of each call, so that a test of a
// partition need not wait the full callTimeout.
func (d *DB) SetCallTimeout(t time.Duration) { d.callTimeout = t }
