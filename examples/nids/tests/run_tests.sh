#!/bin/sh
# run_tests.sh CASE NIDS NIDS_MALLOC NIDS_GEN TESTDIR WORKDIR
# The nids example's CTest cases (examples/nids/CMakeLists.txt). Each case
# prints what it checks and exits non-zero on the first failure, showing
# the expected and the actual value.
set -u
case_=$1 nids=$2 nids_malloc=$3 gen=$4 tdir=$5 work=$6
rules=$tdir/test.rules
expected=$tdir/expected.txt
rm -rf "$work" && mkdir -p "$work" || exit 1
cd "$work" || exit 1
fails=0

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run PROGRAM ARGS...: sets rc, out (stdout file), err (stderr file)
n=0
run() {
    n=$((n + 1)); out=out.$n; err=err.$n
    "$@" >"$out" 2>"$err"; rc=$?
}

# alerts_match WHAT [EXPECTED]: the ALERT lines of $out are exactly EXPECTED
# (default tests/expected.txt), exit 0, nothing on stderr
alerts_match() {
    want=${2:-$expected}
    grep '^ALERT' "$out" >alerts.$n
    if ! cmp -s alerts.$n "$want"; then
        fail "$1: alerts differ from $(basename "$want"):"; diff "$want" alerts.$n
    fi
    [ "$rc" -eq 0 ] || { fail "$1: exit code $rc, expected 0 (3 = pools unbalanced)"; cat "$err"; }
    [ -s "$err" ] && { fail "$1: unexpected stderr:"; cat "$err"; }
    echo "ok: $1"
}

# rejects WHAT FILE CODE PATTERN: nids exits CODE, stderr matches PATTERN, nothing crashed
rejects() {
    run "$nids" -w 2 -r "$rules" "$2"
    [ "$rc" -eq "$3" ] || fail "$1: exit code $rc, expected $3"
    grep -q -- "$4" "$err" || { fail "$1: stderr lacks '$4':"; cat "$err"; }
    echo "ok: $1 -> $(head -n 1 "$err")"
}

"$gen" -s test -o test.pcap >/dev/null || { echo "nids-gen failed"; exit 1; }

case $case_ in
alerts)
    for w in 1 2 4; do
        run "$nids" -w $w -r "$rules" test.pcap; alerts_match "mpool build, -w $w"
    done
    run "$nids" -w 3 -r "$rules" -g test; alerts_match "built-in generator (-g test)"
    "$gen" -s test --big-endian -o be.pcap >/dev/null
    run "$nids" -r "$rules" be.pcap; alerts_match "big-endian pcap"
    "$gen" -s test --nsec -o ns.pcap >/dev/null
    run "$nids" -r "$rules" ns.pcap; alerts_match "nanosecond pcap"
    "$gen" -s test --nsec --big-endian -o bens.pcap >/dev/null
    run "$nids" -r "$rules" bens.pcap; alerts_match "big-endian nanosecond pcap"
    # summary counters the scenario fixes
    run "$nids" -w 2 -r "$rules" test.pcap
    grep -q '^summary: packets 1212 ' "$out" || { fail "packet count"; grep '^summary: packets' "$out"; }
    grep -q '^summary: not-ip 1 decode-errors 3 ' "$out" || { fail "decode error count"; grep not-ip "$out"; }
    ;;
malloc)
    for w in 1 2; do
        run "$nids_malloc" -w $w -r "$rules" test.pcap; alerts_match "malloc build, -w $w"
    done
    run "$nids" -w 2 -q -r "$rules" -g bulk -n 20000; grep -v -e '^summary: mpool' -e '^summary: packet pool' -e 'packets/s' "$out" >mp.txt
    run "$nids_malloc" -w 2 -q -r "$rules" -g bulk -n 20000; grep -v -e '^summary: malloc' -e 'packets/s' "$out" >ma.txt
    cmp -s mp.txt ma.txt || { fail "bulk summaries differ between the builds"; diff mp.txt ma.txt; }
    echo "ok: bulk summary identical in both builds"
    ;;
backpressure)
    # A tiny max_live makes the capture thread wait in get_wait; every
    # packet must still come back (exit 0 means the pool stats balanced).
    # Only with max_live 1 is a wait certain: the capture thread keeps its
    # packet in an unsent batch (batches go out when full, or before a
    # wait), so its next get finds none. With 33 or 64, a worker handed a
    # full batch may put it back in time, and whether the capture waits
    # depends on scheduling.
    for l in 1 33 64; do
        run "$nids" -w 2 -l $l --report -r "$rules" test.pcap; alerts_match "max_live $l"
        [ $l -gt 1 ] || grep -q 'capture waited [1-9]' "$out" || { fail "max_live $l: capture never waited"; grep waited "$out"; }
        grep -q 'packets' "$out" || fail "max_live $l: no report line for the packet pool"
        run "$nids_malloc" -w 2 -l $l -r "$rules" test.pcap; alerts_match "malloc build, in-flight limit $l"
    done
    ;;
bulk)
    run "$nids" -w 2 --report -r "$rules" -g bulk -n 100000
    [ "$rc" -eq 0 ] || { fail "bulk: exit $rc"; cat "$err"; }
    grep -q '^summary: packets 100000 ' "$out" || fail "bulk: packet count"
    grep -q '^summary: rule web-passwd alerts [1-9]' "$out" || fail "bulk: no web-passwd alerts"
    grep -q '^summary: lost: flows 0 scratch 0 alerts 0 trackers 0' "$out" || { fail "bulk: losses"; grep lost "$out"; }
    echo "ok: bulk 100000 packets, pools balanced"
    ;;
direction)
    # dst:N matches what is sent to port N, src:N what is sent from it, N both.
    "$gen" -s direction -o direction.pcap >/dev/null
    run "$nids" -w 2 -r "$tdir/direction.rules" direction.pcap; alerts_match "direction" "$tdir/direction.expected"
    grep -q '^summary: rule to-server alerts 1$' "$out" || { fail "dst: rule fired other than once"; grep rule "$out"; }
    run "$nids_malloc" -w 1 -r "$tdir/direction.rules" direction.pcap
    alerts_match "direction, malloc build" "$tdir/direction.expected"
    ;;
bad_pcap)
    for k in trunc-header trunc-record caplen-huge caplen-wire caplen-eof short-file linktype magic pcapng; do
        off=$("$gen" -s test --corrupt $k -o $k.pcap | tail -n 1)
        case $k in
        trunc-header) msg="truncated record header";;
        trunc-record) msg="truncated record";;
        caplen-huge)  msg="captured length 2147483647 larger than 262144";;
        caplen-wire)  msg="captured length [0-9]* larger than original length 10";;
        caplen-eof)   msg="truncated record";;
        short-file)   msg="truncated file header";;
        linktype)     msg="unsupported link type 147";;
        magic)        msg="not a pcap file";;
        pcapng)       msg="pcapng is not supported";;
        esac
        rejects "$k" $k.pcap 2 "^nids: $k.pcap: $off: $msg"
    done
    # the big-endian reader checks as strictly
    off=$("$gen" -s test --big-endian --corrupt caplen-huge -o be-huge.pcap | tail -n 1)
    rejects "big-endian caplen-huge" be-huge.pcap 2 "^nids: be-huge.pcap: $off: captured length 2147483647"
    : >empty.pcap
    rejects "empty file" empty.pcap 2 "^nids: empty.pcap: offset 0: not a pcap file"
    rejects "missing file" nonexistent.pcap 2 "^nids: nonexistent.pcap: No such file"
    # a file cut at every 997th byte: clean error or clean end, never a crash
    size=$(wc -c <test.pcap)
    i=1
    while [ $i -lt "$size" ]; do
        head -c $i test.pcap >cut.pcap
        run "$nids" -w 2 -q -r "$rules" cut.pcap
        case $rc in 0|2) ;; *) fail "cut at $i: exit $rc"; cat "$err";; esac
        i=$((i + 997))
    done
    echo "ok: truncations at every 997th byte"
    ;;
bad_rules)
    # FILE-CONTENT EXPECTED-MESSAGE
    check_rule() {
        printf '%s\n' "$1" >bad.rules
        run "$nids" -r bad.rules test.pcap
        [ "$rc" -eq 2 ] || fail "rule '$1': exit $rc, expected 2"
        grep -q -- "^nids: bad.rules:$2" "$err" || { fail "rule '$1': stderr lacks 'bad.rules:$2':"; cat "$err"; }
        echo "ok: rejected: $1 -> $(cat "$err")"
    }
    check_rule 'alert x tcp 80 "a" "m"'                '1:1: unknown rule kind'
    check_rule 'payload x tcp 80 "\xZZ" "m"'           '1:19: \\x needs two hex digits'
    check_rule 'payload x tcp 80 "\x9" "m"'            '1:19: \\x needs two hex digits'
    check_rule 'payload x tcp 80 "abc "m"'             '1:24: expected a space'
    check_rule 'payload x tcp 80 "abc'                 '1:18: unterminated string'
    check_rule 'payload x tcp 99999 "a" "m"'           '1:15: port must be an integer'
    check_rule 'payload x gre 80 "a" "m"'              '1:11: protocol must be'
    check_rule 'payload x tcp 80 "" "m"'               '1:18: empty pattern'
    check_rule 'payload x tcp 80 "a"'                  '1:21: missing message'
    check_rule 'payload x tcp 80 "a" "m" extra'        '1:26: unexpected text'
    check_rule 'payload x tcp 80 abc "m"'              '1:18: pattern must be a double-quoted'
    check_rule 'portscan s 0 10 "m"'                   '1:12: port count must be'
    check_rule 'portscan s 20 0 "m"'                   '1:15: window must be seconds'
    check_rule 'synflood f 100 1.5x "m"'               '1:16: window must be seconds'
    check_rule 'payload a/b tcp 80 "a" "m"'            '1:9: rule id'
    check_rule 'payload x tcp dst:99999 "a" "m"'       '1:15: port must be an integer from 0 to 65535, src:N, dst:N or any'
    check_rule 'payload x tcp dest:80 "a" "m"'         "1:15: port must be an integer .*not 'dest:80'"
    check_rule 'payload x tcp src: "a" "m"'            "1:15: port must be an integer .*not 'src:'"
    check_rule 'payload x tcp dst:-1 "a" "m"'          '1:15: port must be an integer'
    printf 'payload a tcp 80 "a" "m"\n\n# c\npayload a udp 53 "b" "m"\n' >bad.rules
    run "$nids" -r bad.rules test.pcap
    grep -q "^nids: bad.rules:4:1: duplicate rule id 'a' (first on line 1)" "$err" || { fail "duplicate id"; cat "$err"; }
    printf 'portscan a 5 5 "m"\nportscan b 5 5 "m"\n' >bad.rules
    run "$nids" -r bad.rules test.pcap
    grep -q "^nids: bad.rules:2: a second portscan rule" "$err" || { fail "second portscan"; cat "$err"; }
    run "$nids" -r nonexistent.rules test.pcap
    [ "$rc" -eq 2 ] && grep -q "nonexistent.rules: No such file" "$err" || fail "missing rule file"
    # escapes that are valid: \\, \", \x00 inside a pattern
    printf 'payload ok any any "a\\\\b\\"c\\x00" "m"\n' >good.rules
    run "$nids" -r good.rules test.pcap
    [ "$rc" -eq 0 ] || { fail "valid escapes rejected"; cat "$err"; }
    echo "ok: valid escapes, duplicate ids, second portscan, missing file"
    ;;
*)
    echo "unknown case $case_"; exit 1;;
esac
[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
