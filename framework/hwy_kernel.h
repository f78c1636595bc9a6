// The Highway skeleton every *_hwy.cc kernel file shares, in one place. A kernel file names
// itself and includes this right after:
//
//   #undef HWY_TARGET_INCLUDE
//   #define HWY_TARGET_INCLUDE "ops/relu_hwy.cc"
//   #include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
//
// then writes its code in `namespace …::HWY_NAMESPACE` between HWY_BEFORE_NAMESPACE() and
// HWY_AFTER_NAMESPACE(), and its HWY_EXPORT table plus plain wrappers calling
// FINCH_DISPATCH(Fn) under `#if HWY_ONCE` (framework/simd_dispatch.h says why not
// HWY_DYNAMIC_DISPATCH). foreach_target.h re-includes the kernel file once per compiled target;
// this header has no include guard on purpose, since highway.h must be seen again for each.
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "framework/simd_dispatch.h"
