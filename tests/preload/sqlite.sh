#!/bin/sh
# sqlite.sh - the sqlite3 shell on a database file in the working
# directory: a few thousand inserts, an index, joins, grouping, updates,
# deletes, a recursive query and a vacuum. The output depends only on the
# generated data. Exits 77 when sqlite3 is not installed.
set -eu
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 is not installed"; exit 77; }
LC_ALL=C
export LC_ALL

awk 'BEGIN {
    seed = 7
    print "PRAGMA journal_mode = WAL;"
    print "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
    print "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, note TEXT);"
    print "BEGIN;"
    for (i = 1; i <= 500; i++)
        printf "INSERT INTO customer VALUES (%d, %cname-%d%c, %ccity-%d%c);\n", i, 39, i, 39, 39, i % 37, 39
    for (i = 1; i <= 6000; i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648
        printf "INSERT INTO orders VALUES (%d, %d, %citem-%d%c, %d, %d.%02d, %c%s%c);\n", i, 1 + seed % 500, 39,
            seed % 211, 39, 1 + seed % 9, seed % 300, seed % 100, 39, substr("abcdefghijklmnopqrstuvwxyz", 1 + seed % 26) \
            sprintf("%0" (seed % 400) "d", 0), 39
        if (i % 1000 == 0) { print "COMMIT;"; print "BEGIN;" }
    }
    print "COMMIT;"
    print "CREATE INDEX orders_customer ON orders(customer);"
    print "CREATE INDEX orders_item ON orders(item, qty);"
    for (i = 0; i < 400; i++)
        printf "SELECT count(*), sum(qty) FROM orders WHERE customer = %d;\n", 1 + (i * 37) % 500
}' >load.sql

sqlite3 -batch test.db <load.sql >load.out
echo "per-customer queries: $(wc -l <load.out | tr -d ' ') lines, checksum $(cksum <load.out | cut -d' ' -f1)"
sqlite3 -batch test.db <<'SQL'
.headers on
.mode list
SELECT count(*) AS orders, sum(qty) AS items, round(sum(qty * price), 2) AS total FROM orders;
SELECT c.city, count(*) AS n, round(avg(o.price), 3) AS avg_price
  FROM orders o JOIN customer c ON c.id = o.customer
  GROUP BY c.city ORDER BY n DESC, c.city LIMIT 8;
SELECT item, sum(qty) AS q FROM orders GROUP BY item HAVING q > 150 ORDER BY q DESC, item LIMIT 5;
UPDATE orders SET note = upper(note) || '!' WHERE qty > 6;
DELETE FROM orders WHERE price < 20;
SELECT count(*), sum(length(note)) FROM orders;
WITH RECURSIVE n(i, s) AS (SELECT 1, '' UNION ALL SELECT i + 1, s || char(65 + i % 26) FROM n WHERE i < 2000)
  SELECT count(*), max(length(s)) FROM n;
SELECT group_concat(name, ',') FROM (SELECT name FROM customer ORDER BY id DESC LIMIT 5);
VACUUM;
PRAGMA integrity_check;
SQL
