// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TLS plaintext tracer: uprobes on the read and write calls of OpenSSL
 * (and BoringSSL, same symbols) and of Go's crypto/tls copy the bytes an
 * application hands to, or gets from, its TLS library, with the process,
 * thread, file descriptor, the socket's addresses and the network namespace.
 *
 * OpenSSL: an entry probe saves the arguments per thread and a return probe
 * emits what the call moved. The SSL object does not expose its fd at a
 * stable offset across versions, so the fd is taken from the first socket
 * system call the thread makes inside the call (a raw tracepoint on
 * sys_enter), and remembered per SSL object for calls served from
 * buffered records.
 *
 * Go: return probes break on goroutine stacks that move, so user space
 * attaches the return program at every RET instruction of the function,
 * and calls are keyed by goroutine (the g register), not by thread. Go 1.17+
 * passes arguments in registers.
 *
 * The fd becomes a 4-tuple by walking the task's fd table to its socket
 * (CO-RE, no kprobe or fentry needed).
 */
#include "headers/vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define DATA_MAX 16384 /* bytes of plaintext per event */
#define MAX_CHUNKS 4   /* events per call; the rest is counted as truncated */
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1

enum dir {
	DIR_WRITE = 0, /* the process sent the bytes */
	DIR_READ = 1,  /* the process received them */
};

enum flags {
	FLAG_TUPLE = 1, /* family, addresses and ports are set */
	FLAG_GO = 2,    /* from Go crypto/tls, else OpenSSL */
	FLAG_TRUNC = 4, /* the call moved more than MAX_CHUNKS * DATA_MAX bytes */
};

/* Counter indexes; user space reads them per CPU and sums. */
enum counter {
	CNT_EVENTS = 0,   /* events written to the ring */
	CNT_RING_FULL,    /* events lost: ring full */
	CNT_TRUNC_BYTES,  /* bytes not copied past MAX_CHUNKS * DATA_MAX */
	CNT_READ_FAULT,   /* user memory that could not be read */
	CNT_NO_FD,        /* calls whose fd was never seen */
	CNT_CALLS_FULL,   /* calls not followed: the in-flight table was full */
	CNT_MAX,
};

/* The event layout is mirrored by pkg/tracer's decoder: keep them in step. */
struct tls_event {
	__u64 ts_ns;     /* CLOCK_MONOTONIC */
	__u64 cgroup_id; /* cgroup v2 id of the task */
	__u64 conn;      /* SSL* or *tls.Conn: the connection inside the process */
	__u32 pid;
	__u32 tid;
	__s32 fd;
	__u32 netns;  /* network namespace inode */
	__u32 len;    /* bytes the call moved */
	__u32 offset; /* offset of data within them */
	__u16 data_len;
	__u8 dir;
	__u8 flags;
	__u16 family;
	__u16 lport; /* host order */
	__u16 rport;
	__u16 pad;
	__u8 laddr[16]; /* IPv4 in the first 4 bytes */
	__u8 raddr[16];
	char comm[16];
	__u8 data[DATA_MAX];
};

#define EVENT_HDR __builtin_offsetof(struct tls_event, data)

struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out; /* size_t *written / *readbytes of the _ex calls */
	__s32 fd;
	__u8 dir;
	__u8 ex;
	__u16 pad;
};

struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

struct go_key {
	__u64 g;
	__u32 tgid;
	__u32 pad;
};

struct go_call {
	__u64 conn;
	__u64 buf;
	__s32 fd;
	__u8 dir;
	__u8 pad[3];
};

struct settings {
	__u32 filter_netns; /* 1: only namespaces in netns_filter */
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} netns_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct settings);
} config SEC(".maps");

/*
 * Offsets from a *crypto/tls.Conn to its socket's fd: Conn.conn is a
 * net.Conn interface (data word at 8), holding a *net.TCPConn whose first
 * word is its *net.netFD, whose poll.FD has Sysfd after a 16-byte fdMutex.
 * Stable from Go 1.17 to today; the loader may override them.
 */
volatile const __u32 go_conn_iface_data = 8;
volatile const __u32 go_tcpconn_netfd = 0;
volatile const __u32 go_netfd_sysfd = 16;

/*
 * Waking the reader on every event costs the traced process an IPI per
 * TLS call (expensive in VMs). The reader polls at least every 50 ms
 * anyway, so wake it only when this much is waiting; the loader sets it
 * from the ring size.
 */
volatile const __u64 wakeup_bytes = 2 << 20;

static __always_inline void count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += n;
}

static __always_inline __u32 current_netns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

/* traced reports whether the current task's namespace is wanted. */
static __always_inline bool traced(void)
{
	__u32 zero = 0;
	struct settings *s = bpf_map_lookup_elem(&config, &zero);
	if (!s || !s->filter_netns)
		return true;
	__u32 ns = current_netns();
	return bpf_map_lookup_elem(&netns_filter, &ns) != 0;
}

/* fill_tuple resolves fd to its TCP socket's addresses, when it is one. */
static __always_inline void fill_tuple(struct task_struct *task, __s32 fd, struct tls_event *e)
{
	e->family = 0;
	e->lport = 0;
	e->rport = 0;
	if (fd < 0)
		return;
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return;
	if ((__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return;
	/* private_data is a socket only when the socket points back. */
	if (BPF_CORE_READ(sock, file) != f || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		__be32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memset(e->laddr, 0, sizeof(e->laddr));
		__builtin_memset(e->raddr, 0, sizeof(e->raddr));
		__builtin_memcpy(e->laddr, &l, 4);
		__builtin_memcpy(e->raddr, &r, 4);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)e->raddr, sk, __sk_common.skc_v6_daddr);
	} else {
		return;
	}
	e->family = family;
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e->flags |= FLAG_TUPLE;
}

/* emit copies n bytes at buf into up to MAX_CHUNKS events. */
static __always_inline void emit(__u64 conn, __u64 buf, __u64 n, __s32 fd, __u8 dir, __u8 flags)
{
	__u32 zero = 0;
	struct tls_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	e->ts_ns = bpf_ktime_get_ns();
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->conn = conn;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->fd = fd;
	e->netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	e->dir = dir;
	e->flags = flags;
	e->pad = 0;
	if (n > 0xffffffffULL)
		n = 0xffffffffULL;
	e->len = n;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	fill_tuple(task, fd, e);
	if (fd < 0)
		count(CNT_NO_FD, 1);
	if (n > (__u64)MAX_CHUNKS * DATA_MAX) {
		e->flags |= FLAG_TRUNC;
		count(CNT_TRUNC_BYTES, n - (__u64)MAX_CHUNKS * DATA_MAX);
	}
	for (__u32 i = 0; i < MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * DATA_MAX;
		if (off >= n)
			break;
		__u32 len = DATA_MAX;
		if (n - off < DATA_MAX)
			len = n - off;
		/* Keep the bound visible to the verifier after clang's rewrites. */
		asm volatile("%[len] &= 0x7fff" : [len] "+r"(len));
		if (len > DATA_MAX)
			len = DATA_MAX;
		e->offset = off;
		e->data_len = len;
		if (bpf_probe_read_user(e->data, len, (void *)(buf + off))) {
			count(CNT_READ_FAULT, 1);
			break;
		}
		__u64 wake = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
		if (bpf_ringbuf_output(&events, e, EVENT_HDR + len, wake)) {
			count(CNT_RING_FULL, 1);
			continue;
		}
		count(CNT_EVENTS, 1);
	}
}

/* ---- OpenSSL / BoringSSL ---- */

static __always_inline int ssl_enter(struct pt_regs *ctx, __u8 dir, __u8 ex)
{
	if (!traced())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call c = {
		.ssl = PT_REGS_PARM1(ctx),
		.buf = PT_REGS_PARM2(ctx),
		.out = ex ? PT_REGS_PARM4(ctx) : 0,
		.fd = -1,
		.dir = dir,
		.ex = ex,
	};
	if (bpf_map_update_elem(&ssl_calls, &id, &c, BPF_ANY))
		count(CNT_CALLS_FULL, 1);
	return 0;
}

SEC("uprobe/SSL_write")
int ssl_write_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_WRITE, 0); }

SEC("uprobe/SSL_read")
int ssl_read_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_READ, 0); }

SEC("uprobe/SSL_write_ex")
int ssl_write_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_WRITE, 1); }

SEC("uprobe/SSL_read_ex")
int ssl_read_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_READ, 1); }

SEC("uretprobe/SSL_call")
int ssl_return(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *p = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!p)
		return 0;
	struct ssl_call c = *p;
	bpf_map_delete_elem(&ssl_calls, &id);

	struct ssl_key k = {.ssl = c.ssl, .tgid = id >> 32};
	__s32 fd = c.fd;
	if (fd >= 0) {
		bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	} else {
		__s32 *known = bpf_map_lookup_elem(&ssl_fds, &k);
		if (known)
			fd = *known;
	}

	int rc = (int)PT_REGS_RC(ctx);
	__u64 n = 0;
	if (c.ex) {
		if (rc != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)c.out))
			return 0;
	} else {
		if (rc <= 0)
			return 0;
		n = rc;
	}
	if (n == 0)
		return 0;
	emit(c.ssl, c.buf, n, fd, c.dir, 0);
	return 0;
}

static __always_inline bool io_syscall(long nr)
{
#if defined(__TARGET_ARCH_x86)
	/* read, write, readv, writev, sendto, recvfrom, sendmsg, recvmsg */
	return nr == 0 || nr == 1 || nr == 19 || nr == 20 || (nr >= 44 && nr <= 47);
#else
	return (nr >= 63 && nr <= 66) || nr == 206 || nr == 207 || nr == 211 || nr == 212;
#endif
}

/* sys_enter learns the fd of an OpenSSL call in flight on this thread. */
SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if (!io_syscall((long)ctx->args[1]))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *c = bpf_map_lookup_elem(&ssl_calls, &id);
	if (!c || c->fd >= 0)
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	c->fd = (__s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	return 0;
}

/* ---- Go crypto/tls (register ABI) ---- */

#if defined(__TARGET_ARCH_x86)
#define GO_PARM1(x) ((x)->ax)
#define GO_PARM2(x) ((x)->bx)
#define GO_RET1(x) ((x)->ax)
#define GO_G(x) ((x)->r14)
#else
#define GO_PARM1(x) ((x)->regs[0])
#define GO_PARM2(x) ((x)->regs[1])
#define GO_RET1(x) ((x)->regs[0])
#define GO_G(x) ((x)->regs[28])
#endif

static __always_inline __s32 go_conn_fd(__u64 conn)
{
	__u64 tcp = 0, netfd = 0;
	__s64 fd = -1;
	if (bpf_probe_read_user(&tcp, sizeof(tcp), (void *)(conn + go_conn_iface_data)) || !tcp)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(tcp + go_tcpconn_netfd)) || !netfd)
		return -1;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(netfd + go_netfd_sysfd)))
		return -1;
	if (fd < 0 || fd > 0x7fffffff)
		return -1;
	return (__s32)fd;
}

static __always_inline int go_enter(struct pt_regs *ctx, __u8 dir)
{
	if (!traced())
		return 0;
	struct go_key k = {.g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32};
	struct go_call c = {
		.conn = GO_PARM1(ctx),
		.buf = GO_PARM2(ctx),
		.dir = dir,
	};
	c.fd = go_conn_fd(c.conn);
	if (bpf_map_update_elem(&go_calls, &k, &c, BPF_ANY))
		count(CNT_CALLS_FULL, 1);
	return 0;
}

SEC("uprobe/go_tls_write")
int go_tls_write_enter(struct pt_regs *ctx) { return go_enter(ctx, DIR_WRITE); }

SEC("uprobe/go_tls_read")
int go_tls_read_enter(struct pt_regs *ctx) { return go_enter(ctx, DIR_READ); }

/* go_tls_return is attached at every RET of Write and Read. */
SEC("uprobe/go_tls_return")
int go_tls_return(struct pt_regs *ctx)
{
	struct go_key k = {.g = GO_G(ctx), .tgid = bpf_get_current_pid_tgid() >> 32};
	struct go_call *p = bpf_map_lookup_elem(&go_calls, &k);
	if (!p)
		return 0;
	struct go_call c = *p;
	bpf_map_delete_elem(&go_calls, &k);
	__s64 n = (__s64)GO_RET1(ctx);
	if (n <= 0)
		return 0;
	emit(c.conn, c.buf, (__u64)n, c.fd, c.dir, FLAG_GO);
	return 0;
}
