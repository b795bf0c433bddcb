# Three regions converge (issue 3 §5): us-east, eu-west and ap-south, each a real PostgreSQL 15
# cluster with its own key and meridian-replicator, take concurrent inserts, updates and deletes
# of the same keys. Afterwards every region has the same rows (meridian.table_checksum, counts)
# and returns the same kNN top-10; the same vectors inserted in two regions at once are one row
# each; region_status shows every stream connected; SIGTERM stops a replicator cleanly.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use MeridianRegions qw(replicator_binary setup_regions start_replicator stop_replicator
  replicator_log wait_converged checksums wait_for_region_status);
use MeridianTest qw(create_test_vector_function);
use PostgreSQL::Test::Utils;
use Test::More;

plan skip_all => "meridian-replicator not built: run make test" unless -x replicator_binary();

my @names = ('us-east', 'eu-west', 'ap-south');
my %node = setup_regions(@names, { table_sql => q{
	CREATE TABLE items (id uuid PRIMARY KEY, embedding vector(8) NOT NULL, payload jsonb, origin text);
	CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);
	SELECT meridian.replicate_table('items');
	CREATE TABLE vecs (id uuid GENERATED ALWAYS AS (meridian.vector_id(embedding)) STORED PRIMARY KEY,
	                   embedding vector(8) NOT NULL, note text);
	SELECT meridian.replicate_table('vecs');
	CREATE TABLE local_only (id uuid PRIMARY KEY, n int);
} });
my @nodes = map { $node{$_} } @names;
create_test_vector_function($_, 'postgres') for @nodes;
start_replicator($_) for @nodes;

for my $n (@nodes)
{
	for my $peer (grep { $_ ne $n->name } @names)
	{
		ok(wait_for_region_status($n, $peer, 'connected AND last_error IS NULL', 60),
			$n->name . " streams from $peer");
	}
}

# --- concurrent inserts, updates and deletes of 300 shared keys, 8 s in every region at once
my $i = 0;
my @load;
for my $n (@nodes)
{
	my $r = $n->name;
	my $script = $n->basedir . "/load.sql";
	$i++;
	PostgreSQL::Test::Utils::append_to_file($script, qq{
\\set k random(1, 300)
\\set op random(1, 10)
\\if :op <= 5
INSERT INTO items (id, embedding, payload, origin)
VALUES (md5(:k::text)::uuid, test_vector(:k * 10 + $i, 8), jsonb_build_object('k', :k, 'op', :op), '$r')
ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, payload = excluded.payload, origin = excluded.origin;
\\elif :op <= 7
UPDATE items SET payload = jsonb_build_object('k', :k, 'by', '$r', 'op', :op) WHERE id = md5(:k::text)::uuid;
\\elif :op <= 8
BEGIN;
INSERT INTO items (id, embedding, payload, origin)
SELECT md5((:k + g)::text)::uuid, test_vector((:k + g) * 10 + $i, 8), jsonb_build_object('batch', :k), '$r'
FROM generate_series(1, 5) g WHERE :k + g <= 300
ON CONFLICT (id) DO NOTHING;
INSERT INTO local_only VALUES (gen_random_uuid(), :k);
COMMIT;
\\else
DELETE FROM items WHERE id = md5(:k::text)::uuid;
\\endif
});
	push @load, IPC::Run::start(
		[ 'pgbench', '-n', '-T', '8', '-c', '1', '--max-tries=20', '-f', $script, '-h', $n->host, '-p', $n->port, 'postgres' ],
		'>', \my $out, '2>', \my $err);
}
ok($_->finish, 'pgbench load ran through') for @load;

ok(wait_converged(\@nodes, 'items', 90), 'items converge in all three regions')
  or diag explain checksums(\@nodes, 'items');
my @counts = map { $_->safe_psql('postgres', 'SELECT count(*) FROM items') } @nodes;
is_deeply([ @counts[1, 2] ], [ $counts[0], $counts[0] ], "the same row count everywhere ($counts[0])");
cmp_ok($counts[0], '>', 50, 'the load left rows behind');
my @local = map { $_->safe_psql('postgres', 'SELECT count(*) FROM local_only') } @nodes;
is(scalar(grep { $_ > 0 } @local), 3, 'tables that are not replicated stay local (each region has its own rows)');
my $foreign = $node{'us-east'}->safe_psql('postgres',
	"SELECT count(DISTINCT origin) FROM items");
cmp_ok($foreign, '>=', 2, "us-east holds rows written in other regions ($foreign origins)");

# The same kNN top-10 everywhere, for 20 fixed queries, through the hnsw index (ef_search large
# enough to be exact on a few hundred rows), and equal to the exact answer.
my $knn = q{
	SET enable_seqscan = off; SET hnsw.ef_search = 400;
	SELECT string_agg(ids, ' ' ORDER BY q) FROM (
		SELECT q, (SELECT string_agg(id::text, ',' ORDER BY embedding <-> test_vector(q, 8), id)
		           FROM (SELECT id, embedding FROM items ORDER BY embedding <-> test_vector(q, 8) LIMIT 10) t) AS ids
		FROM generate_series(100001, 100020) q) s;
};
my @tops = map { $_->safe_psql('postgres', $knn) } @nodes;
is($tops[1], $tops[0], 'eu-west returns the kNN top-10 of us-east');
is($tops[2], $tops[0], 'ap-south returns the kNN top-10 of us-east');
my $exact = $node{'us-east'}->safe_psql('postgres', $knn =~ s/SET enable_seqscan = off;/SET enable_indexscan = off;/r);
is($tops[0], $exact, 'and that is the exact top-10');

# --- the same vectors inserted in two regions at once are one row each (an application that
# uses content ids inserts with ON CONFLICT DO NOTHING: a copy may already have arrived)
my @twice;
for my $r ('us-east', 'eu-west')
{
	push @twice, IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', $node{$r}->host, '-p', $node{$r}->port, '-d', 'postgres',
		  '-c', "INSERT INTO vecs (embedding, note) SELECT test_vector(g, 8), 'from $r' FROM generate_series(1, 200) g ON CONFLICT (id) DO NOTHING" ],
		'>', \my $o, '2>', \my $e);
}
ok($_->finish, 'insert of the same 200 vectors') for @twice;
ok(wait_converged(\@nodes, 'vecs', 60), 'vecs converge') or diag explain checksums(\@nodes, 'vecs');
is_deeply([ map { $_->safe_psql('postgres', 'SELECT count(*) FROM vecs') } @nodes ], [ 200, 200, 200 ],
	'200 vectors inserted in two regions are 200 rows in each region');
# A key the local session inserted after the apply looked it up is resolved, not a failed apply
# (the race itself is stepped through in 062_apply_races.pl and the isolation test).
for my $n (@nodes)
{
	unlike(PostgreSQL::Test::Utils::slurp_file(replicator_log($n)), qr/duplicate key value/,
		$n->name . ': no apply failed with a unique violation');
}

# --- progress is visible, and SIGTERM stops each replicator cleanly (polled: a stream may still
# be catching up after the load above)
for my $n (@nodes)
{
	ok($n->poll_query_until('postgres',
			"SELECT count(*) = 2 FROM meridian.region_status WHERE connected AND applied_lsn IS NOT NULL AND last_heartbeat IS NOT NULL"),
		$n->name . ': region_status shows both peers connected, with progress and heartbeats');
}
for my $n (@nodes)
{
	is(stop_replicator($n), 0, $n->name . ': replicator exits 0 on SIGTERM');
	like(PostgreSQL::Test::Utils::slurp_file(replicator_log($n)), qr/stopped$/m, 'and logs that it stopped');
}
ok(wait_for_region_status($node{'us-east'}, 'eu-west', 'NOT connected', 10),
	'after the stop, region_status shows the stream disconnected');

done_testing();
