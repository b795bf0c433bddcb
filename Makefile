# Meridian: PostgreSQL 15 extension (PGXS).
#   make && make install     build and install the extension and meridian-replicator (CMake, in build/)
#   make installcheck        pg_regress over sql/ + expected/, isolation tests in test/isolation and the
#                            TAP tests in test/tap
#                            (needs a running server; see scripts/test-all.sh)
#   make test                every test, from a fresh Debian 12 machine (installs what it needs)
#   make demo                the local Fashion-MNIST demo
#   make bench               the Fashion-MNIST (hnsw) benchmark of BENCHMARKS.md
#   make bench-replication   the replication benchmark of BENCHMARKS.md
#   make bench-consistency   the consistency benchmark (issue 4: quorum writes, bounded and strong reads over a simulated WAN)
#   make bench-syncrep-baseline  PostgreSQL's own synchronous replication under the same commits, for comparison

EXTVERSION   = 0.1.0
MODULE_big   = meridian
MODULEDIR    = extension
DATA         = extension/meridian.control
DATA_built   = extension/meridian--$(EXTVERSION).sql

# The install script is assembled from one SQL part per concern, in this order.
SQL_PARTS    = src/module.sql $(sort $(wildcard src/vector/*.sql)) $(sort $(wildcard src/hnsw/*.sql)) \
               $(sort $(wildcard src/ids/*.sql)) \
               $(sort $(wildcard src/regions/*.sql)) $(sort $(wildcard src/decoding/*.sql)) \
               $(sort $(wildcard src/apply/*.sql)) $(sort $(wildcard src/consistency/*.sql))

SRCS         = $(sort $(wildcard src/*.cpp src/*/*.cpp))
OBJS         = $(SRCS:.cpp=.o)

REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=$(srcdir) --load-extension=meridian
# Isolation tests (isolationtester: several sessions interleaved step by step).
ISOLATION    = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=$(srcdir)/test/isolation --load-extension=meridian

# TAP tests: PostgreSQL::Test::Cluster from postgresql-server-dev-15. PostgreSQL refuses root, so
# scripts/test-all.sh runs them as the postgres user from a VPATH build directory under .run/:
#   make -C .run/tap -f $PWD/Makefile VPATH=$PWD prove_installcheck [PROVE_TESTS=test/tap/001_x.pl]
TAP_TESTS    = 1
PROVE_TESTS  = test/tap/*.pl

PG_CONFIG   ?= pg_config
# No JIT bitcode for C++ objects: it would need clang at install time and buys nothing here.
override with_llvm = no

PG_CPPFLAGS  = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir 2>/dev/null)
# -MMD -MP: objects depend on the headers they include (PGXS does not track them by itself).
PG_CXXFLAGS  = -std=c++17 -O3 -fno-omit-frame-pointer -Wno-register -Wno-missing-field-initializers -MMD -MP
# libpq: strong reads ask the peer regions for their positions (src/consistency/peer_positions.cpp).
SHLIB_LINK   = -lstdc++ -lxxhash -lsodium -lpq -lm -pthread
EXTRA_CLEAN  = extension/meridian--$(EXTVERSION).sql $(OBJS:.o=.d)

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else ifeq ($(filter test demo bench bench-replication bench-consistency bench-syncrep-baseline,$(MAKECMDGOALS)),)
# On a fresh machine only `make test`, `make demo` and `make bench` can run: they install PostgreSQL.
$(error pg_config not found: run scripts/install-deps.sh first (make test and make demo do it themselves))
endif

-include $(OBJS:.o=.d)

extension/meridian--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

# meridian-replicator is built by CMake (replicator/CMakeLists.txt) and installed next to the
# server's programs ($(bindir)).
REPLICATOR_BUILD = build
all: replicator
install: install-replicator
replicator:
	cmake -S $(srcdir) -B $(REPLICATOR_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(REPLICATOR_BUILD) -j2 --target meridian-replicator
install-replicator: replicator
	$(INSTALL_PROGRAM) $(REPLICATOR_BUILD)/replicator/meridian-replicator '$(DESTDIR)$(bindir)/meridian-replicator'

.PHONY: test demo bench bench-replication bench-consistency bench-syncrep-baseline unit prove_installcheck replicator install-replicator
# The TAP tests alone, against the installed extension (TESTDIR is the current directory).
prove_installcheck:
	$(prove_installcheck)
test:
	scripts/test-all.sh
demo:
	scripts/demo.sh
bench:
	scripts/bench.sh
bench-replication:
	scripts/bench-replication.sh
bench-consistency:
	scripts/bench-consistency.sh
bench-syncrep-baseline:
	scripts/bench-syncrep-baseline.sh
