package server

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
)

// protoMessage is what google.rpc.Status details are made of.
type protoMessage = protoadapt.MessageV1

// newStatus builds a status error with details. Details only fail to
// marshal on a programming error; the status then goes out without them
// rather than not at all.
func newStatus(code codes.Code, msg string, details ...protoMessage) error {
	st := status.New(code, msg)
	if withDetails, err := st.WithDetails(details...); err == nil {
		return withDetails.Err()
	}
	return st.Err()
}

// statusMessage is the message of a status error.
func statusMessage(err error) string {
	return status.Convert(err).Message()
}
