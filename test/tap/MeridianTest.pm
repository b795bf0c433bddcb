# Shared helpers for Meridian's TAP tests (test/tap/*.pl), on top of PostgreSQL::Test::Cluster.
#
#   use FindBin;
#   use lib $FindBin::RealBin;
#   use MeridianTest qw(crash_node);
#
# crash_node($node) is a real crash: SIGKILL of the postmaster and every one of its child
# processes at the same moment, so no process gets to write, flush or clean up anything after
# the kill. (Cluster.pm's kill9 signals the postmaster only; its backends notice that and exit
# on their own, which is a gentler test.) Afterwards $node->start runs crash recovery.
#
# For the hnsw tests:
#   create_test_vector_function($node [, $dbname]) creates test_vector(seed bigint, dims int), a
#     deterministic pseudo-random vector with components in [0, 1): the same seed gives the same
#     vector on every node, in every run.
#   hnsw_check($node, $index [, $dbname]) runs meridian.hnsw_check($index) and returns a hash
#     reference with its columns (avg_out_degree rounded to 3 decimals, entry_point -1 when NULL)
#     and `row`, all of them as one line to compare between nodes or print with note().
#   index_finds_every_row($node, $table, $ef_search, $label) asserts that for every row of $table
#     (columns id, v, an hnsw index on v) an index scan ORDER BY v <-> (that row's v) LIMIT 1
#     returns that row (or one at distance 0), and returns the ids it missed.
package MeridianTest;

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep);
use Test::More;
use PostgreSQL::Test::Utils ();

our @EXPORT_OK =
  qw(crash_node postmaster_children create_test_vector_function hnsw_check index_finds_every_row);

# A killed postmaster is the child of whatever process adopts orphans. If that process never
# reaps (containers, some VM inits), the dead postmaster stays a zombie, its PID stays "alive"
# to kill(0), and the restarted postmaster refuses to start ("lock file postmaster.pid already
# exists"). So this test process makes itself the child subreaper (Linux prctl
# PR_SET_CHILD_SUBREAPER): postmasters started by the test are re-parented to it, and
# crash_node reaps them. On failure the helpers still work where the init reaps.
# (No initializer: "my $x = 0" would run after BEGIN and undo what BEGIN set.)
my $subreaper;
BEGIN
{
	if ($^O eq 'linux')
	{
		my $nr = eval { require 'syscall.ph'; &SYS_prctl() };
		$subreaper = 1 if defined $nr && syscall($nr, 36, 1, 0, 0, 0) == 0;    # 36 = PR_SET_CHILD_SUBREAPER
	}
}

# Reap the postmasters this process adopted and that have exited (nodes stopped by the test),
# so they do not linger as zombies of a non-reaping init after the test.
END
{
	local $?;    # waitpid sets $?, which is the test's exit status in an END block
	1 while $subreaper && waitpid(-1, WNOHANG) > 0;
}

# PIDs of the direct children of $pid, from /proc.
sub postmaster_children
{
	my ($pid) = @_;
	my @children;
	opendir(my $dh, '/proc') or die "cannot read /proc: $!";
	for my $p (grep { /^\d+$/ } readdir($dh))
	{
		open(my $fh, '<', "/proc/$p/stat") or next;    # the process may be gone already
		my $stat = <$fh>;
		close($fh);
		next unless defined $stat;
		# "pid (comm) state ppid ...": comm may contain spaces and parentheses.
		my ($ppid) = $stat =~ /\)\s+\S+\s+(\d+)/;
		push @children, $p if defined $ppid && $ppid == $pid;
	}
	closedir($dh);
	return @children;
}

# True while $pid exists and is not a zombie.
sub _running
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	close($fh);
	return 0 unless defined $stat;
	my ($state) = $stat =~ /\)\s+(\S+)/;
	return defined $state && $state ne 'Z';
}

# Crash $node: SIGSTOP the postmaster (so it cannot fork or react while we look), list its
# children, SIGKILL them and then the postmaster, reap them, and mark the node stopped. Returns the number of
# processes killed (postmaster included).
sub crash_node
{
	my ($node) = @_;
	my $name = $node->name;

	open(my $fh, '<', $node->data_dir . '/postmaster.pid')
	  or die "node \"$name\" is not running: $!";
	chomp(my $pm = <$fh>);
	close($fh);
	die "node \"$name\": bad postmaster.pid" unless $pm =~ /^\d+$/;

	kill('STOP', $pm) or die "cannot stop postmaster $pm of node \"$name\": $!";
	my @children = postmaster_children($pm);
	note "crashing node \"$name\": SIGKILL to postmaster $pm and children @children";
	# Children first: the stopped postmaster cannot react to their deaths, and none of them
	# lives on to notice that the postmaster is gone.
	kill('KILL', @children) if @children;
	$node->kill9;    # SIGKILL to the (stopped) postmaster, and the node's bookkeeping

	# Wait until every killed process is gone (or a zombie), reaping those that are ours.
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	for my $p ($pm, @children)
	{
		while (1)
		{
			my $r = waitpid($p, WNOHANG);
			last if $r == $p;
			if (!_running($p))
			{
				# Died between the two checks: reap it if it is ours (a zombie returns at
				# once; another process's child gives -1 at once).
				waitpid($p, 0);
				last;
			}
			die "process $p of node \"$name\" survived SIGKILL" if time > $deadline;
			usleep(20_000);
		}
	}
	# If nothing could reap the postmaster, a restart would fail on its lock file; say why.
	if (-e "/proc/$pm")
	{
		diag "postmaster $pm of node \"$name\" is an unreaped zombie"
		  . ($subreaper ? "" : " (PR_SET_CHILD_SUBREAPER unavailable)")
		  . "; restarting the node will fail";
	}
	return 1 + scalar(@children);
}

# test_vector(seed, dims): component j is the low 24 bits of hashint8(seed * 4096 + j) / 2^24, so
# vectors are exact in float4, distinct for distinct seeds, and independent of the session.
sub create_test_vector_function
{
	my ($node, $dbname) = @_;
	$node->safe_psql(
		$dbname // 'postgres', q{
		CREATE FUNCTION test_vector(seed bigint, dims int) RETURNS vector
		LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
			SELECT array_agg((hashint8(seed * 4096 + j) & 16777215)::real / 16777216 ORDER BY j)::vector
			FROM generate_series(1, dims) AS j
		$$});
	return;
}

my @hnsw_check_columns =
  qw(elements live deleted unreachable avg_out_degree max_level entry_point free_slots);

sub hnsw_check
{
	my ($node, $index, $dbname) = @_;
	my $row = $node->safe_psql($dbname // 'postgres',
		    "SELECT elements, live, deleted, unreachable, round(avg_out_degree::numeric, 3), "
		  . "max_level, coalesce(entry_point, -1), free_slots FROM meridian.hnsw_check('$index')");
	my @values = split /\|/, $row;
	die "hnsw_check($index): unexpected result \"$row\"" unless @values == @hnsw_check_columns;
	my %r;
	@r{@hnsw_check_columns} = @values;
	$r{row} = join(' ', map { "$_=$r{$_}" } @hnsw_check_columns);
	return \%r;
}

sub index_finds_every_row
{
	my ($node, $table, $ef_search, $label) = @_;
	my $settings = "SET enable_seqscan = off; SET enable_bitmapscan = off; SET hnsw.ef_search = $ef_search;";
	my $lookup = "SELECT b.id, b.v <-> a.v AS d FROM $table b ORDER BY b.v <-> a.v LIMIT 1";
	my $plan = $node->safe_psql('postgres',
		"$settings EXPLAIN (COSTS OFF) SELECT nn.id FROM $table a CROSS JOIN LATERAL ($lookup) AS nn");
	like($plan, qr/Index Scan using \S+ on $table b\n\s+Order By: \(v <-> a\.v\)/,
		"$label: the lookups are hnsw index scans");
	my $out = $node->safe_psql(
		'postgres', qq{$settings
		SELECT count(*) || ':' || coalesce(string_agg(a.id::text, ',' ORDER BY a.id) FILTER (
			WHERE nn.id IS NULL OR (nn.id <> a.id AND nn.d > 0)), '')
		FROM $table a LEFT JOIN LATERAL ($lookup) AS nn ON true});
	my ($rows, $missed) = split /:/, $out, 2;
	my @missed = grep { length } split /,/, $missed;
	note "$label: $rows rows looked up through the index (hnsw.ef_search = $ef_search), "
	  . scalar(@missed) . " not found"
	  . (@missed ? ': ' . join(' ', @missed[ 0 .. ($#missed < 19 ? $#missed : 19) ]) . (@missed > 20 ? ' ...' : '') : '');
	is(scalar(@missed), 0, "$label: the index finds each of the $rows rows by its own vector");
	return \@missed;
}

1;
