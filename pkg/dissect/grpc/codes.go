// Package grpc holds the gRPC pieces the HTTP/2 dissector needs that do not
// depend on HTTP/2 framing: status code names and a schema-less rendering of
// protobuf messages.
package grpc

import "strconv"

// codeNames are the canonical names of the gRPC status codes, indexed by code
// (google.golang.org/grpc/codes, grpc/doc/statuscodes.md).
var codeNames = [...]string{
	"OK",
	"CANCELLED",
	"UNKNOWN",
	"INVALID_ARGUMENT",
	"DEADLINE_EXCEEDED",
	"NOT_FOUND",
	"ALREADY_EXISTS",
	"PERMISSION_DENIED",
	"RESOURCE_EXHAUSTED",
	"FAILED_PRECONDITION",
	"ABORTED",
	"OUT_OF_RANGE",
	"UNIMPLEMENTED",
	"INTERNAL",
	"UNAVAILABLE",
	"DATA_LOSS",
	"UNAUTHENTICATED",
}

// CodeName returns the canonical name of a gRPC status code, such as
// "NOT_FOUND" for 5. A code outside the defined range renders as "CODE_<n>",
// so an unknown code is still visible and never mistaken for a known one.
func CodeName(code int) string {
	if code >= 0 && code < len(codeNames) {
		return codeNames[code]
	}
	return "CODE_" + strconv.Itoa(code)
}
