// Which thread reads what another thread wrote, per conv node of a program, from the chunk
// partitions (not from timing): the data that crosses cores between layers, which costs 8-9 µs
// per 200 KiB when the hypervisor places the two vCPUs far apart (docs/threads.md).
//
// Each node's output elements get the lane (thread) whose chunk writes them, with the pool's
// lanes (lane i runs the i-th contiguous share of a region's chunks while no thread steals,
// framework/parallel_split.h), and each conv's reads are attributed to the lane whose chunk reads
// them. A conv's cross share is the share of its lanes' input reads (elements, counted once per
// lane that reads them) that another lane wrote in the node producing them.
//
// Where the partitions come from:
//  - depthwise convs: exactly the operators' own split (qs8_dwconv_grid / f32_dwconv_grid and
//    dw_split of kernels/dwconv_band.h, on the CPU dispatched now);
//  - other convs: a model of their kernels (kernels/qs8_conv.cc, qs8_conv_igemm.cc, f32_conv.cc):
//    the output split by pixels in contiguous shares (their GEMM tiles); a 1×1 stride-1 conv
//    without padding reads each pixel in place on its thread, any other conv the input rows its
//    thread's output rows reach, halo rows included (each thread copies those rows inside the
//    region, kernels/own_rows.h). Int8 convs cut by weight blocks (7² planes with many channels)
//    are modelled by pixels too;
//  - every other node: its output in contiguous shares of the flat tensor (elementwise splits).
// The per-node thread choice (runtime/thread_choice.h) is not modelled: every node splits as the
// cost model plans for `threads`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/graph.h"

namespace finch::runtime {

struct NodeTraffic {
  int32_t node = -1;
  std::string name, op;
  std::string split;       // "dw bands", "dw channels", "dw whole", "pixels"
  int64_t reads = 0;       // input elements read, per lane, written by an earlier node
  int64_t cross = 0;       // of those, written by another lane
  double share() const { return reads ? double(cross) / double(reads) : 0.0; }
};

// One row per conv2d / qconv2d node with a 4-D input. dw_by_channels: the depthwise convs split
// as before bands (parallel_for over the N·C planes or N·blocks), for comparison.
std::vector<NodeTraffic> lane_traffic(const Graph& g, int threads, bool dw_by_channels = false);

}  // namespace finch::runtime
