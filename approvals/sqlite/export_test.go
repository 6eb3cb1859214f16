package sqlite

// Counts returns how many batches the writer committed, and the statements
// run on the write connection and on the reads' connections, so that a
// benchmark can report them per operation.
func (d *DB) Counts() (commits, writes, reads int64) {
	return d.w.batches.Load(), d.w.statements.Load(), d.read.statements.Load()
}
