# Replication under faults (issue 3 §5): every committed row arrives exactly once after kill -9
# of a replicator and of a receiving and a sending server in the middle of a load; a region whose
# server is down for 20 s during writes catches up from its slot; a peer registered with the wrong
# public key gets nothing applied, says why in region_status and the log, while the other peer's
# changes keep flowing, and catches up once the right key is registered.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use MeridianRegions qw(applied_log_sql replicator_binary setup_regions start_replicator stop_replicator kill_replicator
  replicator_log wait_converged checksums wait_for_region_status);
use MeridianTest qw(crash_node);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

plan skip_all => "meridian-replicator not built: run make test" unless -x replicator_binary();

my @names = ('us-east', 'eu-west', 'ap-south');
# applied_log records every row the replicator applies (a session with a replication origin):
# a transaction applied twice would show as a second entry for its rows (an UPDATE).
my %node = setup_regions(@names, { table_sql => q{
	CREATE TABLE events (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), n int NOT NULL, region text NOT NULL,
	                     payload jsonb);
	SELECT meridian.replicate_table('events');
} . applied_log_sql('events') });
my @nodes = map { $node{$_} } @names;
my ($us, $eu, $ap) = @node{@names};
start_replicator($_) for @nodes;
for my $n (@nodes)
{
	ok(wait_for_region_status($n, $_, 'connected', 60), $n->name . " streams from $_") for grep { $_ ne $n->name } @names;
}

# A load in one region: single-row and 20-row transactions, for $seconds.
sub start_load
{
	my ($n, $seconds) = @_;
	my $r = $n->name;
	my $script = $n->basedir . "/events-" . time() . ".sql";
	PostgreSQL::Test::Utils::append_to_file($script, qq{
\\set k random(1, 10)
\\if :k <= 8
INSERT INTO events (n, region, payload) VALUES (:k, '$r', jsonb_build_object('k', :k));
\\else
INSERT INTO events (n, region) SELECT g, '$r' FROM generate_series(1, 20) g;
\\endif
});
	return IPC::Run::start(
		[ 'pgbench', '-n', '-T', $seconds, '-c', '1', '-f', $script, '-h', $n->host, '-p', $n->port, 'postgres' ],
		'>', \my $out, '2>', \my $err);
}

# Every row written in $source arrived exactly once in each other region.
sub exactly_once
{
	my ($source, $label) = @_;
	my $r = $source->name;
	my $rows = $source->safe_psql('postgres', "SELECT count(*) FROM events WHERE region = '$r'");
	for my $n (grep { $_->name ne $r } @nodes)
	{
		my $got = $n->safe_psql('postgres', qq{
			SELECT count(*), count(*) FILTER (WHERE l.op = 'INSERT'), count(DISTINCT l.id)
			FROM applied_log l JOIN events e USING (id) WHERE e.region = '$r'});
		is($got, "$rows|$rows|$rows", "$label: the $rows rows of $r were applied exactly once in " . $n->name);
	}
}

# --- kill -9 of eu-west's replicator in the middle of a load in us-east, then a restart
my $load = start_load($us, 6);
sleep 2;
kill_replicator($eu);
sleep 1;
start_replicator($eu);
ok($load->finish, 'load in us-east ran through the replicator crash');
ok(wait_converged(\@nodes, 'events', 60), 'converged after the replicator crash') or diag explain checksums(\@nodes, 'events');
exactly_once($us, 'replicator kill -9');

# --- kill -9 of the receiving server (eu-west), then of the sending one (us-east), mid-load
for my $victim ($eu, $us)
{
	$load = start_load($us, 6);
	sleep 2;
	crash_node($victim);
	$victim->start;
	$load->finish;    # the load fails when its own server crashes: only committed rows count
	ok(wait_converged(\@nodes, 'events', 90), 'converged after kill -9 of ' . $victim->name . "'s server")
	  or diag explain checksums(\@nodes, 'events');
	exactly_once($us, 'server kill -9 of ' . $victim->name);
}

# --- ap-south's server is down for 20 s while the others write, then returns
$ap->stop('fast');
my @loads = (start_load($us, 20), start_load($eu, 20));
sleep 20;
$ap->start;
ok($_->finish, 'load during the outage') for @loads;
ok(wait_converged(\@nodes, 'events', 90), 'ap-south caught up after 20 s down') or diag explain checksums(\@nodes, 'events');
exactly_once($_, 'after the outage') for ($us, $eu);

# --- us-east registers eu-west with a wrong public key
my $right_key = $us->safe_psql('postgres', "SELECT encode(public_key, 'hex') FROM meridian.regions WHERE name = 'eu-west'");
my $conninfo = $us->safe_psql('postgres', "SELECT conninfo FROM meridian.regions WHERE name = 'eu-west'");
$conninfo =~ s/'/''/g;
$us->safe_psql('postgres', qq{
	SELECT meridian.drop_region('eu-west');
	SELECT meridian.create_region('eu-west', '$conninfo', decode(repeat('ab', 32), 'hex'));});
# The replicator picks up the new key within a second; eu-west's heartbeats then fail at once.
ok(wait_for_region_status($us, 'eu-west', q{last_error LIKE '%bad signature%'}, 30),
	'region_status in us-east shows the bad signature of eu-west');
my $before_eu = $us->safe_psql('postgres', "SELECT count(*) FROM events WHERE region = 'eu-west'");
$eu->safe_psql('postgres', "INSERT INTO events (n, region) SELECT g, 'eu-west' FROM generate_series(1, 50) g");
$ap->safe_psql('postgres', "INSERT INTO events (n, region) SELECT g, 'ap-south' FROM generate_series(1, 50) g");
like(slurp_file(replicator_log($us)), qr/stream from eu-west stopped: invalid replication message: bad signature/,
	"and the replicator's log says why");
my $ap_rows = $ap->safe_psql('postgres', "SELECT count(*) FROM events WHERE region = 'ap-south'");
ok($us->poll_query_until('postgres', "SELECT count(*) = $ap_rows FROM events WHERE region = 'ap-south'"),
	"ap-south's changes keep flowing into us-east");
ok(wait_converged([ $ap, $eu ], 'events', 30), 'eu-west and ap-south, which trust each other, converge');
is($us->safe_psql('postgres', "SELECT count(*) FROM events WHERE region = 'eu-west'"), $before_eu,
	'nothing from eu-west was applied in us-east');

$us->safe_psql('postgres', qq{
	SELECT meridian.drop_region('eu-west');
	SELECT meridian.create_region('eu-west', '$conninfo', decode('$right_key', 'hex'));});
ok(wait_converged(\@nodes, 'events', 60), 'with the right key, us-east catches up with eu-west')
  or diag explain checksums(\@nodes, 'events');
exactly_once($_, 'at the end') for @nodes;

stop_replicator($_) for @nodes;
done_testing();
