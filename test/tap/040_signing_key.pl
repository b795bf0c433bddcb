# The region's signing key end to end: `meridian-replicator keygen` writes a secret key file
# (mode 0600), the server reads it through meridian.signing_key_file, and
# meridian.local_public_key() returns exactly the public key keygen printed. A key file others
# can read, and a missing one, are refused with clear errors.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use MeridianTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# keygen is built by CMake into build/ (make test does that before the TAP tests).
my $keygen = "$FindBin::RealBin/../../build/replicator/meridian-replicator";
plan skip_all => "meridian-replicator not built ($keygen): run make test, or cmake -S . -B build && cmake --build build"
  unless -x $keygen;

my $node = PostgreSQL::Test::Cluster->new('keys');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION meridian');

my $dir = PostgreSQL::Test::Utils::tempdir();
my $key = "$dir/region.key";
my ($out, $err) = ('', '');
IPC::Run::run([ $keygen, 'keygen', $key ], '>', \$out, '2>', \$err);
is($?, 0, 'keygen succeeds');
chomp $out;
like($out, qr/^[0-9a-f]{64}$/, 'keygen prints a 32-byte public key in hex');
is((stat $key)[2] & 07777, 0600, 'the key file is mode 0600');

IPC::Run::run([ $keygen, 'keygen', $key ], '>', \my $out2, '2>', \my $err2);
isnt($?, 0, 'keygen refuses to overwrite an existing key file');

$node->append_conf('postgresql.conf', "meridian.signing_key_file = '$key'\n");
$node->reload;
is($node->safe_psql('postgres', "SELECT encode(meridian.local_public_key(), 'hex')"),
	$out, 'local_public_key() is the public key keygen printed');

chmod 0640, $key;
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'SELECT meridian.local_public_key()', on_error_stop => 0);
like($stderr, qr/ERROR:.*signing key file/i, 'a key file the group can read is refused, naming the key file');

unlink $key;
($ret, $stdout, $stderr) =
  $node->psql('postgres', 'SELECT meridian.local_public_key()', on_error_stop => 0);
like($stderr, qr/ERROR:/, 'a missing key file is refused');
note "missing file: $stderr";

$node->stop;
done_testing();
