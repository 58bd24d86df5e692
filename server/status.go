package server

import (
	"google.golang.org/grpc/status"
)

// statusMessage is the message of a status error.
func statusMessage(err error) string {
	return status.Convert(err).Message()
}
