# Consistency per query and per write over a simulated WAN (issue 4 §4). Three regions, every
# inter-region connection through wan-proxy: one-way delays of 20 ms between us-east and eu-west
# and 40 ms on the pairs with ap-south.
#   quorum write: a COMMIT (w = 2 of 3) takes at least one round trip to the nearest peer and the
#     row is then in a peer; a region with its links cut, or held (sockets open, nothing moving),
#     fails quorum writes with MR001 (no hang);
#     synchronous_commit = local still commits there;
#   conflict: quorum updates of one row committed at the same instant in every region all return
#     (no deadlock across regions) and every region keeps the same, newest, write; likewise when a
#     peer's update arrives while the local transaction holding the row is still open, and when
#     the waits chain across two rows (a change dropped as older is confirmed while the next one
#     waits);
#   strong: a row committed in eu-west with synchronous_commit = local is returned by an
#     immediately following strong kNN query (hnsw index) in us-east;
#   bounded: with ap-south's stream into us-east held longer than max_staleness, bounded reads in
#     us-east wait consistency_timeout and fail with MR002 naming ap-south; eventual reads succeed
#     throughout; after restore bounded reads succeed;
#   partition: ap-south cut off for 5 s under continuous load: the majority side has no failed
#     eventual or bounded read and no failed quorum write, the minority side only fail-fast errors
#     (MR001/MR002/MR003, no other error, no hang); after the heal every region has the same rows
#     within 5 s, exactly the committed ones (client log of committed ids), each applied once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use MeridianRegions qw(applied_log_sql replicator_binary wan_proxy_binary setup_regions start_replicator stop_replicator
  replicator_log wait_converged checksums wait_for_region_status wan_hold wan_restore wan_isolate wan_heal
  wan_status stop_wan);
use MeridianTest qw(create_test_vector_function);
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(time usleep);

plan skip_all => "meridian-replicator not built: run make test" unless -x replicator_binary();
plan skip_all => "wan-proxy not built: run make test" unless -x wan_proxy_binary();

# MERIDIAN_070_SECTIONS=quorum,conflict,strong,bounded,partition (the default: all) runs only some parts,
# for work on one of them.
my %section = map { $_ => 1 } split /,/, ($ENV{MERIDIAN_070_SECTIONS} // 'quorum,conflict,strong,bounded,partition');

my @names = ('us-east', 'eu-west', 'ap-south');
my %delay = ('us-east<->eu-west' => 20, 'us-east<->ap-south' => 40, 'eu-west<->ap-south' => 40);
# applied_log records each row the replicator applies (a session with a replication origin), to
# show that nothing is applied twice.
my %node = setup_regions(@names, {
	wan => { delays => \%delay },
	conf => [ 'max_connections = 60', 'shared_buffers = 32MB' ],
	table_sql => q{
	CREATE TABLE items (id uuid PRIMARY KEY, n bigint NOT NULL, region text NOT NULL, stream text NOT NULL,
	                    embedding vector(8) NOT NULL);
	CREATE INDEX items_embedding ON items USING hnsw (embedding vector_l2_ops);
	SELECT meridian.replicate_table('items');
} . applied_log_sql('items') });
my @nodes = map { $node{$_} } @names;
my ($us, $eu, $ap) = @node{@names};
create_test_vector_function($_, 'postgres') for @nodes;
start_replicator($_) for @nodes;

for my $n (@nodes)
{
	ok(wait_for_region_status($n, $_, 'connected AND last_error IS NULL', 60), $n->name . " streams from $_ over the WAN")
	  for grep { $_ ne $n->name } @names;
}
for my $from (@names)
{
	for my $to (grep { $_ ne $from } @names)
	{
		my ($conns) = wan_status($from, $to) =~ /^ok open \d+ (\d+)$/;
		cmp_ok($conns // 0, '>=', 1, "the stream of $to into $from crosses the proxy (link $from->$to)");
	}
}

# --- one client command: psql with the given -c commands (VERBOSITY verbose, so errors carry
# their SQLSTATE), killed after $timeout s (a hang). Returns { ok, sqlstate, error, out, elapsed,
# hang }.
sub run_psql
{
	my ($n, $commands, %o) = @_;
	my @cmd = ('psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $n->host, '-p', $n->port, '-d', 'postgres',
		'-c', '\set VERBOSITY verbose', map { ('-c', $_) } @$commands);
	my ($out, $err) = ('', '');
	my $t0 = time();
	my $ok = eval {
		IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout($o{timeout} // 60));
	};
	my $r = { out => $out, elapsed => time() - $t0 };
	if ($@)
	{
		$r->{hang} = 1;
		$r->{error} = "timed out after " . ($o{timeout} // 60) . " s: $@";
		return $r;
	}
	$r->{ok} = $ok ? 1 : 0;
	if (!$ok)
	{
		($r->{sqlstate}) = $err =~ /(?:ERROR|FATAL):\s+([0-9A-Z]{5}):/;
		$r->{sqlstate} //= 'none';
		($r->{error}) = $err =~ /((?:ERROR|FATAL):.*)/;
		$r->{error} //= $err;
	}
	chomp $r->{out};
	return $r;
}

sub describe { my ($r) = @_; return $r->{ok} ? "ok: $r->{out}" : ($r->{error} // 'failed'); }

# Polls until every node's synchronous_standby_names names its two peers with ANY 1.
sub wait_quorum_configured
{
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $good = 0;
		for my $n (@nodes)
		{
			my $s = $n->safe_psql('postgres', 'SHOW synchronous_standby_names');
			my @peers = grep { $_ ne $n->name } @names;
			$good++ if $s =~ /^ANY 1 \(/ && !grep { index($s, qq{"$_"}) < 0 } @peers;
		}
		return 1 if $good == @nodes;
		usleep(100_000);
	}
	return 0;
}

my $vec = 0;    # a fresh test_vector seed for every row
sub insert_sql
{
	my ($region, $stream, $n, $id) = @_;
	$vec++;
	return "INSERT INTO items (id, n, region, stream, embedding) "
	  . "VALUES ('$id', $n, '$region', '$stream', test_vector($n * 7 + " . length($stream) . ", 8))";
}

sub uuid_of { my ($s) = @_; return $us->safe_psql('postgres', "SELECT md5('$s')::uuid"); }

# ===================================================================================== quorum
if ($section{quorum})
{
	is($us->safe_psql('postgres', 'SELECT meridian.write_quorum()'), '2', 'the default write quorum of 3 regions is 2');
	ok(wait_quorum_configured(), 'the replicators set synchronous_standby_names to ANY 1 of the two peers in every region')
	  or diag explain { map { $_->name => $_->safe_psql('postgres', 'SHOW synchronous_standby_names') } @nodes };

	{
		# One round trip to the nearest peer of us-east: eu-west, 20 ms each way.
		my $rtt_ms = 2 * $delay{'us-east<->eu-west'};
		my @commit_ms;
		my $in_peer = 0;
		for my $i (1 .. 5)
		{
			my $id = uuid_of("quorum-$i");
			my $r = run_psql($us, [ 'BEGIN', insert_sql('us-east', 'quorum', $i, $id), '\timing on', 'COMMIT' ]);
			ok($r->{ok}, "quorum write $i in us-east commits") or diag describe($r);
			my ($ms) = $r->{out} =~ /Time: ([0-9.]+) ms/;
			push @commit_ms, $ms // -1;
			# Right after COMMIT returned: w - 1 = 1 peer has applied it durably.
			my $peers = 0;
			$peers += $_->safe_psql('postgres', "SELECT count(*) FROM items WHERE id = '$id'") for ($eu, $ap);
			$in_peer++ if $peers >= 1;
		}
		ok(!grep({ $_ < $rtt_ms } @commit_ms), "every quorum COMMIT took at least one round trip to the nearest peer ($rtt_ms ms)")
		  or diag "COMMIT times (ms): @commit_ms";
		note "quorum COMMIT times in us-east (ms): @commit_ms";
		is($in_peer, 5, 'each quorum-committed row was in a peer as soon as COMMIT returned');

		my $id = uuid_of('local-commit-fast');
		my $r = run_psql($us, [ 'SET synchronous_commit = local', 'BEGIN', insert_sql('us-east', 'quorum', 100, $id), 'COMMIT' ]);
		ok($r->{ok}, 'a synchronous_commit = local write commits') or diag describe($r);
	}

	# --- every link of eu-west cut, then held (sockets open, nothing moves: must count as down
	# too): its quorum writes fail fast
	for my $how ('cut', 'hold')
	{
		wan_isolate('eu-west', $how);
		# Wait until eu-west sees both peers as unavailable (their heartbeats stopped for
		# heartbeat_timeout) and none of the peers' streams from eu-west has acknowledged anything
		# for heartbeat_timeout (with a cut they are gone): admission must now refuse.
		ok(wait_for_region_status($eu, $_, 'unavailable', 30), "$how: eu-west marks $_ unavailable")
		  for ('us-east', 'ap-south');
		ok($eu->poll_query_until('postgres', q{
				SELECT count(*) = 0 FROM pg_stat_replication
				WHERE application_name IN ('us-east', 'ap-south')
				  AND reply_time > now() - current_setting('meridian.heartbeat_timeout')::interval}),
			"$how: no peer acknowledged eu-west's stream for heartbeat_timeout");
		my $r = run_psql($eu, [ insert_sql('eu-west', 'quorum', 200, uuid_of("$how-quorum")) ], timeout => 30);
		ok(!$r->{hang}, "$how: a quorum write in the cut-off region does not hang") or diag describe($r);
		is($r->{sqlstate} // 'none', 'MR001', "$how: it fails with MR001 (write quorum unavailable)") or diag describe($r);
		like($r->{error} // '', qr/quorum/i, "$how: and says so") or diag describe($r);
		my $in_tx = run_psql($eu, [ 'BEGIN', insert_sql('eu-west', 'quorum', 201, uuid_of("$how-quorum-tx")), 'COMMIT' ],
			timeout => 30);
		is($in_tx->{sqlstate} // 'none', 'MR001', "$how: also inside an explicit transaction (before its commit)")
		  or diag describe($in_tx);
		is($eu->safe_psql('postgres', "SELECT count(*) FROM items WHERE id IN ('" . uuid_of("$how-quorum") . "', '"
				  . uuid_of("$how-quorum-tx") . "')"), '0', "$how: the refused writes left no row");

		my $local = run_psql($eu,
			[ 'SET synchronous_commit = local', insert_sql('eu-west', 'quorum', 202, uuid_of("$how-local")) ], timeout => 30);
		ok($local->{ok}, "$how: synchronous_commit = local still commits in the cut-off region") or diag describe($local);
		my $ev = run_psql($eu, [ 'SELECT count(*) FROM items' ], timeout => 30);
		ok($ev->{ok}, "$how: and eventual reads there still succeed") or diag describe($ev);

		wan_heal('eu-west');
		ok(wait_for_region_status($eu, $_, 'connected AND NOT unavailable', 60), "$how: after restore eu-west streams from $_ again")
		  for ('us-east', 'ap-south');
		ok(wait_converged(\@nodes, 'items', 60), "$how: the regions converge after the restore")
		  or diag explain checksums(\@nodes, 'items');
		my $again = run_psql($eu, [ insert_sql('eu-west', 'quorum', 203, uuid_of("$how-healed-quorum")) ], timeout => 60);
		ok($again->{ok}, "$how: quorum writes in eu-west succeed again") or diag describe($again);
	}
}

# ============================================================================= conflict
# Quorum writes of the same row in every region at once. Each COMMIT holds its row locked while
# it waits for a peer, and each peer's apply of it meets the peer's own waiting COMMIT: without
# care no region ever confirms (a deadlock across regions). The apply drops an incoming change
# that loses last-writer-wins to such a waiting transaction without waiting for it, so every
# COMMIT returns and the regions agree on the newest write.
if ($section{conflict})
{
	my $id = uuid_of('conflict-row');
	$us->safe_psql('postgres', insert_sql('us-east', 'conflict', 0, $id));
	$_->poll_query_until('postgres', "SELECT count(*) = 1 FROM items WHERE id = '$id'") for ($eu, $ap);

	# Each region in %commit_after updates the row, then commits that many seconds after a common
	# instant 1 s from now. True when every COMMIT returned within 30 s.
	my $update_and_commit = sub {
		my ($label, %commit_after) = @_;
		my $at = $us->safe_psql('postgres', "SELECT clock_timestamp() + interval '1 s'");
		my (%h, %out, %err);
		for my $n (grep { exists $commit_after{ $_->name } } @nodes)
		{
			my $name = $n->name;
			my @cmd = ('psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $n->host, '-p', $n->port, '-d', 'postgres',
				'-c', 'BEGIN', '-c', "UPDATE items SET stream = '$label-$name' WHERE id = '$id'",
				'-c', "SELECT pg_sleep(greatest(0, extract(epoch FROM timestamptz '$at' + interval '$commit_after{$name} s' - clock_timestamp())))",
				'-c', 'COMMIT');
			$h{$name} = IPC::Run::start(\@cmd, '<', \undef, '>', \$out{$name}, '2>', \$err{$name}, IPC::Run::timeout(30));
		}
		my @stuck;
		for my $name (sort keys %h)
		{
			my $ok = eval { $h{$name}->finish };
			if ($@) { push @stuck, $name; $h{$name}->kill_kill; }
			elsif (!$ok) { push @stuck, "$name (failed: $err{$name})"; }
		}
		if (@stuck)
		{
			diag "$label: did not commit within 30 s: @stuck";
			# Let the stuck commits go (they are committed locally) so the rest of the test can run.
			$_->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
			  for @nodes;
		}
		return !@stuck;
	};
	my $same_everywhere = sub {
		my ($label) = @_;
		ok(wait_converged(\@nodes, 'items', 60), "$label: the regions converge")
		  or diag explain checksums(\@nodes, 'items');
		my %stream = map { $_->name => $_->safe_psql('postgres', "SELECT stream FROM items WHERE id = '$id'") } @nodes;
		is(scalar(keys %{ { reverse %stream } }), 1, "$label: every region keeps the same write ($stream{'us-east'})")
		  or diag explain \%stream;
	};

	for my $round (1 .. 3)
	{
		ok($update_and_commit->("conflict-$round", map { $_ => 0 } @names),
			"round $round: simultaneous quorum updates of one row in every region all commit");
		$same_everywhere->("round $round");
	}

	# The change of a peer arrives while the local transaction that holds the row is still open;
	# that transaction then commits and waits for the same peer. With ap-south cut off, us-east
	# and eu-west are each other's only quorum: eu-west commits at once, us-east 0.3 s later.
	wan_isolate('ap-south', 'cut');
	ok($update_and_commit->('conflict-open', 'us-east' => 0.3, 'eu-west' => 0),
		'a peer\'s quorum update arriving while the local transaction holding the row is open: both commit');

	# Waits that chain across two rows. Still with ap-south cut off: us-east commits x (row 1),
	# eu-west then b (rows 1 and 2), us-east then y (row 2), so by last-writer-wins x < b < y.
	# us-east's stream into eu-west (link eu-west->us-east) is held meanwhile, so x and y reach
	# eu-west together: x loses to b and is dropped, y waits for b. b waits for us-east, whose
	# apply of b waits for x (b is newer); x waits for eu-west to confirm it. eu-west must confirm x
	# while its apply of y waits, or no COMMIT ever returns.
	my %row = (1 => uuid_of('chain-row-1'), 2 => uuid_of('chain-row-2'));
	$eu->safe_psql('postgres', insert_sql('eu-west', 'chain', $_, $row{$_})) for 1, 2;
	$us->poll_query_until('postgres', "SELECT count(*) = 2 FROM items WHERE stream = 'chain'");
	my (%chain, %chain_out, %chain_err);
	my $commit_in_background = sub {
		my ($label, $n, @sql) = @_;
		my @cmd = ('psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', $n->host, '-p', $n->port, '-d', 'postgres',
			'-c', 'SET meridian.quorum_admission = off', map { ('-c', $_) } @sql);
		$chain{$label} = IPC::Run::start(\@cmd, '<', \undef, '>', \$chain_out{$label}, '2>', \$chain_err{$label},
			IPC::Run::timeout(30));
	};
	my $waiting_in = sub {
		my ($n, $what, $condition) = @_;
		ok($n->poll_query_until('postgres', "SELECT count(*) > 0 FROM pg_stat_activity WHERE $condition"),
			$n->name . ": $what");
	};
	# (quorum_admission = off: with the link held eu-west does not acknowledge us-east, so
	# admission would refuse x and y; the test is about what happens after the commits.)
	wan_hold('eu-west', 'us-east');
	$commit_in_background->('x', $us, "UPDATE items SET stream = 'chain-x' WHERE id = '$row{1}'");
	$waiting_in->($us, 'x waits for its quorum', "query LIKE 'UPDATE items SET stream = ''chain-x''%' AND wait_event = 'SyncRep'");
	$commit_in_background->('b', $eu, 'BEGIN', "UPDATE items SET stream = 'chain-b' WHERE id IN ('$row{1}', '$row{2}')", 'COMMIT');
	$waiting_in->($eu, 'b waits for its quorum', "query = 'COMMIT' AND wait_event = 'SyncRep'");
	$waiting_in->($us, 'the apply of b waits for x', "application_name = 'meridian-replicator apply eu-west' AND wait_event_type = 'Lock'");
	$commit_in_background->('y', $us, "UPDATE items SET stream = 'chain-y' WHERE id = '$row{2}'");
	$waiting_in->($us, 'y waits for its quorum', "query LIKE 'UPDATE items SET stream = ''chain-y''%' AND wait_event = 'SyncRep'");
	wan_restore('eu-west', 'us-east');
	my @stuck;
	for my $label ('x', 'b', 'y')
	{
		my $ok = eval { $chain{$label}->finish };
		if ($@) { push @stuck, $label; $chain{$label}->kill_kill; }
		elsif (!$ok) { push @stuck, "$label (failed: $chain_err{$label})"; }
	}
	ok(!@stuck, 'quorum writes whose waits chain across two rows and two regions all commit')
	  or diag "did not commit within 30 s: @stuck";
	if (@stuck)
	{
		$_->safe_psql('postgres', "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
		  for @nodes;
	}
	wan_heal('ap-south');
	ok(wait_for_region_status($_, 'ap-south', 'connected AND NOT unavailable', 60), $_->name . ' streams from ap-south again')
	  for ($us, $eu);
	ok(wait_for_region_status($ap, $_, 'connected AND NOT unavailable', 60), "ap-south streams from $_ again")
	  for ('us-east', 'eu-west');
	$same_everywhere->('open transaction');
	for my $n (@nodes)
	{
		is($n->safe_psql('postgres', "SELECT string_agg(stream, ',' ORDER BY id = '$row{2}') FROM items WHERE id IN ('$row{1}', '$row{2}')"),
			'chain-b,chain-y', $n->name . ': the chained writes end with the newest of each row (b on row 1, y on row 2)');
	}
}

# ===================================================================================== strong
if ($section{strong})
{
	my $found = 0;
	my $plan = run_psql($us, [ 'SET meridian.read_consistency = strong', 'SET enable_seqscan = off',
		"EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY embedding <-> test_vector(1, 8) LIMIT 1" ]);
	like($plan->{out}, qr/Index Scan using items_embedding/, 'the kNN query uses the hnsw index');
	for my $i (1 .. 10)
	{
		my $id = uuid_of("strong-$i");
		# A vector far from everything else (components of test_vector are in [0, 1)), so it is the
		# nearest neighbour of itself and of nothing that existed before.
		my $v = "array_fill(" . (10 + $i) . "::real, ARRAY[8])::vector";
		my $w = run_psql($eu, [ 'SET synchronous_commit = local',
			"INSERT INTO items (id, n, region, stream, embedding) VALUES ('$id', $i, 'eu-west', 'strong', $v)" ]);
		my $r = run_psql($us, [ 'SET meridian.read_consistency = strong', 'SET enable_seqscan = off',
			"SELECT id FROM items ORDER BY embedding <-> $v LIMIT 1" ]);
		if ($w->{ok} && $r->{ok} && $r->{out} eq $id) { $found++ }
		else { diag "strong read $i: write " . describe($w) . "; read " . describe($r) }
	}
	is($found, 10, 'a strong kNN query in us-east returns the row committed (synchronous_commit = local) in eu-west just before, 10 of 10');
}

# ===================================================================================== bounded
if ($section{bounded})
{
	# ap-south's stream into us-east goes through the link us-east->ap-south: hold it (the socket
	# stays open, nothing moves).
	wan_hold('us-east', 'ap-south');
	ok(wait_for_region_status($us, 'ap-south', 'staleness_ms > 200', 30),
		'with its stream held, ap-south is more than max_staleness (200 ms) stale in us-east');
	my $r = run_psql($us, [ 'SET meridian.read_consistency = bounded', "SET meridian.consistency_timeout = '1s'",
		'SELECT count(*) FROM items' ], timeout => 30);
	ok(!$r->{ok} && !$r->{hang}, 'a bounded read in us-east fails') or diag describe($r);
	is($r->{sqlstate} // 'none', 'MR002', 'with MR002') or diag describe($r);
	like($r->{error} // '', qr/ap-south/, 'naming the lagging region') or diag describe($r);
	like($r->{error} // '', qr/\d+(\.\d+)?\s*(ms|s)\b/, 'and its lag') or diag describe($r);
	cmp_ok($r->{elapsed}, '>=', 1.0, 'after waiting consistency_timeout (1 s)');
	my $knn = run_psql($us, [ 'SET meridian.read_consistency = bounded', "SET meridian.consistency_timeout = '200ms'",
		'SET enable_seqscan = off', 'SELECT id FROM items ORDER BY embedding <-> test_vector(5, 8) LIMIT 3' ], timeout => 30);
	is($knn->{sqlstate} // 'none', 'MR002', 'a bounded kNN query (index scan) fails the same way') or diag describe($knn);
	my $eventual_ok = 0;
	for (1 .. 5)
	{
		my $e = run_psql($us, [ 'SET enable_seqscan = off', 'SELECT id FROM items ORDER BY embedding <-> test_vector(5, 8) LIMIT 3' ],
			timeout => 30);
		$eventual_ok++ if $e->{ok};
	}
	is($eventual_ok, 5, 'eventual reads in us-east succeed while the stream is held');
	my $e2 = run_psql($ap, [ 'SET meridian.read_consistency = bounded', 'SELECT count(*) FROM items' ], timeout => 30);
	ok($e2->{ok}, 'bounded reads in ap-south, whose own streams are fine, succeed') or diag describe($e2);

	wan_restore('us-east', 'ap-south');
	my $after = run_psql($us, [ 'SET meridian.read_consistency = bounded', 'SELECT count(*) FROM items' ], timeout => 30);
	ok($after->{ok}, 'after restore a bounded read in us-east succeeds (waiting at most consistency_timeout)')
	  or diag describe($after);
	ok(wait_for_region_status($us, 'ap-south', 'staleness_ms <= 200 AND NOT unavailable', 30),
		'and ap-south is fresh again in region_status');
}

# ===================================================================================== partition
if ($section{partition})
{
	# Continuous load, one forked client per stream, each running one command per psql call and
	# logging every outcome: "seq t0 t1 ok ID" or "seq t0 t1 err SQLSTATE message" or "seq t0 t1 hang".
	my $logdir = $PostgreSQL::Test::Utils::tmp_check . "/070_load";
	mkdir $logdir;
	my $stop_file = "$logdir/stop";
	my %streams = (
		'w-us-east'  => [ $us, 'write' ],
		'w-eu-west'  => [ $eu, 'write' ],
		'e-us-east'  => [ $us, 'eventual' ],
		'b-eu-west'  => [ $eu, 'bounded' ],
		'w-ap-south' => [ $ap, 'write' ],
		'b-ap-south' => [ $ap, 'bounded' ],
		's-ap-south' => [ $ap, 'strong' ],
		'e-ap-south' => [ $ap, 'eventual' ],
	);
	my %child;
	for my $s (sort keys %streams)
	{
		my ($n, $kind) = @{ $streams{$s} };
		my $pid = fork();
		die "fork: $!" unless defined $pid;
		if ($pid == 0)
		{
			# No END blocks here: they would stop the test's nodes.
			open(my $log, '>', "$logdir/$s.log") or POSIX::_exit(1);
			$log->autoflush(1);
			my $seq = 0;
			my $region = $n->name;
			until (-e $stop_file)
			{
				$seq++;
				my @cmd;
				my $id = '';
				if ($kind eq 'write')
				{
					# A uuid derived from the stream and sequence number, computed client side.
					$id = join('-', unpack('H8 H4 H4 H4 H12', pack('H*', Digest_md5("p-$s-$seq"))));
					@cmd = (insert_sql($region, "p-$s", $seq, $id));
				}
				else
				{
					# A read waits at most 2 s, so every stream stops soon after the heal.
					@cmd = ("SET meridian.read_consistency = $kind", "SET meridian.consistency_timeout = '2s'",
						'SET enable_seqscan = off',
						'SELECT count(*) FROM (SELECT id FROM items ORDER BY embedding <-> test_vector(' . ($seq % 50)
						  . ', 8) LIMIT 10) t');
				}
				my $t0 = time();
				my $r = run_psql($n, \@cmd, timeout => 60);
				my $line = sprintf("%d %.3f %.3f ", $seq, $t0, time());
				if ($r->{hang}) { $line .= "hang" }
				elsif ($r->{ok}) { $line .= "ok $id" }
				else { (my $e = $r->{error}) =~ s/\s+/ /g; $line .= "err $r->{sqlstate} $e" }
				print $log "$line\n";
			}
			close $log;
			POSIX::_exit(0);
		}
		$child{$s} = $pid;
	}

	sub Digest_md5 { require Digest::MD5; return Digest::MD5::md5_hex($_[0]); }

	sub read_log
	{
		my ($s) = @_;
		my @ops;
		open(my $f, '<', "$logdir/$s.log") or return ();
		while (<$f>)
		{
			chomp;
			my ($seq, $t0, $t1, $what, $rest) = split / /, $_, 5;
			push @ops, { seq => $seq, t0 => $t0, t1 => $t1, what => $what, rest => $rest // '' };
		}
		return @ops;
	}

	# Every stream is running before the cut.
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		last unless grep { scalar(read_log($_)) < 3 } keys %streams;
		usleep(100_000);
	}
	ok(!grep({ scalar(read_log($_)) < 3 } keys %streams), 'every load stream is running before the partition');

	my $cut_at = time();
	wan_isolate('ap-south', 'cut');
	sleep 5;    # the partition lasts 5 s (the scenario itself, not a wait for a condition)
	PostgreSQL::Test::Utils::append_to_file($stop_file, "stop\n");
	wan_heal('ap-south');
	my $healed_at = time();
	for my $s (sort keys %child)
	{
		waitpid($child{$s}, 0);
	}
	note sprintf('partition: cut at %.3f, healed at %.3f, load stopped %.3f s after the heal', $cut_at, $healed_at,
		time() - $healed_at);

	my $remaining = 5 - (time() - $healed_at);
	ok($remaining > 0 && wait_converged(\@nodes, 'items', $remaining),
		'after the heal every region has the same rows within 5 s (table_checksum)')
	  or diag explain checksums(\@nodes, 'items');
	# What follows checks the final state: give convergence the time it takes if it missed 5 s.
	wait_converged(\@nodes, 'items', 60);

	my (%committed, %summary);
	for my $s (sort keys %streams)
	{
		my ($n, $kind) = @{ $streams{$s} };
		my @ops = read_log($s);
		my $side = $n->name eq 'ap-south' ? 'minority' : 'majority';
		my @failed = grep { $_->{what} ne 'ok' } @ops;
		my @during = grep { $_->{t1} >= $cut_at && $_->{t0} <= $healed_at } @ops;
		my %states;
		$states{ $_->{what} eq 'err' ? (split / /, $_->{rest})[0] : $_->{what} }++ for @ops;
		$summary{$s} = join(', ', map { "$_ $states{$_}" } sort keys %states) . sprintf(' (%d during the partition)', scalar @during);
		note "$s ($side, $kind): $summary{$s}";
		$committed{$s} = [ map { $_->{rest} } grep { $_->{what} eq 'ok' } @ops ] if $kind eq 'write';
		if ($side eq 'majority')
		{
			is(scalar(@failed), 0, "majority side, $s: no failed $kind " . ($kind eq 'write' ? 'quorum write' : 'read')
				  . ' (' . scalar(@ops) . ' in all, ' . scalar(@during) . ' during the partition)')
			  or diag join("\n", map { "$_->{seq} $_->{what} $_->{rest}" } @failed[0 .. ($#failed < 4 ? $#failed : 4)]);
		}
		else
		{
			my @bad = grep { $_->{what} eq 'hang' || ($_->{what} eq 'err' && $_->{rest} !~ /^MR00[123] /) } @ops;
			is(scalar(@bad), 0, "minority side, $s: only fail-fast errors (MR001/MR002/MR003), no other error, no hang")
			  or diag join("\n", map { "$_->{seq} $_->{what} $_->{rest}" } @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
		}
	}
	my $minority_errors = 0;
	for my $s (grep { /ap-south/ } keys %streams)
	{
		$minority_errors += grep { $_->{what} eq 'err' } read_log($s);
	}
	cmp_ok($minority_errors, '>', 0, 'the minority side noticed the partition (it got fail-fast errors)');

	# Nothing lost, nothing extra, nothing applied twice: per region, the rows of the load are
	# exactly the ids the clients saw committed.
	my @expected = sort map { @{ $committed{$_} } } keys %committed;
	for my $n (@nodes)
	{
		my @rows = split /\n/, $n->safe_psql('postgres', "SELECT id FROM items WHERE stream LIKE 'p-%' ORDER BY id");
		my %have = map { $_ => 1 } @rows;
		my %want = map { $_ => 1 } @expected;
		my @lost = grep { !$have{$_} } @expected;
		my @extra = grep { !$want{$_} } @rows;
		ok(!@lost && !@extra && @rows == @expected,
			$n->name . ': the load left exactly the ' . scalar(@expected) . ' committed rows (nothing lost, nothing extra)')
		  or diag "lost: @lost[0 .. ($#lost < 9 ? $#lost : 9)]; extra: @extra[0 .. ($#extra < 9 ? $#extra : 9)]";
		my $twice = $n->safe_psql('postgres',
			"SELECT count(*) FROM (SELECT l.id FROM applied_log l JOIN items i USING (id) WHERE i.stream LIKE 'p-%' "
			  . "GROUP BY l.id HAVING count(*) > 1) d");
		is($twice, '0', $n->name . ': no row was applied twice');
	}

}

stop_replicator($_) for @nodes;
stop_wan();
done_testing();
