# perl_load.pl - a Perl program that allocates in the usual ways: hashes
# of arrays growing and shrinking, strings built, split, joined and
# rewritten by regular expressions, sorting. What it prints depends only on
# the input it generates; run.sh compares it with and without the preload.
use strict;
use warnings;

my $rng = 42;
sub rnd { $rng = ($rng * 1103515245 + 12345) % 2147483648; return $rng; }

# Lines of text: words, numbers, dates, addresses.
my @words = qw(alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu);
my @lines;
for my $i (1 .. 60000) {
    my $n = 3 + rnd() % 12;
    my @w = map { $words[rnd() % @words] . (rnd() % 100) } 1 .. $n;
    push @lines, sprintf("%05d %s 20%02d-%02d-%02d user%d\@host%d.example %s",
        $i, join(' ', @w), rnd() % 30, 1 + rnd() % 12, 1 + rnd() % 28, rnd() % 500, rnd() % 40,
        'x' x (rnd() % 300));
}

# A hash of arrays keyed by word, grown and pruned.
my %index;
for my $line (@lines) {
    my ($id) = $line =~ /^(\d+)/;
    for my $w ($line =~ /\b([a-z]+\d+)\b/g) {
        push @{ $index{$w} }, $id;
    }
}
for my $k (keys %index) {
    delete $index{$k} if @{ $index{$k} } < 30;
}

# Rewrites: dates reordered, addresses masked, runs of x squeezed.
my ($dates, $hosts, $len) = (0, 0, 0);
for my $line (@lines) {
    $dates += ($line =~ s/\b20(\d\d)-(\d\d)-(\d\d)\b/$3.$2.20$1/g);
    $hosts += ($line =~ s/user(\d+)\@host(\d+)\.example/"<" . ($1 % 7) . ":" . ($2 % 5) . ">"/ge);
    $line =~ s/x{10,}/"x" . length($&)/ge;
    $len += length $line;
}

# Counting with a hash, sorted by count and then by name.
my %count;
$count{$_}++ for map { /([a-z]+)\d+/g } @lines;
my @top = sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count;

my $sum = 0;
$sum = ($sum * 31 + unpack('%32C*', $_)) % 4294967296 for sort @lines;
printf "lines: %d, length %d, checksum %d\n", scalar @lines, $len, $sum;
printf "dates rewritten: %d, hosts masked: %d\n", $dates, $hosts;
printf "index: %d words kept, %d entries\n", scalar keys %index, eval { my $t = 0; $t += @$_ for values %index; $t };
printf "top: %s\n", join(' ', map { "$_=$count{$_}" } @top[0 .. 5]);
