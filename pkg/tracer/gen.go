package tracer

// The BPF objects are committed, so building needs no clang; `make generate`
// rebuilds them and TestGeneratedUpToDate checks that nothing drifted.
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -go-package tracer -output-dir . -cflags "-O2 -g -Wall -Werror" tls ../../bpf/tls.bpf.c -- -I../../bpf
