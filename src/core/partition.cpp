#include "core/partition.hpp"

namespace meridian::partition {

judgement judge(bool heard_here, const std::vector<view> &others, int write_quorum) {
    judgement j;
    j.hearing = 1 + (heard_here ? 1 : 0);
    for (view v : others)
        if (v != view::does_not_hear)
            j.hearing++;
    j.cut_off = write_quorum > 1 && j.hearing < write_quorum;
    return j;
}

}  // namespace meridian::partition
