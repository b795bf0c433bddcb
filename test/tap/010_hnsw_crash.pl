# Crash: concurrent inserts, kill -9 of every server process, restart. Then every committed row
# is found through the index and hnsw_check reports 0 unreachable elements.
#
# A primary (wal_level replica, and Cluster.pm's 1 MB of shared_buffers for streaming nodes, so
# index pages are evicted and read back all the time) with a table of 32-dimension vectors and
# an hnsw index built on 2,000 rows. Two rounds:
#   1. three sessions insert rows one per transaction (known ids: row i holds test_vector(i, 32))
#      while a fourth runs index searches; once 1,500 rows went in, the committed ids are read,
#      and every server process is SIGKILLed (MeridianTest::crash_node) mid-load;
#   2. the same with two sessions that insert rows and delete the row they inserted 100 rows
#      earlier (one transaction per row), one deleting 1,500 of the older rows, one running
#      VACUUM over and over (the crash is aimed at its index pass) and one searching.
# After each restart (crash recovery): the rows are exactly those of the committed transactions
# (each session's rows are checked id by id, none lost, none resurrected, none extra), every row
# holds its exact vector, and every row is found by an index scan for its own vector (high
# hnsw.ef_search). Then the index takes inserts and VACUUM again: afterwards hnsw_check reports no
# unreachable element, its live elements are exactly the table's rows, no deleted element is
# left, and every row is still found. hnsw_check's unreachable counts live elements only (deleted
# ones are unlinked by VACUUM on purpose), so it must be 0 right after recovery too.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MeridianTest
  qw(crash_node create_test_vector_function hnsw_check index_finds_every_row);

my $dims = 32;
my $initial = 2000;
my $lookup_ef = 200;    # hnsw.ef_search of the self-lookups

my $node = PostgreSQL::Test::Cluster->new('primary');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', "autovacuum = off\nlog_statement = none\nmax_connections = 20\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION meridian');
create_test_vector_function($node);

$node->safe_psql(
	'postgres', qq{
	CREATE TABLE items (id int PRIMARY KEY, v vector($dims) NOT NULL);
	INSERT INTO items SELECT i, test_vector(i, $dims) FROM generate_series(1, $initial) AS i;
	CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops) WITH (m = 16, ef_construction = 64);

	-- Rows first..last, one transaction each.
	CREATE PROCEDURE insert_rows(first int, last int) LANGUAGE plpgsql AS \$\$
	BEGIN
		FOR i IN first .. last LOOP
			INSERT INTO items VALUES (i, test_vector(i, $dims));
			COMMIT;
		END LOOP;
	END \$\$;

	-- Rows first..last, one transaction each, which also deletes the row inserted lag rows earlier.
	CREATE PROCEDURE insert_delete_rows(first int, last int, lag int) LANGUAGE plpgsql AS \$\$
	BEGIN
		FOR i IN first .. last LOOP
			INSERT INTO items VALUES (i, test_vector(i, $dims));
			DELETE FROM items WHERE id = i - lag AND i - lag >= first;
			COMMIT;
		END LOOP;
	END \$\$;

	-- n of the rows outside ids 400001..599999, in a fixed pseudo-random order, one transaction each.
	CREATE PROCEDURE delete_rows(n int) LANGUAGE plpgsql AS \$\$
	DECLARE r record;
	BEGIN
		FOR r IN SELECT id FROM items WHERE id NOT BETWEEN 400001 AND 599999 ORDER BY hashint4(id), id LIMIT n LOOP
			DELETE FROM items WHERE id = r.id;
			COMMIT;
		END LOOP;
	END \$\$;

	-- n top-10 searches through the index; each must return 10 rows. (A transaction each, like
	-- the other procedures, so none holds back the xmin horizon and VACUUM removes dead rows.)
	CREATE PROCEDURE search(seed int, n int) LANGUAGE plpgsql AS \$\$
	DECLARE found int;
	BEGIN
		FOR i IN 1 .. n LOOP
			SELECT count(*) INTO found
			FROM (SELECT id FROM items ORDER BY v <-> test_vector(seed + i, $dims) LIMIT 10) AS s;
			IF found <> 10 THEN
				RAISE EXCEPTION 'search % returned % rows', i, found;
			END IF;
			COMMIT;
		END LOOP;
	END \$\$;

	-- Looks up to `tries` times for a VACUUM of items in its index pass; returns its phase then.
	CREATE PROCEDURE wait_for_index_vacuum(tries int, INOUT phase text) LANGUAGE plpgsql AS \$\$
	BEGIN
		FOR i IN 1 .. tries LOOP
			SELECT p.phase INTO phase FROM pg_stat_progress_vacuum p WHERE p.relid = 'items'::regclass;
			EXIT WHEN phase = 'vacuuming indexes';
			COMMIT;
		END LOOP;
		phase := coalesce(phase, 'none');
	END \$\$;
});
is($node->safe_psql('postgres', 'SELECT count(*) FROM items'), $initial, "$initial rows before the load");
my $c = hnsw_check($node, 'items_v_idx');
note "after the build: $c->{row}";
is($c->{unreachable}, 0, 'after the build: every element reachable');
like(
	$node->safe_psql('postgres',
		"SET enable_seqscan = off; EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY v <-> test_vector(1, $dims) LIMIT 10"
	),
	qr/Index Scan using items_v_idx/,
	'the searches of the load are index scans');

# Starts a psql session running $sql in the background (after the given SET commands).
sub start_session
{
	my ($sql) = @_;
	my $h = $node->background_psql('postgres', on_error_stop => 1);
	$h->query_until(qr/started/, "SET enable_seqscan = off;\nSET hnsw.ef_search = 40;\n\\echo started\n$sql\n");
	return $h;
}

# Ids of the table, as a hash set.
sub ids_in
{
	my ($text) = @_;
	chomp $text;
	return { map { $_ => 1 } split /,/, $text };
}
my $ids_sql = q{SELECT coalesce(string_agg(id::text, ','), '') FROM items};

# The ids of $set in [first, last], ascending.
sub ids_between
{
	my ($set, $first, $last) = @_;
	return sort { $a <=> $b } grep { $_ >= $first && $_ <= $last } keys %$set;
}

# What one session's rows must look like at any moment, given that it committed rows up to
# $max (0: none): insert_rows leaves first..max, insert_delete_rows the last $lag of them.
sub expected_window
{
	my ($range, $max, $lag) = @_;
	return () unless $max;
	my $from = $range->[0];
	$from = $max - $lag + 1 if defined $lag && $max - $lag + 1 > $from;
	return ($from .. $max);
}

# How many leading ids of @$order are missing from $set, and whether any later one is missing.
sub deleted_prefix
{
	my ($order, $set) = @_;
	my $k = 0;
	$k++ while $k < @$order && !$set->{ $order->[$k] };
	my @holes = grep { !$set->{$_} } @$order[ $k .. $#$order ];
	return ($k, scalar @holes);
}

# Crash, restart, and check what the crash claims (see the header). $before: the ids committed
# when the crash was decided. $load describes what the load did, so that the rows after the crash
# can be checked exactly: old => ids there at the start of the round, deleted by the deleting
# session in the order delete_order (a prefix of it is gone); ranges => one [first, last] per
# inserting session, with lag => L when that session also deletes the row it inserted L rows
# earlier (in the same transaction).
sub crash_and_check
{
	my ($label, $sessions, $monitor, $before, $load) = @_;

	my $killed = crash_node($node);
	cmp_ok($killed, '>', 5, "$label: SIGKILL hit the postmaster and its children");
	eval { $_->quit } for @$sessions, $monitor;

	my $log_offset = -s $node->logfile;
	$node->start;
	ok( $node->log_contains(
			'database system was not properly shut down; automatic recovery in progress', $log_offset),
		"$label: the restart ran crash recovery");

	my $now = ids_in($node->safe_psql('postgres', $ids_sql));

	# Rows of the inserting sessions: exactly the committed prefix (or window), which reaches at
	# least as far as before the crash.
	my %explained;
	my ($sessions_ok, $durable, $inserted_after) = (1, 1, 0);
	for my $range (@{ $load->{ranges} })
	{
		my @b = ids_between($before, @$range);
		my @n = ids_between($now, @$range);
		my ($max_b, $max_n) = (@b ? $b[-1] : 0, @n ? $n[-1] : 0);
		$durable = 0 if $max_n < $max_b;
		$inserted_after += $max_n - $max_b;
		my @want = expected_window($range, $max_n, $load->{lag});
		if ("@n" ne "@want" || "@b" ne join(' ', expected_window($range, $max_b, $load->{lag})))
		{
			$sessions_ok = 0;
			diag "$label: session [@$range]: " . scalar(@n) . " rows up to $max_n, want " . scalar(@want);
		}
		$explained{$_} = 1 for @n;
	}
	ok($durable, "$label: every row an inserting session committed before the crash is there");
	ok($sessions_ok, "$label: each inserting session's rows are exactly those of its committed transactions");

	# The rows there before the load: all but a prefix of the deleting session's order, and that
	# prefix at least as long as before the crash.
	my $order = $load->{delete_order} // [];
	my ($k_before, $holes_before) = deleted_prefix($order, $before);
	my ($k_now, $holes_now) = deleted_prefix($order, $now);
	my %deletable = map { $_ => 1 } @$order;
	my @lost = grep { !$deletable{$_} && !$now->{$_} } @{ $load->{old} };
	is(scalar(@lost), 0, "$label: every row from before the load that was not deleted is there")
	  or diag "lost: @lost[0 .. ($#lost < 19 ? $#lost : 19)]";
	ok($holes_before == 0 && $holes_now == 0 && $k_now >= $k_before,
		"$label: the deleted rows are the first of the deleting session's order, no fewer than before the crash");
	note "$label: deleted rows $k_before before the crash decision, $k_now after recovery" if @$order;
	$explained{$_} = 1 for grep { $now->{$_} } @{ $load->{old} };
	my @unexplained = grep { !$explained{$_} } keys %$now;
	is(scalar(@unexplained), 0, "$label: no row the load did not write");

	is($node->safe_psql('postgres', "SELECT count(*) FROM items WHERE v <> test_vector(id, $dims)"),
		0, "$label: every row holds its exact vector");
	my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
	note "$label: $rows rows after recovery; the inserting sessions committed $inserted_after more "
	  . "rows between the crash decision and the crash";

	my $after = hnsw_check($node, 'items_v_idx');
	note "$label, after recovery: $after->{row}";
	# Live elements include those of rows the crash aborted (VACUUM removes them later): every
	# one of them was published together with a link to it, so none may be unreachable.
	cmp_ok($after->{elements}, '>=', $rows, "$label: an element for every row (and aborted ones)");
	is($after->{unreachable}, 0, "$label: hnsw_check right after recovery: every live element reachable");
	index_finds_every_row($node, 'items', $lookup_ef, "$label, after recovery");
	return $rows;
}

# VACUUM, then the index must hold exactly the table's rows.
sub vacuum_and_check
{
	my ($label) = @_;
	$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) items');
	my $rows = $node->safe_psql('postgres', 'SELECT count(*) FROM items');
	my $c = hnsw_check($node, 'items_v_idx');
	note "$label: $c->{row}";
	is($c->{live}, $rows, "$label: one live element per row");
	is($c->{deleted}, 0, "$label: no deleted element left");
	is($c->{unreachable}, 0, "$label: every element reachable");
	return $c;
}

# ---- round 1: three inserting sessions and a searching one ----
my @ranges1 = map { [ 100000 * $_ + 1, 100000 * $_ + 99999 ] } 1 .. 3;
my @sessions = map { start_session("CALL insert_rows($_->[0], $_->[1]);") } @ranges1;
push @sessions, start_session('CALL search(1000000, 1000000);');
$node->poll_query_until('postgres', 'SELECT count(*) >= 1500 FROM items WHERE id > 100000')
  or die 'the load did not insert 1,500 rows';
my $monitor = $node->background_psql('postgres');
my $before = ids_in($monitor->query_safe($ids_sql));
my $rows = crash_and_check('round 1', \@sessions, $monitor, $before,
	{ old => [ 1 .. $initial ], ranges => \@ranges1 });
cmp_ok($rows, '<', $initial + 3 * 99999, 'round 1: the crash came in the middle of the load');
ok(!$node->log_contains('search \d+ returned'), 'round 1: every search during the load returned 10 rows');

# The recovered index takes inserts and VACUUM.
$node->safe_psql('postgres', "CALL insert_rows(900001, 900500)");
vacuum_and_check('round 1, after recovery, inserts and VACUUM');
index_finds_every_row($node, 'items', $lookup_ef, 'round 1, after inserts and VACUUM');

# ---- round 2: inserts, deletes and VACUUM at the same time ----
# Two sessions insert rows and delete the row they inserted 100 rows earlier, one deletes 1,500
# of the rows already there (elements of the build and of round 1, the entry point among the
# candidates), one runs VACUUM, one searches.
my $log_offset = -s $node->logfile;
my $old = [ sort { $a <=> $b } keys %{ ids_in($node->safe_psql('postgres', $ids_sql)) } ];
my $delete_order = [
	split /,/,
	$node->safe_psql('postgres',
		q{SELECT string_agg(id::text, ',' ORDER BY hashint4(id), id) FROM
		  (SELECT id FROM items WHERE id NOT BETWEEN 400001 AND 599999 ORDER BY hashint4(id), id LIMIT 1500) AS s})
];
my @ranges2 = map { [ 100000 * $_ + 1, 100000 * $_ + 99999 ] } 4 .. 5;
@sessions = map { start_session("CALL insert_delete_rows($_->[0], $_->[1], 100);") } @ranges2;
push @sessions, start_session('CALL delete_rows(1500);');
push @sessions, start_session('CALL search(2000000, 1000000);');
# INDEX_CLEANUP ON: with the few dead rows the load leaves between two VACUUMs, VACUUM would
# otherwise skip the index pass (its 2% bypass).
push @sessions, start_session("VACUUM (INDEX_CLEANUP ON) items;\n" x 1000);
$node->poll_query_until('postgres',
	'SELECT count(*) FILTER (WHERE id BETWEEN 400001 AND 599999) >= 200 '
	  . 'AND (SELECT count(*) FROM items) <= ' . (scalar(@$old) + 200 - 500) . ' FROM items')
  or die 'the load did not insert 200 rows and delete 500 of the old ones';
$monitor = $node->background_psql('postgres');
$before = ids_in($monitor->query_safe($ids_sql));
# Aim at VACUUM's index pass: look for it (a bounded number of times, the crash comes anyway).
my $phase = $monitor->query_safe("CALL wait_for_index_vacuum(100000, NULL)");
chomp $phase;
note "round 2: crashing while VACUUM is in phase: $phase";
crash_and_check('round 2', \@sessions, $monitor, $before,
	{ old => $old, delete_order => $delete_order, ranges => \@ranges2, lag => 100 });
ok(!$node->log_contains('search \d+ returned', $log_offset), 'round 2: every search during the load returned 10 rows');

$node->safe_psql('postgres', "CALL insert_rows(900501, 901000)");
vacuum_and_check('round 2, after recovery, inserts and VACUUM');
index_finds_every_row($node, 'items', $lookup_ef, 'round 2, after inserts and VACUUM');

$node->stop;
done_testing();
