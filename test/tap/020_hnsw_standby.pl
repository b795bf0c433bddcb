# Standby: streaming replica built with pg_basebackup; after deletes, VACUUM and inserts on the
# primary, it returns the primary's top-10 exactly.
#
# A primary with 4,000 rows of 32-dimension vectors and an hnsw index; a streaming standby from a
# base backup (pg_basebackup); on the primary, 20% of the rows deleted, VACUUM (which unlinks and
# frees their elements), 1,000 new rows inserted. Once the standby has replayed it all, for 20
# fixed query vectors the top 10 ids (SET hnsw.ef_search) of the standby's index scans equal the
# primary's, query by query, and hnsw_check reports the same graph on both. The top 10 themselves
# are checked too: 10 rows each, no deleted row, close to the exact answer. Then the standby is
# crashed (every process SIGKILLed), the primary deletes, vacuums and inserts again, and the
# restarted standby catches up and matches again.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MeridianTest qw(crash_node create_test_vector_function hnsw_check);

my $dims = 32;
my $rows = 4000;
my $queries = 20;
my $ef_search = 64;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "autovacuum = off\nlog_statement = none\nshared_buffers = 16MB\n");
$primary->start;

$primary->safe_psql('postgres', 'CREATE EXTENSION meridian');
create_test_vector_function($primary);
$primary->safe_psql(
	'postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, v vector($dims) NOT NULL);
	INSERT INTO items SELECT i, test_vector(i, $dims) FROM generate_series(1, $rows) AS i;
	CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64);
	CREATE TABLE queries (qid int PRIMARY KEY, v vector($dims) NOT NULL);
	INSERT INTO queries SELECT q, test_vector(3000000 + q, $dims) FROM generate_series(1, $queries) AS q;
	-- Rows first..last, one transaction each.
	CREATE PROCEDURE insert_rows(first int, last int) LANGUAGE plpgsql AS \$\$
	BEGIN
		FOR i IN first .. last LOOP
			INSERT INTO items VALUES (i, test_vector(i, $dims));
			COMMIT;
		END LOOP;
	END \$\$;
});

# A standby from a base backup taken now.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# Per query, in qid order: "qid|{id,...}", the ids in the order the index scan returns them.
my $settings = "SET enable_seqscan = off; SET hnsw.ef_search = $ef_search;";
my $topk_sql = "$settings SELECT qid, ARRAY(SELECT id FROM items ORDER BY v <-> q.v LIMIT 10) FROM queries q ORDER BY qid";
# The exact answer (no index), in the same form.
my $exact_sql = "SET enable_indexscan = off; SET enable_bitmapscan = off; "
  . "SELECT qid, ARRAY(SELECT id FROM items ORDER BY v <-> q.v, id LIMIT 10) FROM queries q ORDER BY qid";

# Delete a deterministic $n of the rows (a different choice per $salt), one transaction.
sub delete_rows
{
	my ($n, $salt) = @_;
	my $deleted = $primary->safe_psql(
		'postgres', qq{
		WITH gone AS (DELETE FROM items WHERE id IN
			(SELECT id FROM items ORDER BY hashint4(id + $salt), id LIMIT $n) RETURNING id)
		SELECT string_agg(id::text, ',') FROM gone});
	return split /,/, $deleted;
}

my %deleted;

# Compare the standby with the primary, and check the primary's answers themselves.
sub compare
{
	my ($label, $expected_rows) = @_;
	$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

	is($standby->safe_psql('postgres', 'SELECT count(*) FROM items'), $expected_rows, "$label: the standby has $expected_rows rows");
	like(
		$standby->safe_psql('postgres', "$settings EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> test_vector(1, $dims) LIMIT 10"),
		qr/Index Scan using items_v_idx on items/,
		"$label: the standby answers with an hnsw index scan");

	my @p = split /\n/, $primary->safe_psql('postgres', $topk_sql);
	my @s = split /\n/, $standby->safe_psql('postgres', $topk_sql);
	my @x = split /\n/, $primary->safe_psql('postgres', $exact_sql);
	is(scalar(@p), $queries, "$label: the primary answered $queries queries");
	is(scalar(@s), $queries, "$label: the standby answered $queries queries");
	my ($hits, $ten, $clean) = (0, 0, 1);
	for my $i (0 .. $queries - 1)
	{
		is($s[$i], $p[$i], "$label: query " . ($i + 1) . ': the standby\'s top 10 are the primary\'s');
		my ($qid, $ids) = split /\|/, $p[$i];
		my @ids = $ids =~ /(\d+)/g;
		$ten++ if @ids == 10;
		$clean = 0 if grep { $deleted{$_} } @ids;
		my (undef, $exact) = split /\|/, $x[$i];
		my %truth = map { $_ => 1 } $exact =~ /(\d+)/g;
		$hits += grep { $truth{$_} } @ids;
	}
	is($ten, $queries, "$label: every top 10 has 10 rows");
	ok($clean, "$label: no deleted row in any top 10");
	my $recall = $hits / ($queries * 10);
	note sprintf('%s: recall@10 of the primary\'s (and standby\'s) answers: %.3f', $label, $recall);
	cmp_ok($recall, '>=', 0.9, "$label: the answers are close to the exact ones");

	my $pc = hnsw_check($primary, 'items_v_idx');
	my $sc = hnsw_check($standby, 'items_v_idx');
	note "$label: primary $pc->{row}";
	is($sc->{row}, $pc->{row}, "$label: hnsw_check reports the same graph on the standby");
	is($pc->{live}, $expected_rows, "$label: one live element per row");
	is($pc->{deleted}, 0, "$label: no deleted element after VACUUM");
	is($pc->{unreachable}, 0, "$label: every element reachable");
	return $pc;
}

my $c0 = hnsw_check($primary, 'items_v_idx');
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is(hnsw_check($standby, 'items_v_idx')->{row}, $c0->{row}, 'after the backup: the same graph on both nodes');

# Deletes (20%), VACUUM, inserts (single-row transactions and one bulk statement).
$deleted{$_} = 1 for delete_rows(800, 1);
is(scalar(keys %deleted), 800, 'deleted 800 rows on the primary');
$primary->safe_psql('postgres', 'VACUUM items');
$primary->safe_psql('postgres', 'CALL insert_rows(100001, 100500)');
$primary->safe_psql('postgres',
	"INSERT INTO items SELECT i, test_vector(i, $dims) FROM generate_series(100501, 101000) AS i");
my $c1 = compare('after deletes, VACUUM and inserts', $rows - 800 + 1000);
cmp_ok($c1->{free_slots}, '<', $c0->{free_slots} + 800, 'the inserts reused slots VACUUM freed');

# Crash the standby; the primary goes on meanwhile; the standby recovers and catches up.
my $standby_log = -s $standby->logfile;
cmp_ok(crash_node($standby), '>', 1, 'SIGKILL hit the standby\'s postmaster and its children');
my @more = delete_rows(600, 2);
$deleted{$_} = 1 for @more;
is(scalar(@more), 600, 'deleted 600 more rows on the primary while the standby is down');
$primary->safe_psql('postgres', 'VACUUM items');
$primary->safe_psql('postgres', 'CALL insert_rows(200001, 200300)');
$standby->start;
ok($standby->log_contains('database system was interrupted while in recovery', $standby_log),
	'the standby ran crash recovery');
compare('after a standby crash', $rows - 800 + 1000 - 600 + 300);

# And once more while it streams: the standby replays VACUUM's changes live.
$deleted{$_} = 1 for delete_rows(400, 3);
$primary->safe_psql('postgres', 'VACUUM items');
$primary->safe_psql('postgres', 'CALL insert_rows(300001, 300200)');
compare('after more deletes, VACUUM and inserts', $rows - 800 + 1000 - 600 + 300 - 400 + 200);

$standby->stop;
$primary->stop;
done_testing();
