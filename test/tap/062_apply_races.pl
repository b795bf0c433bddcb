# meridian.apply_transaction against a local session inserting the same key, with the local
# insert still in progress when the apply inserts (docs/apply.md, "Concurrent writers").
#
# The apply looks the key up (missing), then inserts. A local session that inserts the key in
# between, and has not ended when the apply's insert reaches the primary key, used to make the
# apply wait for it and then fail with a unique violation (or succeed, after a rollback). Now the
# apply's insert is speculative: it takes its row back, waits for the local transaction the way
# the look-up waits (polling, wait event "Extension", not a lock wait), and resolves against its
# row last-writer-wins. isolationtester cannot step through that wait, which is not a lock wait;
# test/isolation/specs/apply_concurrent_insert.spec covers the same race with the local insert
# committed.
#
# The window between look-up and insert is held open by a BEFORE INSERT trigger that fires only
# in the apply (session_replication_role = replica) and waits for an advisory lock the local
# session holds.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('races');
$node->init;
$node->append_conf('postgresql.conf', qq{
track_commit_timestamp = on
shared_preload_libraries = 'meridian'
synchronous_commit = local
});
$node->start;

my $key = '00000000-0000-0000-0000-000000000001';
$node->safe_psql('postgres', qq{
	CREATE EXTENSION meridian;
	SELECT meridian.create_region('race-east', 'host=east'), meridian.create_region('race-west', 'host=west');
	SELECT meridian.set_local_region('race-east');
	CREATE TABLE items (id uuid PRIMARY KEY, embedding vector(3) NOT NULL, note text);
	CREATE INDEX ON items USING hnsw (embedding vector_l2_ops);
	SELECT meridian.replicate_table('items');
	CREATE FUNCTION hold() RETURNS trigger LANGUAGE plpgsql AS \$\$
	  BEGIN
	    IF current_setting('session_replication_role') = 'replica' THEN
	      PERFORM pg_advisory_lock(4242);
	      PERFORM pg_advisory_unlock(4242);
	    END IF;
	    RETURN NEW;
	  END \$\$;
	CREATE TRIGGER hold BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION hold();
	ALTER TABLE items ENABLE ALWAYS TRIGGER hold;
	SELECT pg_replication_origin_create('meridian_race-west');
	-- race-west inserting the key with a note, committed at t, past the origin's progress.
	CREATE FUNCTION race_msg(t timestamptz, note text) RETURNS bytea LANGUAGE sql AS \$\$
	  SELECT meridian.encode_message(jsonb_build_object('kind', 'transaction', 'region', 'race-west', 'xid', 1,
	      'commit_lsn', (p + 56)::text, 'end_lsn', (p + 64)::text, 'commit_time', t, 'changes', jsonb_build_array(
	        jsonb_build_object('op', 'insert', 'schema', 'public', 'table', 'items', 'key', '$key',
	          'columns', jsonb_build_array(
	            jsonb_build_object('name', 'id', 'type', 'uuid', 'value', uuid_send('$key')::text),
	            jsonb_build_object('name', 'embedding', 'type', 'vector', 'value', vector_send('[2,2,2]')::text),
	            jsonb_build_object('name', 'note', 'type', 'text', 'value', textsend(note)::text))))))
	  FROM coalesce(pg_replication_origin_progress('meridian_race-west', false), '0/1000') p \$\$;
});

my $local = $node->background_psql('postgres');
my $apply = $node->background_psql('postgres');
$apply->query_safe(q{
	SET synchronous_commit = off;
	SET session_replication_role = replica;
	SELECT pg_replication_origin_session_setup('meridian_race-west');
});
my $apply_pid = $apply->query_safe('SELECT pg_backend_pid()');
chomp $apply_pid;

# One race: the apply of a race-west row committed at $remote_time, the local insert of the same
# key in progress when the apply inserts, then the local transaction ends with $local_end.
# Returns the apply's result and the row as "note|origin", and checks that the index scan
# returns exactly that row.
sub race
{
	my ($remote_time, $local_end) = @_;
	$local->query_safe('SELECT pg_advisory_lock(4242)');
	$apply->query_until(qr/started/,
		"\\echo started\nSELECT meridian.apply_transaction(race_msg('$remote_time', 'remote'));\n\\echo applied\n");
	# The apply has looked the key up and waits in the trigger.
	$node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' AND wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $apply_pid")
	  or die 'the apply did not reach the trigger';
	$local->query_safe("BEGIN; INSERT INTO items VALUES ('$key', '[1,1,1]', 'local')");
	$local->query_safe('SELECT pg_advisory_unlock(4242)');
	# Its insert found the local row in progress, took its own back, and waits for the local
	# transaction to end.
	my $polling = $node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Extension' FROM pg_stat_activity WHERE pid = $apply_pid");
	ok($polling, "$local_end, remote $remote_time: the apply waits for the local transaction (wait event Extension)");
	$local->query_safe($local_end);
	my $out = $apply->query_until(qr/applied/, '');
	my ($written) = $out =~ /^(\d+)$/m;
	my $row = $node->safe_psql('postgres', qq{
		SELECT i.note || '|' || coalesce(o.roname, '(local)') || '|' || (SELECT count(*) FROM items)
		FROM items i, pg_xact_commit_timestamp_origin(i.xmin) c LEFT JOIN pg_replication_origin o ON o.roident = c.roident});
	my ($note) = split /\|/, $row;
	my $found = $node->safe_psql('postgres', q{
		SET enable_seqscan = off;
		SELECT string_agg(note, ',') FROM (SELECT note FROM items ORDER BY embedding <-> '[2,2,2]' LIMIT 5) s});
	is($found, $note // '', "$local_end, remote $remote_time: the hnsw index returns the one row");
	$node->safe_psql('postgres', 'DELETE FROM items; DELETE FROM meridian.tombstones');
	return ($written // "no result: $out", $row);
}

my ($written, $row) = race('2100-01-01 00:00:00+00', 'COMMIT');
is($written, 1, 'local insert committed, newer remote row: applied');
is($row, 'remote|meridian_race-west|1', 'the remote row replaced the local one');

($written, $row) = race('2000-01-01 00:00:00+00', 'COMMIT');
is($written, 0, 'local insert committed, older remote row: dropped');
is($row, 'local|(local)|1', 'the local row stays');

($written, $row) = race('2000-01-01 00:00:00+00', 'ROLLBACK');
is($written, 1, 'local insert rolled back: the remote row is inserted after all');
is($row, 'remote|meridian_race-west|1', 'the remote row is there');

# Nothing failed in the apply session, and the origin advanced past every message.
is($node->safe_psql('postgres', "SELECT pg_replication_origin_progress('meridian_race-west', false) > '0/1000'"),
	't', 'the origin advanced');
$local->quit;
$apply->quit;
$node->stop;
done_testing();
