// Whether a peer region is cut off from a write quorum (docs/consistency.md, "During a
// partition"): it is heard by fewer than w regions, counting the peer itself, this region, and
// every other region by what it last said. A region whose word is unknown (or too old) counts as
// hearing it, so doubt never makes a peer look cut off. Pure C++: test/unit/test_partition.cpp.
#pragma once

#include <vector>

namespace meridian::partition {

enum class view { unknown, hears, does_not_hear };

struct judgement {
    int hearing = 0;       // regions that hear the peer (or may), the peer itself included
    bool cut_off = false;  // hearing < write quorum (never with a quorum of 1)
};

// heard_here: a heartbeat of the peer was applied here within the heartbeat timeout.
// others: what each region other than this one and the peer says of the peer.
judgement judge(bool heard_here, const std::vector<view> &others, int write_quorum);

}  // namespace meridian::partition
