#!/bin/sh
# git.sh - git on a scratch repository in the working directory: init, add,
# commit, branch, merge, log, diff, blame, grep, gc and fsck. No system or
# user configuration is read (GIT_CONFIG_NOSYSTEM, HOME here), and fixed
# names and dates make every commit id the same on every run, so the whole
# output can be compared. Exits 77 when git is not installed.
set -eu
command -v git >/dev/null 2>&1 || { echo "git is not installed"; exit 77; }

HOME=$(pwd)/home
GIT_CONFIG_NOSYSTEM=1
GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=tester@example.org
GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=tester@example.org
LC_ALL=C TZ=UTC
export HOME GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL LC_ALL TZ
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
mkdir -p "$HOME"

when=1700000000
commit() { # message
    when=$((when + 3600))
    GIT_AUTHOR_DATE="@$when +0000" GIT_COMMITTER_DATE="@$when +0000" git commit -q -m "$1"
}

# files N FIRST: writes N source-like files, each line numbered from FIRST.
files() {
    awk -v n="$1" -v first="$2" 'BEGIN {
        for (f = 0; f < n; f++) {
            name = sprintf("src/mod%03d.c", f)
            for (l = 0; l < 40 + f % 30; l++)
                printf "int f%d_%d(int x) { return x * %d + %d; }\n", f, l, (f * 7 + l) % 13, first + l > name
            close(name)
        }
    }'
}

mkdir repo
cd repo
git init -q .
git symbolic-ref HEAD refs/heads/main
git config core.autocrlf false
git config gc.auto 0
mkdir src
files 120 0
printf 'hello\n' >README
git add -A
commit "first: 120 files"
files 120 5
commit_all() { git add -A && commit "$1"; }
commit_all "second: every file changed"
git checkout -q -b topic
for i in 1 2 3 4 5; do
    printf 'topic line %d\n' "$i" >>README
    sed -i "s/return x \* 3/return x * 3 + $i/" src/mod00$i.c
    commit_all "topic $i"
done
git checkout -q main
printf 'main line\n' >NOTES
commit_all "notes on main"
when=$((when + 3600))
GIT_AUTHOR_DATE="@$when +0000" GIT_COMMITTER_DATE="@$when +0000" git merge -q --no-ff -m "merge topic" topic
GIT_COMMITTER_DATE="@$when +0000" git tag -a -m "a tag" v1

echo "== log"
git log --graph --format='%h %s' --all
echo "== diff --stat"
git diff --stat HEAD~3 HEAD | tail -n 4
echo "== show"
git show --format='%H %an %ad' --date=iso-strict topic~2 | head -n 20
echo "== blame"
git blame -s --abbrev=10 src/mod003.c | head -n 5
echo "== grep"
git grep -c 'x \* 3' | head -n 10
echo "== gc, fsck"
git gc -q --aggressive
git fsck --strict --no-progress && echo "fsck ok"
git rev-list --all --objects | wc -l | tr -d ' '
git describe --tags
