package redis

import "strings"

// cmdInfo is what the dissector knows of one command.
type cmdInfo struct {
	name string // upper case
	key  int8   // argument index of the first key (1 = first argument); 0 none; see the key* specials
	kind cmdKind
}

type cmdKind uint8

const (
	plain       cmdKind = iota
	container           // CONFIG GET, CLIENT LIST: the first argument is a subcommand
	subscribe           // SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per channel
	unsubscribe         // UNSUBSCRIBE, ...: one confirmation per channel, or until none are left
)

// Special key positions.
const (
	keyNumkeys1 int8 = -1 // EVAL script numkeys key...: the key after numkeys, if numkeys > 0
	keyStreams  int8 = -2 // XREAD ... STREAMS key...: the argument after STREAMS
	keyNumkeys0 int8 = -3 // ZUNION numkeys key...: the key after numkeys
)

// commandTable lists the commands of Redis 7.x with the index of their
// first key ("-" for none, "e" after numkeys, "n" after a leading numkeys,
// "s" after STREAMS) and their kind ("c" container, "s"/"u" subscribe and
// unsubscribe). Unknown commands are still dissected; the table only
// finds their key and lets detection recognise inline commands.
const commandTable = `
APPEND 1|ASKING -|AUTH -|BGREWRITEAOF -|BGSAVE -|BITCOUNT 1|BITFIELD 1|BITFIELD_RO 1|BITOP 2|BITPOS 1
BLMOVE 1|BLMPOP 3|BLPOP 1|BRPOP 1|BRPOPLPUSH 1|BZMPOP 3|BZPOPMAX 1|BZPOPMIN 1|COPY 1|DBSIZE -|DECR 1
DECRBY 1|DEL 1|DISCARD -|DUMP 1|ECHO -|EVAL e|EVALSHA e|EVALSHA_RO e|EVAL_RO e|EXEC -|EXISTS 1|EXPIRE 1
EXPIREAT 1|EXPIRETIME 1|FAILOVER -|FCALL e|FCALL_RO e|FLUSHALL -|FLUSHDB -|GEOADD 1|GEODIST 1|GEOHASH 1
GEOPOS 1|GEORADIUS 1|GEORADIUSBYMEMBER 1|GEORADIUSBYMEMBER_RO 1|GEORADIUS_RO 1|GEOSEARCH 1
GEOSEARCHSTORE 1|GET 1|GETBIT 1|GETDEL 1|GETEX 1|GETRANGE 1|GETSET 1|HDEL 1|HELLO -|HEXISTS 1|HGET 1
HGETALL 1|HINCRBY 1|HINCRBYFLOAT 1|HKEYS 1|HLEN 1|HMGET 1|HMSET 1|HRANDFIELD 1|HSCAN 1|HSET 1|HSETNX 1
HSTRLEN 1|HVALS 1|INCR 1|INCRBY 1|INCRBYFLOAT 1|INFO -|KEYS -|LASTSAVE -|LCS 1|LINDEX 1|LINSERT 1|LLEN 1
LMOVE 1|LMPOP n|LOLWUT -|LPOP 1|LPOS 1|LPUSH 1|LPUSHX 1|LRANGE 1|LREM 1|LSET 1|LTRIM 1|MGET 1|MIGRATE 3
MONITOR -|MOVE 1|MSET 1|MSETNX 1|MULTI -|PERSIST 1|PEXPIRE 1|PEXPIREAT 1|PEXPIRETIME 1|PFADD 1
PFCOUNT 1|PFDEBUG 2|PFMERGE 1|PFSELFTEST -|PING -|PSETEX 1|PSUBSCRIBE 1s|PSYNC -|PTTL 1|PUBLISH 1
PUNSUBSCRIBE 1u|QUIT -|RANDOMKEY -|READONLY -|READWRITE -|RENAME 1|RENAMENX 1|REPLCONF -|REPLICAOF -
RESET -|RESTORE 1|RESTORE-ASKING 1|ROLE -|RPOP 1|RPOPLPUSH 1|RPUSH 1|RPUSHX 1|SADD 1|SAVE -|SCAN -
SCARD 1|SDIFF 1|SDIFFSTORE 1|SELECT -|SET 1|SETBIT 1|SETEX 1|SETNX 1|SETRANGE 1|SHUTDOWN -|SINTER 1
SINTERCARD n|SINTERSTORE 1|SISMEMBER 1|SLAVEOF -|SMEMBERS 1|SMISMEMBER 1|SMOVE 1|SORT 1|SORT_RO 1
SPOP 1|SPUBLISH 1|SRANDMEMBER 1|SREM 1|SSCAN 1|SSUBSCRIBE 1s|STRLEN 1|SUBSCRIBE 1s|SUBSTR 1|SUNION 1
SUNIONSTORE 1|SUNSUBSCRIBE 1u|SWAPDB -|SYNC -|TIME -|TOUCH 1|TTL 1|TYPE 1|UNLINK 1|UNSUBSCRIBE 1u
UNWATCH -|WAIT -|WAITAOF -|WATCH 1|XACK 1|XADD 1|XAUTOCLAIM 1|XCLAIM 1|XDEL 1|XLEN 1|XPENDING 1|XRANGE 1
XREAD s|XREADGROUP s|XREVRANGE 1|XSETID 1|XTRIM 1|ZADD 1|ZCARD 1|ZCOUNT 1|ZDIFF n|ZDIFFSTORE 1
ZINCRBY 1|ZINTER n|ZINTERCARD n|ZINTERSTORE 1|ZLEXCOUNT 1|ZMPOP n|ZMSCORE 1|ZPOPMAX 1|ZPOPMIN 1
ZRANDMEMBER 1|ZRANGE 1|ZRANGEBYLEX 1|ZRANGEBYSCORE 1|ZRANGESTORE 1|ZRANK 1|ZREM 1|ZREMRANGEBYLEX 1
ZREMRANGEBYRANK 1|ZREMRANGEBYSCORE 1|ZREVRANGE 1|ZREVRANGEBYLEX 1|ZREVRANGEBYSCORE 1|ZREVRANK 1
ZSCAN 1|ZSCORE 1|ZUNION n|ZUNIONSTORE 1|ACL -c|CLIENT -c|CLUSTER -c|COMMAND -c|CONFIG -c|DEBUG -c
FUNCTION -c|LATENCY -c|MEMORY 2c|MODULE -c|OBJECT 2c|PUBSUB -c|SCRIPT -c|SLOWLOG -c|XGROUP 2c|XINFO 2c
`

var commands = func() map[string]cmdInfo {
	m := make(map[string]cmdInfo, 256)
	for _, f := range strings.FieldsFunc(commandTable, func(r rune) bool { return r == '|' || r == '\n' }) {
		name, spec, _ := strings.Cut(f, " ")
		ci := cmdInfo{name: name}
		for _, c := range spec {
			switch {
			case c >= '1' && c <= '9':
				ci.key = int8(c - '0')
			case c == 'e':
				ci.key = keyNumkeys1
			case c == 'n':
				ci.key = keyNumkeys0
			case c == 's' && spec == "s":
				ci.key = keyStreams
			case c == 's':
				ci.kind = subscribe
			case c == 'u':
				ci.kind = unsubscribe
			case c == 'c':
				ci.kind = container
			}
		}
		m[name] = ci
	}
	return m
}()

// lookup finds a command by name in any case, without allocating.
func lookup(name []byte) (cmdInfo, bool) {
	if len(name) == 0 || len(name) > 24 {
		return cmdInfo{}, false
	}
	var buf [24]byte
	up := buf[:len(name)]
	for i, c := range name {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		up[i] = c
	}
	ci, ok := commands[string(up)]
	return ci, ok
}

// keyIndex returns the index in args (args[0] is the command) of the
// command's first key, or -1.
func keyIndex(ci cmdInfo, args [][]byte, nargs int64) int {
	n := min(len(args), int(nargs))
	switch ci.key {
	case 0:
		return -1
	case keyNumkeys1, keyNumkeys0:
		at := 2 // EVAL script numkeys key
		if ci.key == keyNumkeys0 {
			at = 1 // ZUNION numkeys key
		}
		if at < n {
			if k, ok := parseInt(args[at]); ok && k > 0 && at+1 < n {
				return at + 1
			}
		}
		return -1
	case keyStreams:
		for i := 1; i < n-1; i++ {
			if strings.EqualFold(string(args[i]), "STREAMS") {
				return i + 1
			}
		}
		return -1
	}
	if int(ci.key) < n {
		return int(ci.key)
	}
	return -1
}

// redactions returns which arguments of a command carry credentials: the
// password of AUTH, of HELLO ... AUTH user pass and MIGRATE ... AUTH/AUTH2,
// CONFIG SET of a password parameter, and ACL SETUSER password rules.
func redactions(name string, args [][]byte, secret func(i int)) {
	switch name {
	case "AUTH":
		for i := 1; i < len(args); i++ {
			secret(i)
		}
	case "HELLO", "MIGRATE":
		for i := 1; i < len(args); i++ {
			switch {
			case strings.EqualFold(string(args[i]), "AUTH") && name == "HELLO":
				secret(i + 2) // HELLO 3 AUTH user pass
			case strings.EqualFold(string(args[i]), "AUTH"):
				secret(i + 1) // MIGRATE ... AUTH pass
			case strings.EqualFold(string(args[i]), "AUTH2"):
				secret(i + 2) // MIGRATE ... AUTH2 user pass
			}
		}
	case "CONFIG SET":
		for i := 2; i+1 < len(args); i += 2 {
			switch strings.ToLower(string(args[i])) {
			case "requirepass", "masterauth", "tls-key-file-pass", "tls-client-key-file-pass":
				secret(i + 1)
			}
		}
	case "ACL SETUSER":
		for i := 3; i < len(args); i++ {
			if a := args[i]; len(a) > 0 && (a[0] == '>' || a[0] == '<' || a[0] == '#' || a[0] == '!') {
				secret(i)
			}
		}
	}
}
