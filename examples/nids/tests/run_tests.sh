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
    # all but the timing, the pool counters and the alerts held at once (which depends on scheduling)
    run "$nids" -w 2 -q -r "$rules" -g bulk -n 20000
    grep -v -e '^summary: mpool' -e '^summary: packet pool' -e 'packets/s' -e 'held at most' "$out" >mp.txt
    run "$nids_malloc" -w 2 -q -r "$rules" -g bulk -n 20000
    grep -v -e '^summary: malloc' -e 'packets/s' -e 'held at most' "$out" >ma.txt
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
    grep -q '^summary: lost: flows 0 alerts 0 trackers 0' "$out" || { fail "bulk: losses"; grep lost "$out"; }
    # the printed time includes the pools' teardown, and says how long it took
    grep -q '^summary: mpool build, 2 workers, [0-9.]* s (teardown [0-9.]* s), ' "$out" ||
        { fail "no teardown time"; tail -n 1 "$out"; }
    echo "ok: bulk 100000 packets, pools balanced"
    ;;jumbo)
    # Frames up to 200 KiB are kept whole, each in the smallest packet class
    # that holds it; a marker 33,000 bytes into a 61 KiB segment is found.
    "$gen" -s jumbo -o jumbo.pcap >/dev/null
    for l in 2048 1; do
        run "$nids" -w 2 -l $l -r "$tdir/jumbo.rules" jumbo.pcap; alerts_match "jumbo, -l $l" "$tdir/jumbo.expected"
        grep -q '^summary: packet classes 1902:7 16238:1 67438:3 263022:1$' "$out" ||
            { fail "jumbo -l $l: packet classes"; grep classes "$out"; }
        grep -q '^summary: not-ip 1 decode-errors 0 cut 0 ' "$out" || { fail "jumbo: frames cut"; grep not-ip "$out"; }
    done
    # with one packet of each class in flight, the 61 KiB frames must wait
    grep -q 'capture waited [1-9]' "$out" || { fail "jumbo -l 1: capture never waited"; grep waited "$out"; }
    run "$nids_malloc" -w 2 -l 1 -r "$tdir/jumbo.rules" jumbo.pcap; alerts_match "jumbo, malloc build" "$tdir/jumbo.expected"
    if ! "$nids" --libpcap 2>&1 | grep -q 'built without libpcap'; then
        run "$nids" -w 2 --libpcap -r "$tdir/jumbo.rules" jumbo.pcap; alerts_match "jumbo through libpcap" "$tdir/jumbo.expected"
    fi
    ;;
gap)
    # A lost segment: matching resumes at the next one and goes on across
    # segment boundaries; a late segment is matched on its own; a pattern
    # whose halves lie on both sides of a loss is not reported.
    "$gen" -s gap -o gap.pcap >/dev/null
    for w in 1 2; do
        run "$nids" -w $w -r "$rules" gap.pcap; alerts_match "gap, -w $w" "$tdir/gap.expected"
        grep -q '^summary: not-ip 0 decode-errors 0 cut 0 tcp-gaps 4 late-segments 1$' "$out" ||
            { fail "gap: gap counts"; grep gaps "$out"; }
    done
    run "$nids_malloc" -w 2 -r "$rules" gap.pcap; alerts_match "gap, malloc build" "$tdir/gap.expected"
    ;;
direction)
    # dst:N matches what is sent to port N, src:N what is sent from it, N both.
    "$gen" -s direction -o direction.pcap >/dev/null
    run "$nids" -w 2 -r "$tdir/direction.rules" direction.pcap; alerts_match "direction" "$tdir/direction.expected"
    grep -q '^summary: rule to-server alerts 1$' "$out" || { fail "dst: rule fired other than once"; grep rule "$out"; }
    run "$nids_malloc" -w 1 -r "$tdir/direction.rules" direction.pcap
    alerts_match "direction, malloc build" "$tdir/direction.expected"
    ;;
expiry)
    # 10,000 UDP flows, a new one every 10 ms, each idle after its answer:
    # with a 30 s timeout about 3,000 are in the table at once; bounded to
    # 500, the longest idle are evicted. Exit 0: every flow ended, pools balanced.
    "$gen" -s udp-flows -n 20000 -o udp.pcap >/dev/null
    run "$nids" -w 1 -r "$rules" udp.pcap
    [ "$rc" -eq 0 ] || { fail "expiry: exit $rc"; cat "$err"; }
    line=$(grep '^summary: flows idle-ended' "$out")
    set -- $line
    idle=$4 evicted=$6 peak=$8
    [ "$idle" -ge 6990 ] && [ "$evicted" -eq 0 ] && [ "$peak" -le 3002 ] ||
        fail "expiry: idle-ended $idle (>= 6990), evicted $evicted (0), table peak $peak (<= 3002)"
    echo "ok: $line"
    run "$nids" -w 1 --idle-udp 5 -r "$rules" udp.pcap
    set -- $(grep '^summary: flows idle-ended' "$out")
    [ "$8" -le 502 ] && [ "$4" -ge 9490 ] || fail "expiry --idle-udp 5: idle-ended $4 (>= 9490), table peak $8 (<= 502)"
    run "$nids" -w 1 --max-flows 500 -r "$rules" udp.pcap
    [ "$rc" -eq 0 ] || { fail "expiry --max-flows: exit $rc"; cat "$err"; }
    set -- $(grep '^summary: flows idle-ended' "$out")
    [ "$6" -ge 2000 ] && [ "$8" -eq 500 ] || fail "expiry --max-flows 500: evicted $6 (>= 2000), table peak $8 (500)"
    echo "ok: --max-flows 500: $(grep '^summary: flows idle-ended' "$out")"
    grep -v -e '^summary: mpool' -e '^summary: packet pools' -e 'held at most' "$out" >mp.txt
    run "$nids_malloc" -w 1 --max-flows 500 -r "$rules" udp.pcap
    grep -v -e '^summary: malloc' -e 'held at most' "$out" >ma.txt
    cmp -s mp.txt ma.txt || { fail "expiry: summaries differ between the builds"; diff mp.txt ma.txt; }
    ;;
stream)
    # Alerts are printed (and freed) while the capture runs: nids reads a
    # FIFO; the test writes the test capture, reads its 7 alerts from nids'
    # output while the input is still open, and only then writes a second
    # capture. Were alerts held to the end, this would never get past the
    # first read (the test's timeout ends it).
    "$gen" -s test -o a.pcap >/dev/null
    "$gen" -s test --time-offset 1000 -o b.pcap >/dev/null
    tail -c +25 b.pcap >b.records
    mkfifo in.fifo out.fifo || exit 1
    "$nids" -w 2 -r "$rules" in.fifo >out.fifo 2>err.stream &
    pid=$!
    exec 3<out.fifo 4>in.fifo
    cat a.pcap >&4
    : >first.txt
    while [ "$(wc -l <first.txt)" -lt 7 ] && IFS= read -r line <&3; do
        echo "$line" >>first.txt
    done
    cmp -s first.txt "$expected" || { fail "stream: first half's alerts"; diff "$expected" first.txt; }
    echo "ok: the first capture's 7 alerts read while the input was still open"
    cat b.records >&4
    exec 4>&-
    { cat first.txt; cat <&3; } >stream.out
    exec 3<&-
    wait $pid; rc=$?
    [ "$rc" -eq 0 ] && [ ! -s err.stream ] || { fail "stream: exit $rc"; cat err.stream; }
    [ "$(grep -c '^ALERT' stream.out)" -eq 14 ] || { fail "stream: expected 14 alerts"; grep '^ALERT' stream.out; }
    # an alert is freed before its line is flushed: the first 7 were gone
    # before the second capture came
    grep -q '^summary: alerts held at most [1-7] at once' stream.out ||
        { fail "stream: alerts held"; grep held stream.out; }
    echo "ok: 14 alerts, $(grep 'held at most' stream.out)"
    ;;
live)
    # Live capture on the loopback interface (needs libpcap and the right
    # to capture; skipped otherwise): one UDP datagram sent to 127.0.0.1
    # must raise its alert while nids runs; SIGINT ends the run cleanly.
    port=47999
    printf 'payload live udp dst:%s "LIVE-MARKER-4711" "marker received live"\n' $port >live.rules
    mkfifo live.out live.err || exit 1
    "$nids" -w 2 -r live.rules -i lo --filter "udp port $port" >live.out 2>live.err &
    pid=$!
    exec 3<live.out 4<live.err
    IFS= read -r line <&4
    case $line in
    "nids: listening on lo"*) ;;
    *"built without libpcap"*|*"cannot capture"*)
        wait $pid; echo "skipped: $line"; exit 77;;
    *) fail "live: '$line'"; kill $pid; wait $pid; exit 1;;
    esac
    "$gen" --send-udp $port "hello LIVE-MARKER-4711" || fail "live: cannot send"
    IFS= read -r alert <&3
    case $alert in
    "ALERT live "*" udp 127.0.0.1:"*" -> 127.0.0.1:$port marker received live") echo "ok: $alert";;
    *) fail "live: alert line '$alert'";;
    esac
    kill -INT $pid
    wait $pid; rc=$?
    cat <&3 >live.rest
    exec 3<&- 4<&-
    [ "$rc" -eq 0 ] || { fail "live: exit $rc after SIGINT"; cat live.err; }
    grep -q '^summary: live capture on lo: received [1-9]' live.rest || { fail "live: no capture summary"; cat live.rest; }
    echo "ok: SIGINT ended the live run, exit 0"
    ;;
bad_options)
    # every bad command line gets a message naming what is wrong, exit 1
    opt_rejected() { # MESSAGE ARGS...
        msg=$1; shift
        run "$nids" "$@"
        [ "$rc" -eq 1 ] || fail "'$*': exit $rc, expected 1"
        grep -q -- "$msg" "$err" || { fail "'$*': stderr lacks '$msg':"; cat "$err"; }
        echo "ok: rejected $* -> $(head -n 1 "$err")"
    }
    opt_rejected "-w: expected a whole number from 1 to 64, not '0'" -w 0 -r "$rules" test.pcap
    opt_rejected "-l: expected a whole number" -l x -r "$rules" test.pcap
    opt_rejected "--idle: expected a whole number from 1 to 86400, not '-5'" --idle -5 -r "$rules" test.pcap
    opt_rejected "--max-flows: expected a whole number" --max-flows 1e6 -r "$rules" test.pcap
    opt_rejected "unknown option '--bogus'" --bogus -r "$rules" test.pcap
    opt_rejected "-r needs a value" test.pcap -r
    opt_rejected "no rule file" test.pcap
    opt_rejected "give exactly one input" -r "$rules" test.pcap -g test
    opt_rejected "give exactly one input" -r "$rules"
    opt_rejected "more than one input file" -r "$rules" test.pcap test.pcap
    opt_rejected "unknown generator scenario 'nope'" -r "$rules" -g nope
    if ! "$nids" --libpcap 2>&1 | grep -q 'built without libpcap'; then
        opt_rejected "^nids: --filter .udp port.: " -r "$rules" --libpcap --filter "udp port" test.pcap
        opt_rejected "--filter works on what libpcap reads" -r "$rules" --filter udp test.pcap
        opt_rejected "nids: no-such-if0: cannot capture" -r "$rules" -i no-such-if0
    else
        opt_rejected "built without libpcap" -r "$rules" -i lo
        opt_rejected "built without libpcap" -r "$rules" --libpcap test.pcap
    fi
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
