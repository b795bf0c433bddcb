# Streaming replication and crash recovery of a table with Meridian data.
#
# A primary with CREATE EXTENSION meridian and a table of vectors; a streaming standby made
# from a base backup; rows inserted after the backup must reach the standby unchanged; then
# the primary and later the standby are killed with SIGKILL (every process of the cluster at
# once) and restarted: committed rows survive, an uncommitted transaction does not, and
# replication resumes. Last, the standby made synchronous: a commit of vectors waits for it.
# This is also the template for the test/tap/0NN_hnsw_*.pl tests.
use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use MeridianTest qw(crash_node);

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;

$primary->safe_psql('postgres', 'CREATE EXTENSION meridian');
is( $primary->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'meridian'"),
	'0.1.0',
	'extension meridian is installed');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pg_namespace WHERE nspname = 'meridian'"),
	'1', 'schema meridian exists');

is($primary->safe_psql('postgres', "SELECT '[1,2,3]'::vector(3)"), '[1,2,3]', 'the vector type works');

# Row i holds the vector [i, 2i, i mod 7].
sub rows_sql
{
	my ($from, $to) = @_;
	return "INSERT INTO items SELECT i, ('[' || i || ',' || 2 * i || ',' || i % 7 || ']')::vector(3) "
	  . "FROM generate_series($from, $to) AS i";
}

# Everything a node holds, as one comparable line: row count, id range, and a digest of
# every row's text form in id order.
my $snapshot_sql = q{
	SELECT count(*) || ' ' || coalesce(min(id), 0) || '..' || coalesce(max(id), 0) || ' '
	       || md5(coalesce(string_agg(id || '=' || embedding::text, ';' ORDER BY id), ''))
	FROM items};

$primary->safe_psql('postgres', 'CREATE TABLE items (id int PRIMARY KEY, embedding vector(3) NOT NULL)');
$primary->safe_psql('postgres', rows_sql(1, 100));

# A streaming standby from a base backup taken now.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# Rows written after the backup arrive by streaming.
$primary->safe_psql('postgres', rows_sql(101, 200));
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));

my $expected = $primary->safe_psql('postgres', $snapshot_sql);
like($expected, qr/^200 1\.\.200 [0-9a-f]{32}$/, 'primary holds rows 1..200');
is($standby->safe_psql('postgres', $snapshot_sql), $expected, 'standby holds the same rows as the primary');
is($standby->safe_psql('postgres', 'SELECT embedding FROM items WHERE id = 150'),
	'[150,300,3]', 'a vector inserted after the backup reads back exactly on the standby');
# The 5 nearest neighbours of [50,100,1] by L2 distance (a sequential scan): row 50 itself,
# then rows 49 and 51 (distance sqrt(1+4+1) each), 52 (sqrt(4+16+4)) and 48 (sqrt(4+16+25)).
my $knn_sql = q{SELECT string_agg(id::text, ',' ORDER BY d, id)
	FROM (SELECT id, embedding <-> '[50,100,1]' AS d FROM items ORDER BY d, id LIMIT 5) AS nn};
is($primary->safe_psql('postgres', $knn_sql), '50,49,51,52,48', 'nearest neighbours on the primary');
is($standby->safe_psql('postgres', $knn_sql), '50,49,51,52,48', 'nearest neighbours on the standby');
is( $standby->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'meridian'"),
	'0.1.0',
	'the extension is visible on the standby');
my ($rc, $stdout, $stderr) = $standby->psql('postgres', rows_sql(1000, 1000));
isnt($rc, 0, 'the standby rejects writes');
like($stderr, qr/read-only transaction/, 'the standby says it is read-only');

# Crash the primary: committed rows 201..300 and an open transaction holding rows 301..400.
$primary->safe_psql('postgres', rows_sql(201, 300));
my $open = $primary->background_psql('postgres', on_error_stop => 0);
$open->query_safe('BEGIN');
$open->query_safe(rows_sql(301, 400));
my $before_crash = $primary->safe_psql('postgres', $snapshot_sql);
like($before_crash, qr/^300 1\.\.300 /, 'committed rows 1..300 before the crash');

my $killed = crash_node($primary);
cmp_ok($killed, '>', 1, 'SIGKILL hit the postmaster and its child processes');
eval { $open->quit };    # its server is gone; psql exits with an error

$primary->start;
ok( $primary->log_contains('database system was not properly shut down; automatic recovery in progress'),
	'the primary ran crash recovery');
is($primary->safe_psql('postgres', $snapshot_sql), $before_crash,
	'after the crash the primary holds exactly the committed rows');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id > 300'),
	'0', 'the uncommitted transaction left no rows');

# The standby reconnects to the restarted primary and catches up, including new rows.
$primary->safe_psql('postgres', rows_sql(401, 450));
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
my $after = $primary->safe_psql('postgres', $snapshot_sql);
like($after, qr/^350 1\.\.450 /, 'primary holds rows 1..300 and 401..450');
is($standby->safe_psql('postgres', $snapshot_sql), $after, 'standby caught up after the primary crash');

# Crash the standby too: it recovers from its own WAL and streams the rest.
crash_node($standby);
$primary->safe_psql('postgres', rows_sql(451, 500));
$standby->start;
$primary->wait_for_catchup($standby, 'replay', $primary->lsn('insert'));
is($standby->safe_psql('postgres', $snapshot_sql),
	$primary->safe_psql('postgres', $snapshot_sql),
	'standby caught up after its own crash');

# A synchronous physical standby keeps every commit waiting for it, also a commit of vectors in a
# session that loaded Meridian and wrote no replicated table: Meridian makes such commits local
# only while synchronous_standby_names names its peer regions and nothing else (there are none
# here). With the standby stopped, the commit waits (wait event SyncRep) until it is cancelled.
$primary->append_conf('postgresql.conf', "synchronous_standby_names = 'standby'");
$primary->reload;
$primary->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'")
  or die 'the standby did not become synchronous';
$primary->safe_psql('postgres', rows_sql(501, 510));
$standby->stop;
my $waiting = $primary->background_psql('postgres', on_error_stop => 0);
$waiting->query_until(qr/sent/, "\\echo sent\n" . rows_sql(511, 511) . ";\n");
ok( $primary->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'"),
	'a commit of vectors waits for the synchronous physical standby');
$primary->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'");
$waiting->quit;
like($waiting->{stderr}, qr/canceling wait for synchronous replication/, 'its wait was cancelled');
is($primary->safe_psql('postgres', 'SELECT count(*) FROM items WHERE id = 511'),
	'1', 'the cancelled wait left the commit durable locally, as PostgreSQL does');

$primary->stop;
done_testing();
