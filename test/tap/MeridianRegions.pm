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
# timestamps (last-writer-wins needs them) and load meridian with shared_preload_libraries, and
# each region's conninfo in the catalog is the node's own connstr (unix socket), so the
# replicators reach their peers as a DBA's would.
#
# A simulated WAN: setup_regions(..., { wan => { delay_ms => 20, delays => { 'a b' => 40 } } })
# routes every inter-region connection through one wan-proxy process (test/wan_proxy, built by
# CMake into build/wan-proxy). For each ordered pair (from, to) there is one link named
# "from->to", listening on a free loopback port and forwarding to the TCP port of `to`; the
# catalog of region `from` registers peer `to` as `host=127.0.0.1 port=<that link> dbname=postgres`,
# so everything `from` opens towards `to` (its replicator's stream from `to`, look-ups of `to`'s
# position) crosses that link, in both directions with the link's one-way delay. The nodes then
# listen on 127.0.0.1 too. `delays` keys are "from to" (that link only) or "a b" written with
# a `<->` ("a<->b": both links of the pair); delay_ms is the default for every link.
#
#   wan_set_delay('us-east', 'eu-west', 30);   # link us-east->eu-west
#   wan_set_pair_delay('us-east', 'eu-west', 30); # both links of the pair
#   wan_cut / wan_hold / wan_restore($from, $to)  # one link
#   wan_isolate('ap-south' [, 'hold'])          # cut (or hold) every link to and from a region
#   wan_heal('ap-south')                        # restore every link of a region
#   wan_status($from, $to)                      # "ok <state> <delay> <connections>"
#   stop_wan()                                  # also done at exit
package MeridianRegions;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(usleep time);
use Test::More;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils ();

our @EXPORT_OK = qw(replicator_binary setup_regions start_replicator stop_replicator kill_replicator
  replicator_log wait_converged checksums wait_for_region_status
  wan_proxy_binary wan_link wan_links wan_command wan_set_delay wan_set_pair_delay wan_cut wan_hold
  wan_restore wan_isolate wan_heal wan_status stop_wan applied_log_sql);

# meridian-replicator is built by CMake into build/ (make test does that before the TAP tests).
sub replicator_binary
{
	return $ENV{MERIDIAN_REPLICATOR} // "$FindBin::RealBin/../../build/replicator/meridian-replicator";
}

# The simulated WAN's proxy, also built by CMake (make test builds everything into build/).
sub wan_proxy_binary
{
	return $ENV{MERIDIAN_WAN_PROXY} // "$FindBin::RealBin/../../build/wan-proxy";
}

my %replicators;    # node name => pid
my $wan;            # { pid, control => socket, links => { "a->b" => port }, names => [...], log }

END
{
	# A failed test must not leave daemons behind.
	for my $pid (values %replicators)
	{
		kill 'KILL', $pid;
		waitpid($pid, 0);
	}
	stop_wan();
}

# setup_regions(@names [, { conf => [lines], table_sql => $sql }]): one started node per region,
# every region registered in every region with its real public key, each node's local region set,
# then table_sql run in every region.
# With { wan => {...} } (see the top of this file) every inter-region connection goes through
# one wan-proxy.
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
		if ($opts->{wan})
		{
			# The proxy reaches the nodes over TCP on loopback.
			$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
			$node->append_conf('pg_hba.conf',
				"host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n");
		}
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
			"shared_preload_libraries = 'meridian'",
			@{ $opts->{conf} // [] }) . "\n");
		$node->start;
		$node->safe_psql('postgres', 'CREATE EXTENSION meridian');
		$nodes{$name} = $node;
	}
	start_wan(\%nodes, $opts->{wan}) if $opts->{wan};
	for my $name (@names)
	{
		my $sql = '';
		for my $other (@names)
		{
			my $conninfo = $nodes{$other}->connstr('postgres');
			if ($opts->{wan})
			{
				# A peer through the link from this region to it; the local region as itself.
				my $port = $other eq $name ? $nodes{$other}->port : $wan->{links}{"$name->$other"};
				$conninfo = "host=127.0.0.1 port=$port dbname=postgres";
			}
			$conninfo =~ s/'/''/g;
			$sql .= "SELECT meridian.create_region('$other', '$conninfo', decode('$keys{$other}', 'hex'));\n";
		}
		$sql .= "SELECT meridian.set_local_region('$name');\n";
		$sql .= $opts->{table_sql} if $opts->{table_sql};
		$nodes{$name}->safe_psql('postgres', $sql);
	}
	return %nodes;
}

# Starts the wan-proxy with one link per ordered pair of regions (setup_regions does this).
sub start_wan
{
	my ($nodes, $conf) = @_;
	die "a wan-proxy is already running" if $wan;
	$conf = {} unless ref $conf eq 'HASH';
	my $bin = wan_proxy_binary();
	die "wan-proxy not built ($bin): run make test, or cmake --build build --target wan-proxy" unless -x $bin;
	my @names = sort keys %$nodes;
	my %links;
	my @args = ('--control', PostgreSQL::Test::Cluster::get_free_port());
	my $control_port = $args[1];
	for my $from (@names)
	{
		for my $to (grep { $_ ne $from } @names)
		{
			my $port = PostgreSQL::Test::Cluster::get_free_port();
			$links{"$from->$to"} = $port;
			my $delay = _configured_delay($conf, $from, $to);
			push @args, '--link', "$from->$to=$port:" . $nodes->{$to}->port . ":$delay";
		}
	}
	my $log = $PostgreSQL::Test::Utils::tmp_check . "/wan-proxy-" . POSIX::getpid() . ".log";
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', $log) or POSIX::_exit(126);
		open(STDERR, '>>', $log) or POSIX::_exit(126);
		exec($bin, @args) or POSIX::_exit(127);
	}
	$wan = { pid => $pid, links => \%links, names => \@names, log => $log };
	my $deadline = time() + 30;
	while (!$wan->{control})
	{
		$wan->{control} = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $control_port, Proto => 'tcp');
		last if $wan->{control};
		die "wan-proxy did not start (log: $log)" if time() > $deadline || waitpid($pid, POSIX::WNOHANG()) == $pid;
		usleep(50_000);
	}
	$wan->{control}->autoflush(1);
	note "wan-proxy $pid: control port $control_port, links "
	  . join(', ', map { "$_ on $links{$_}" } sort keys %links);
	return;
}

# The configured one-way delay of link from->to: "from to" beats "a<->b" beats delay_ms.
sub _configured_delay
{
	my ($conf, $from, $to) = @_;
	my $d = $conf->{delays} // {};
	return $d->{"$from $to"} // $d->{"$from<->$to"} // $d->{"$to<->$from"} // $conf->{delay_ms} // 0;
}

# The name of the link that region $from uses to reach $to, checked.
sub wan_link
{
	my ($from, $to) = @_;
	die "no simulated WAN: setup_regions(..., { wan => ... })" unless $wan;
	my $name = "$from->$to";
	die "no wan link $name" unless exists $wan->{links}{$name};
	return $name;
}

# Every link to and from a region.
sub wan_links
{
	my ($region) = @_;
	die "no simulated WAN" unless $wan;
	return grep { /^\Q$region\E->/ || /->\Q$region\E$/ } sort keys %{ $wan->{links} };
}

# Sends one control command, returns the answer; dies on "error ...".
sub wan_command
{
	my ($line) = @_;
	die "no simulated WAN" unless $wan && $wan->{control};
	my $c = $wan->{control};
	print $c "$line\n" or die "wan-proxy control: $!";
	my $reply = <$c>;
	die "wan-proxy closed its control connection" unless defined $reply;
	chomp $reply;
	die "wan-proxy: \"$line\" answered \"$reply\"" unless $reply =~ /^ok/;
	return $reply;
}

sub wan_set_delay { my ($from, $to, $ms) = @_; return wan_command('delay ' . wan_link($from, $to) . " $ms"); }

sub wan_set_pair_delay
{
	my ($a, $b, $ms) = @_;
	wan_set_delay($a, $b, $ms);
	return wan_set_delay($b, $a, $ms);
}

sub wan_cut { my ($from, $to) = @_; return wan_command('cut ' . wan_link($from, $to)); }

# A held link keeps its sockets open but moves nothing (a link that silently stops delivering).
sub wan_hold { my ($from, $to) = @_; return wan_command('hold ' . wan_link($from, $to)); }

sub wan_restore { my ($from, $to) = @_; return wan_command('restore ' . wan_link($from, $to)); }

sub wan_status { my ($from, $to) = @_; return wan_command('status ' . wan_link($from, $to)); }

# Cuts (or, with 'hold', holds) every link to and from $region: it is partitioned off.
sub wan_isolate
{
	my ($region, $how) = @_;
	$how //= 'cut';
	die "wan_isolate: cut or hold, not $how" unless $how eq 'cut' || $how eq 'hold';
	my @links = wan_links($region);
	die "no wan links of region $region" unless @links;
	wan_command("$how $_") for @links;
	return;
}

# Restores every link to and from $region.
sub wan_heal
{
	my ($region) = @_;
	wan_command("restore $_") for wan_links($region);
	return;
}

# Stops the proxy (SIGTERM, then waits); every connection through it closes. Idempotent.
sub stop_wan
{
	return unless $wan;
	my $w = $wan;
	$wan = undef;
	close($w->{control}) if $w->{control};
	kill 'TERM', $w->{pid};
	waitpid($w->{pid}, 0);
	return;
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
# SQL for setup_regions' table_sql: applied_log records every row of $table that the replicator
# applies (a session with a replication origin), so a transaction applied twice shows as a
# second entry for its rows (an UPDATE).
sub applied_log_sql
{
	my ($table) = @_;
	return qq{
	CREATE TABLE applied_log (op text, id uuid);
	CREATE FUNCTION log_applied() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN
		IF pg_replication_origin_session_is_setup() THEN
			INSERT INTO applied_log VALUES (TG_OP, NEW.id);
		END IF;
		RETURN NULL;
	END \$\$;
	CREATE TRIGGER log_applied AFTER INSERT OR UPDATE ON $table FOR EACH ROW EXECUTE FUNCTION log_applied();
	ALTER TABLE $table ENABLE ALWAYS TRIGGER log_applied;
};
}

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
