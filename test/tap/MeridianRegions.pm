# Multi-region test rigs for Meridian's TAP tests: real PostgreSQL 15 clusters (one per region,
# PostgreSQL::Test::Cluster), each with its own Ed25519 key, the region catalog filled in every
# region, and real meridian-replicator processes.
#
#   use MeridianRegions qw(setup_regions start_replicator stop_replicator kill_replicator
#                          wait_converged checksums);
#   my %r = setup_regions('us-east', 'eu-west', 'ap-south');   # name => node, all started
#   start_replicator($r{'us-east'});                          # one process per region
#   wait_converged([values %r], 'items', 60);                 # equal meridian.table_checksum
#
# Every region's database is `postgres`. Nodes are initialized for logical decoding with commit
# timestamps (last-writer-wins needs them), and each region's conninfo in the catalog is the
# node's own connstr (unix socket), so the replicators reach their peers as a DBA's would.
package MeridianRegions;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use POSIX ();
use Time::HiRes qw(usleep time);
use Test::More;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();

our @EXPORT_OK = qw(replicator_binary setup_regions start_replicator stop_replicator kill_replicator
  replicator_log wait_converged checksums wait_for_region_status);

# meridian-replicator is built by CMake into build/ (make test does that before the TAP tests).
sub replicator_binary
{
	return $ENV{MERIDIAN_REPLICATOR} // "$FindBin::RealBin/../../build/replicator/meridian-replicator";
}

my %replicators;    # node name => pid

END
{
	# A failed test must not leave daemons behind.
	for my $pid (values %replicators)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
}

# setup_regions(@names [, { conf => [lines], table_sql => $sql }]): one started node per region,
# every region registered in every region with its real public key, each node's local region set,
# then table_sql run in every region.
sub setup_regions
{
	my $opts = ref $_[-1] eq 'HASH' ? pop : {};
	my @names = @_;
	my %nodes;
	my %keys;
	my $bin = replicator_binary();
	for my $name (@names)
	{
		my $node = PostgreSQL::Test::Cluster->new($name);
		$node->init(allows_streaming => 'logical');
		my $key = $node->basedir . "/signing.key";
		my ($out, $err);
		IPC::Run::run([ $bin, 'keygen', $key ], '>', \$out, '2>', \$err)
		  or die "keygen for $name failed: $err";
		chomp $out;
		$keys{$name} = $out;
		$node->append_conf('postgresql.conf', join("\n",
			"track_commit_timestamp = on",
			"max_replication_slots = 10",
			"max_wal_senders = 10",
			"wal_sender_timeout = 30s",
			"output_plugin_libraries = 'pgoutput, test_decoding, meridian'",
			"meridian.signing_key_file = '$key'",
			@{ $opts->{conf} // [] }) . "\n");
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION meridian');
		$nodes{$name} = $node;
	}
	for my $name (@names)
	{
		my $sql = '';
		for my $other (@names)
		{
			my $conninfo = $nodes{$other}->connstr('postgres');
			$conninfo =~ s/'/''/g;
			$sql .= "SELECT meridian.create_region('$other', '$conninfo', decode('$keys{$other}', 'hex'));\n";
		}
		$sql .= "SELECT meridian.set_local_region('$name');\n";
		$sql .= $opts->{table_sql} if $opts->{table_sql};
		$nodes{$name}->safe_psql('postgres', $sql);
	}
	return %nodes;
}

sub replicator_log
{
	my ($node) = @_;
	return $node->basedir . "/replicator.log";
}

# Starts `meridian-replicator --local <node's conninfo> @args`, its stderr appended to
# replicator_log($node).
sub start_replicator
{
	my ($node, @args) = @_;
	die "replicator of " . $node->name . " already running" if $replicators{ $node->name };
	my $bin = replicator_binary();
	my $log = replicator_log($node);
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', $log) or POSIX::_exit(126);
		open(STDERR, '>>', $log) or POSIX::_exit(126);
		exec($bin, '--local', $node->connstr('postgres'), @args) or POSIX::_exit(127);
	}
	$replicators{ $node->name } = $pid;
	return $pid;
}

# SIGTERM, then wait: returns the exit status ($?).
sub stop_replicator
{
	my ($node) = @_;
	my $pid = delete $replicators{ $node->name } or return undef;
	kill 'TERM', $pid;
	waitpid($pid, 0);
	return $?;
}

# SIGKILL: the replicator gets no chance to finish anything.
sub kill_replicator
{
	my ($node) = @_;
	my $pid = delete $replicators{ $node->name } or return undef;
	kill 'KILL', $pid;
	waitpid($pid, 0);
	return $?;
}

# name => meridian.table_checksum($table) for each node.
sub checksums
{
	my ($nodes, $table) = @_;
	return { map { $_->name => $_->safe_psql('postgres', "SELECT meridian.table_checksum('$table')") } @$nodes };
}

# Polls until every node has the same table_checksum; true when they do, false after $timeout
# seconds (the caller asserts, and shows the checksums).
sub wait_converged
{
	my ($nodes, $table, $timeout) = @_;
	my $deadline = time() + ($timeout // 60);
	while (time() < $deadline)
	{
		my $c = checksums($nodes, $table);
		my %distinct = map { $_ => 1 } values %$c;
		return 1 if keys %distinct == 1;
		usleep(200_000);
	}
	return 0;
}

# Polls meridian.region_status on $node until $condition (SQL over its columns) holds for the
# row of $peer; true, or false after $timeout seconds.
sub wait_for_region_status
{
	my ($node, $peer, $condition, $timeout) = @_;
	my $deadline = time() + ($timeout // 30);
	while (time() < $deadline)
	{
		my $ok = $node->safe_psql('postgres',
			"SELECT count(*) FROM meridian.region_status WHERE region = '$peer' AND ($condition)");
		return 1 if $ok eq '1';
		usleep(100_000);
	}
	return 0;
}

1;
