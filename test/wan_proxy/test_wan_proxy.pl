#!/usr/bin/perl
# ctest wan_proxy: a link forwards bytes both ways with at least its one-way delay each way,
# `cut` drops the connection and refuses new ones, `hold` keeps the socket open but moves nothing,
# `restore` brings both back (bytes held through it then take the delay from the restore).
# $ARGV[0] is the wan-proxy binary. Loopback ports 55490-55492.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);

my ($proxy) = @ARGV;
my ($control_port, $listen_port, $echo_port) = (55490, 55491, 55492);
my $failures = 0;
# ($$): a match in the first argument is taken in scalar context; in a list a failed one would
# return nothing and shift the description into $ok.
sub check($$) { my ($ok, $what) = @_; print(($ok ? "ok" : "not ok") . " - $what\n"); $failures++ unless $ok; }

# An echo server in a child process.
my $echo = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $echo_port, Listen => 5, ReuseAddr => 1)
  or die "echo listen: $!";
my $echo_pid = fork();
if ($echo_pid == 0) {
	while (my $c = $echo->accept) {
		if (fork() == 0) { while (sysread($c, my $b, 4096)) { syswrite($c, $b) } exit 0 }
		close $c;
	}
	exit 0;
}
my $proxy_pid = fork();
if ($proxy_pid == 0) { exec($proxy, '--control', $control_port, '--link', "l1=$listen_port:$echo_port:50") or exit 127 }
END { kill 'KILL', grep { $_ } ($proxy_pid, $echo_pid); }

my $ctl;
for (1 .. 50) { $ctl = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$control_port") and last; sleep 0.1 }
die "no control port" unless $ctl;
sub ctl { print $ctl "$_[0]\n"; my $r = <$ctl>; chomp $r; return $r }

# Reads until $n bytes came back or $timeout passed; returns what came. Echoes written together
# may arrive in separate reads, and one left unread would answer the next timing check at once.
sub read_bytes {
	my ($s, $n, $timeout) = @_;
	my ($got, $end, $sel) = ('', time() + $timeout, IO::Select->new($s));
	while (length($got) < $n) {
		my $left = $end - time();
		last if $left <= 0 || !$sel->can_read($left);
		sysread($s, my $b, 100) or last;
		$got .= $b;
	}
	return $got;
}

# Seconds until a ping's whole echo is back, undef if it is not within $timeout.
sub roundtrip {
	my ($s, $timeout) = @_;
	my $t0 = time();
	syswrite($s, "ping\n");
	return read_bytes($s, 5, $timeout) eq "ping\n" ? time() - $t0 : undef;
}

my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$listen_port") or die "connect: $!";
my $rtt = roundtrip($s, 5);
check(defined $rtt && $rtt >= 0.100, "a round trip takes at least twice the 50 ms one-way delay");
check(ctl("lateness") =~ /^ok (\d+) \d+ \d+ \d+$/ && $1 >= 2, "lateness counts the ping and its echo");
check(ctl("lateness") eq "ok 0 0 0 0", "lateness starts again after each report");
check(ctl("delay l1 0") =~ /^ok open 0 1$/, "delay changes, one open connection");
check(ctl("hold l1") =~ /^ok held/, "hold");
check(!defined roundtrip($s, 0.5), "a held link moves nothing");
check(ctl("restore l1") =~ /^ok open/, "restore");
syswrite($s, "ping\n");
check(read_bytes($s, 10, 5) eq "ping\nping\n", "after restore, bytes move again (the held ping arrives)");
# Bytes that waited through a hold longer than the delay count from the restore: the echo comes
# back a round trip after it, as after any outage, not at once.
check(ctl("delay l1 50") =~ /^ok open 50 1$/ && ctl("hold l1") =~ /^ok held/, "hold with a 50 ms delay");
syswrite($s, "held");
sleep 0.3;
my $restored = time();
ctl("restore l1");
my $back = IO::Select->new($s)->can_read(5) ? time() - $restored : undef;
check(defined $back && $back >= 0.095 && read_bytes($s, 4, 5) eq "held",
      "held bytes take the link's delay each way from the restore");
check(ctl("cut l1") =~ /^ok cut 50 0$/, "cut drops the connection");
my $sel = IO::Select->new($s);
check($sel->can_read(2) && !sysread($s, my $x, 10), "the client sees its connection closed");
check(!IO::Socket::INET->new(PeerAddr => "127.0.0.1:$listen_port"), "new connections are refused");
check(ctl("restore l1") =~ /^ok open/, "restore after cut");
my $s2 = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$listen_port");
check($s2 && defined roundtrip($s2, 5), "connections work again");
check(ctl("bogus l1") =~ /^error/ && ctl("cut nosuch") =~ /^error/, "bad commands are answered with an error");
exit($failures ? 1 : 0);
