# Churn: delete 30% of the rows, VACUUM, reinsert. Recall on a fixed query set stays within
# 0.02 of the fresh build.
#
# 5,000 rows of 32-dimension pseudo-random vectors (test_vector, deterministic) and an hnsw index
# built with one thread, all writes from one session: the graph, and every number below, is the
# same in every run. recall@10 of 200 fixed queries against the exact top 10 (a sequential scan)
# at the default hnsw.ef_search (40, where recall is below 1 and graph quality shows) is R0. Then
# three rounds of: delete 1,500 rows (a deterministic choice), VACUUM, insert 1,500 new rows with
# new vectors, recompute the exact top 10 and the recall R_i with the same hnsw.ef_search. Each
# R_i must be >= R0 - 0.02; hnsw_check must show a clean graph (no unreachable element, no
# deleted element left after VACUUM, every freed slot reused by the reinserts), and the index
# must find every row by its own vector. For reference the output also shows, per round, the
# recall of a fresh build of the same rows. (200 queries, not 50: with 500 results the recall of
# one data set moves by about 0.01 from one query set to another, half the tolerance.)
#
# MERIDIAN_CHURN_ROUNDS overrides the number of rounds.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MeridianTest qw(create_test_vector_function hnsw_check index_finds_every_row);

my $rows = 5000;
my $dims = 32;
my $churn = 1500;    # 30% of the rows
my $rounds = $ENV{MERIDIAN_CHURN_ROUNDS} // 3;
my $queries = 200;
my $k = 10;
my $ef_search = 40;    # the default of hnsw.ef_search
my $tolerance = 0.02;

my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf('postgresql.conf', "autovacuum = off\nlog_statement = none\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION meridian');
create_test_vector_function($node);
$node->safe_psql(
	'postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, v vector($dims) NOT NULL);
	INSERT INTO items SELECT i, test_vector(i, $dims) FROM generate_series(1, $rows) AS i;
	CREATE TABLE queries (qid int PRIMARY KEY, v vector($dims) NOT NULL);
	INSERT INTO queries SELECT q, test_vector(1000000 + q, $dims) FROM generate_series(1, $queries) AS q;
	SET hnsw.build_threads = 1;
	CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64);
	ANALYZE items;
});

# The top-k query, once as an index scan and once as the exact answer (no index).
sub knn_sql
{
	my ($table) = @_;
	return "SELECT q.qid, nn.id FROM queries q CROSS JOIN LATERAL "
	  . "(SELECT id FROM $table ORDER BY v <-> q.v LIMIT $k) AS nn";
}
my $knn = knn_sql('items');
my $index_settings = "SET enable_seqscan = off; SET hnsw.ef_search = $ef_search;";
my $exact_settings = "SET enable_indexscan = off; SET enable_bitmapscan = off;";

like(
	$node->safe_psql('postgres', "$index_settings EXPLAIN (COSTS OFF) $knn"),
	qr/Index Scan using items_v_idx on items/,
	'the approximate top-k query is an hnsw index scan');
unlike(
	$node->safe_psql('postgres', "$exact_settings EXPLAIN (COSTS OFF) $knn"),
	qr/items_v_idx/, 'the exact top-k query does not use the index');

# recall@k of the index: found true neighbours / (queries * k), with the exact answer from a
# sequential scan. Also checks that the index returns k rows for every query.
sub recall
{
	my ($label, $table) = @_;
	my $knn = knn_sql($table // 'items');
	my $out = $node->safe_psql(
		'postgres', qq{
		$exact_settings
		CREATE TEMP TABLE truth AS $knn;
		RESET enable_indexscan; RESET enable_bitmapscan;
		$index_settings
		CREATE TEMP TABLE approx AS $knn;
		SELECT (SELECT count(*) FROM truth), (SELECT count(*) FROM approx),
		       (SELECT count(*) FROM truth JOIN approx USING (qid, id));
	});
	my ($n_truth, $n_approx, $hits) = split /\|/, $out;
	is($n_truth, $queries * $k, "$label: the exact answer has $k rows per query");
	is($n_approx, $queries * $k, "$label: the index returns $k rows per query");
	my $r = $hits / ($queries * $k);
	note sprintf("%s: recall\@%d = %.4f (%d of %d, hnsw.ef_search = %d)",
		$label, $k, $r, $hits, $queries * $k, $ef_search);
	return $r;
}

my $c = hnsw_check($node, 'items_v_idx');
note "fresh build: $c->{row}";
is($c->{elements}, $rows, 'fresh build: every row is an element');
is($c->{live}, $rows, 'fresh build: every element is live');
is($c->{unreachable}, 0, 'fresh build: every element is reachable from the entry point');
cmp_ok($c->{max_level}, '>=', 2, 'fresh build: the graph has several levels');

my $r0 = recall('fresh build');
cmp_ok($r0, '>=', 0.9, 'fresh build: recall is that of a working index');
index_finds_every_row($node, 'items', 100, 'fresh build');

my @recalls = ($r0);
my $next_id = $rows;
for my $round (1 .. $rounds)
{
	my $before = hnsw_check($node, 'items_v_idx');

	# A deterministic 30%: the rows whose ids hash lowest (a different hash each round).
	is( $node->safe_psql(
			'postgres', qq{
			WITH gone AS (
				DELETE FROM items WHERE id IN
					(SELECT id FROM items ORDER BY hashint4(id + $round * 1000003), id LIMIT $churn)
				RETURNING id)
			SELECT count(*) FROM gone}),
		$churn,
		"round $round: deleted $churn rows");
	$node->safe_psql('postgres', 'VACUUM items');

	my $vac = hnsw_check($node, 'items_v_idx');
	note "round $round after VACUUM: $vac->{row}";
	is($vac->{deleted}, 0, "round $round: no deleted element left after VACUUM");
	is($vac->{live}, $rows - $churn, "round $round: live elements after VACUUM = remaining rows");
	is($vac->{elements}, $rows - $churn, "round $round: elements after VACUUM = remaining rows");
	is($vac->{unreachable}, 0, "round $round: every element reachable after VACUUM");
	is($vac->{free_slots}, $before->{free_slots} + $churn, "round $round: VACUUM freed one slot per deleted row");

	# Reinsert as many rows, with new ids and new vectors, one statement per row.
	my $first = $next_id + 1;
	my $last = $next_id + $churn;
	$next_id = $last;
	$node->safe_psql(
		'postgres', qq{
		DO \$\$ BEGIN
			FOR i IN $first .. $last LOOP
				INSERT INTO items VALUES (i, test_vector(i, $dims));
			END LOOP;
		END \$\$});

	my $ins = hnsw_check($node, 'items_v_idx');
	note "round $round after reinsert: $ins->{row}";
	is($node->safe_psql('postgres', 'SELECT count(*) FROM items'), $rows, "round $round: $rows rows again");
	is($ins->{live}, $rows, "round $round: every row is a live element again");
	is($ins->{deleted}, 0, "round $round: no deleted element after reinsert");
	is($ins->{unreachable}, 0, "round $round: every element reachable after reinsert");
	my $left = $vac->{free_slots} - $churn;
	$left = 0 if $left < 0;
	cmp_ok($ins->{free_slots}, '<=', $left, "round $round: the reinserts reused the freed slots");
	cmp_ok($ins->{free_slots}, '<', $vac->{free_slots}, "round $round: free slots decreased after reinsert");

	index_finds_every_row($node, 'items', 100, "round $round");

	my $r = recall("round $round");
	push @recalls, $r;
	cmp_ok($r, '>=', $r0 - $tolerance, "round $round: recall within $tolerance of the fresh build");

	# Reference: the same rows in a freshly built graph (a copy of the table).
	$node->safe_psql(
		'postgres', q{
		DROP TABLE IF EXISTS reference;
		CREATE TABLE reference AS SELECT * FROM items;
		SET hnsw.build_threads = 1;
		CREATE INDEX reference_v_idx ON reference USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64);
		ANALYZE reference;
	});
	my $ref = recall("round $round, same rows in a fresh build (reference)", 'reference');
	note sprintf("round %d: recall %.4f after the churn, %.4f for a fresh build of the same rows",
		$round, $r, $ref);
}

# For reference: the same final rows in a freshly built graph.
$node->safe_psql('postgres', 'SET hnsw.build_threads = 1; REINDEX INDEX items_v_idx');
my $rebuilt = recall('rebuilt after the churn');
note sprintf("recall\@%d: fresh build, then after each round: %s; REINDEX of the final rows: %.4f",
	$k, join(', ', map { sprintf('%.4f', $_) } @recalls), $rebuilt);
is(hnsw_check($node, 'items_v_idx')->{unreachable}, 0, 'rebuilt index: every element reachable');

$node->stop;
done_testing();
