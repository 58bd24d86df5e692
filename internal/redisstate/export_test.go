package redisstate

import "time"

// SetLease sets d's lease, so that tests of a lease outlived by a stall
// need not wait DefaultLease.
func SetLease(d *Idempotency, lease time.Duration) { d.lease = lease }
