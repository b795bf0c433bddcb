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
package MeridianTest;

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(WNOHANG);
use Time::HiRes qw(usleep);
use Test::More;
use PostgreSQL::Test::Utils ();

our @EXPORT_OK = qw(crash_node postmaster_children);

# A killed postmaster is the child of whatever process adopts orphans. If that process never
# reaps (containers, some VM inits), the dead postmaster stays a zombie, its PID stays "alive"
# to kill(0), and the restarted postmaster refuses to start ("lock file postmaster.pid already
# exists"). So this test process makes itself the child subreaper (Linux prctl
# PR_SET_CHILD_SUBREAPER): postmasters started by the test are re-parented to it, and
# crash_node reaps them. On failure the helpers still work where the init reaps.
my $subreaper = 0;
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
			last if $r == $p || !_running($p);
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

1;
