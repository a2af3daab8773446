// The CUDA engine's launch logic, apart from the launching itself: which kernel a layout takes
// (row, tile or strided), with which arguments and geometry. It is written over a Device that
// launches:
//
//   struct Device {
//     int sms() const;                  // multiprocessors
//     int64_t grid_cap() const;         // the cap on a grid's x extent (engine.cuh's grid_cap)
//     bool tiles() const;               // whether the tile kernel may be used
//     int strided_unroll() const;       // the most elements a strided kernel's thread takes
//     template <typename scalar_t, typename W, int VEC, typename F>
//     void row(const RowArgs&, const RowGeometry&, int64_t rows, int64_t d, const F&) const;
//     template <typename scalar_t, typename W, typename F>
//     void strided(const StridedArgs&, int64_t n, const StridedGeometry&, const F&) const;
//     template <typename scalar_t, typename W, typename F>
//     int tiles_per_sm() const;         // tile kernel blocks a multiprocessor holds at once
//     template <typename scalar_t, typename W, typename F>
//     void tile(const TileArgs&, const TileWalk&, const F&) const;
//   };
//
// engine.cuh's CudaDevice launches the kernels on a GPU; host_emulation.cpp's device runs the same
// kernel bodies on the CPU, block by block and thread by thread (FFN_EXT_EMULATE_CUDA=1), so that
// the tests reach this logic, and the kernels' indexing over every layout they are given, on a
// machine without a GPU. Torch (ATen) and the kernel bodies only: no CUDA header.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/TensorIterator.h>
#include <c10/util/BFloat16.h>

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <type_traits>
#include <vector>

#include "row_kernel.cuh"
#include "strided_kernel.cuh"
#include "ffn_ext/engine_common.h"
#include "ffn_ext/kernels.h"

namespace ffn_ext::cuda {

template <>
struct FloatUpperHalf<c10::BFloat16> : std::true_type {};

// One launch's operands (outputs first) and their layout.
struct Launch {
  c10::ArrayRef<at::Tensor> outs, ins;
  RowLayout rl;  // valid when rows
  bool rows;     // the operands form rows with unit inner stride (row_layout or one dense row)
};

// The layout of a launch: a dense layout shared by every operand is one row of numel elements,
// else rows where row_layout finds them, else neither (the strided or tile kernel).
inline Launch plan_launch(c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins) {
  Launch l{outs, ins, RowLayout{}, false};
  if (flat_layout(outs, ins)) {
    const int64_t n = outs[0].numel();
    l.rl.rows = 1;
    l.rl.d = n;
    std::fill(std::begin(l.rl.row_stride), std::end(l.rl.row_stride), n);
    l.rows = true;
  } else {
    l.rows = row_layout(outs, ins, l.rl);
  }
  return l;
}

// Whether every operand of functor F is stored as scalar_t (no op-math operand beside fp16/bf16
// ones): what the row and tile kernels take.
template <typename scalar_t, typename F>
constexpr bool one_dtype() {
  return (F::IN_OPMATH == 0 && F::OUT_OPMATH == 0) || std::is_same_v<scalar_t, at::opmath_type<scalar_t>>;
}

// Operands in rl's row layout (outputs first, then inputs), all stored as scalar_t. Returns false,
// launching nothing, for rows too short for the row kernel (rows_suit_row_kernel).
template <typename scalar_t, typename W, typename Dev, typename F>
bool launch_rows(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                 const RowLayout& rl, const Dev& dev) {
  RowArgs args{};
  const size_t no = outs.size();
  for (size_t k = 0; k < no; ++k) {
    args.out[k] = static_cast<char*>(outs[k].mutable_data_ptr());
    args.out_stride[k] = rl.row_stride[k];
  }
  for (size_t k = 0; k < ins.size(); ++k) {
    args.in[k] = static_cast<const char*>(ins[k].const_data_ptr());
    args.in_stride[k] = rl.row_stride[no + k];
  }
  const int vec = row_vec<scalar_t>(args, F::NIN, F::NOUT, rl.rows);
  if (!rows_suit_row_kernel(rl.rows, rl.d / vec)) return false;
  auto go = [&](auto vec_tag) {
    constexpr int VEC = decltype(vec_tag)::value;
    const RowGeometry g = row_geometry(rl.rows, rl.d / VEC, dev.sms(), dev.grid_cap());
    dev.template row<scalar_t, W, VEC>(args, g, rl.rows, rl.d, f);
  };
  constexpr int full = 16 / sizeof(scalar_t);
  if (vec == full) {
    go(std::integral_constant<int, full>{});
  } else if (vec > 1) {
    if constexpr (full > 2) go(std::integral_constant<int, full / 2>{});
  } else {
    go(std::integral_constant<int, 1>{});
  }
  return true;
}

// A layout of fewer than 2^31 elements and byte offsets below 2^31 (iter.can_use_32bit_indexing()).
template <typename scalar_t, typename W, typename Dev, typename F>
void launch_strided32(const F& f, const at::TensorIterator& iter, const Dev& dev) {
  StridedArgs args{};
  args.ndim = iter.ndim();
  const int nt = iter.ntensors();
  for (int k = 0; k < nt; ++k) args.data[k] = static_cast<char*>(iter.data_ptr(k));
  for (int d = 0; d < args.ndim; ++d) {
    args.sizes[d] = static_cast<uint32_t>(iter.shape()[d]);
    for (int k = 0; k < nt; ++k) args.strides[d][k] = static_cast<uint32_t>(iter.strides(k)[d]);
  }
  strided_prepare(args);
  const int64_t n = iter.numel();
  const StridedGeometry g = strided_geometry(n, dev.sms(), dev.grid_cap(), dev.strided_unroll());
  dev.template strided<scalar_t, W>(args, n, g, f);
}

// Any layout: the tile kernel where some operands run along another dimension than the rest
// (tile_plan) and the functor's operands allow it, else the strided kernel, on parts of at most
// 2^31 elements and offsets (ATen's split, as its own element-wise kernels launch).
template <typename scalar_t, typename W, typename Dev, typename F>
void launch_strided(const F& f, c10::ArrayRef<at::Tensor> outs, c10::ArrayRef<at::Tensor> ins,
                    const Dev& dev) {
  at::TensorIterator iter = strided_iter(outs, ins);
  if (iter.ndim() > kMaxDims) {
    // More dimensions that do not merge than the kernels' offsets hold: 26 or more of size 2 or
    // more, so at least 2^26 elements. ATen's own CUDA kernels, copies included, refuse such
    // layouts ("tensor has too many (>25) dims"), so this cannot go through a dense copy. Instead
    // the output's smallest dimension (of size 2 or more) is walked, one launch a slice, until
    // the slices' layouts fit. A broadcast input takes index 0 where it has size 1, and is whole
    // where it lacks the dimension (broadcasting aligns dimensions from the last).
    const at::Tensor& o = outs[0];
    int64_t dim = -1;
    for (int64_t k = 0; k < o.dim(); ++k) {
      if (o.size(k) > 1 && (dim < 0 || o.size(k) < o.size(dim))) dim = k;
    }
    TORCH_INTERNAL_ASSERT(dim >= 0);  // dimensions of size 1 merge with any other
    for (int64_t i = 0; i < o.size(dim); ++i) {
      std::vector<at::Tensor> outs_i, ins_i;
      for (const auto& t : outs) outs_i.push_back(t.select(dim, i));
      for (const auto& t : ins) {
        const int64_t k = dim - (o.dim() - t.dim());
        ins_i.push_back(k < 0 ? t : t.select(k, t.size(k) > 1 ? i : 0));
      }
      launch_strided<scalar_t, W>(f, outs_i, ins_i, dev);
    }
    return;
  }
  if constexpr (one_dtype<scalar_t, F>() && F::NIN + F::NOUT <= kTileMaxOperands) {
    const int ndim = iter.ndim(), nt = iter.ntensors();
    int64_t sizes[kMaxDims], strides[kMaxDims][kMaxOperands];
    for (int d = 0; d < ndim; ++d) {
      sizes[d] = iter.shape()[d];
      for (int k = 0; k < nt; ++k) strides[d][k] = iter.strides(k)[d];
    }
    TileArgs t{};
    if (dev.tiles() && tile_plan(ndim, sizes, strides, nt, sizeof(scalar_t), t)) {
      for (int k = 0; k < nt; ++k) t.data[k] = static_cast<char*>(iter.data_ptr(k));
      // As many blocks as the GPU holds at once.
      const int per_sm = dev.template tiles_per_sm<scalar_t, W, F>();
      const TileWalk w =
          tile_walk(t, std::min<int64_t>(int64_t(dev.sms()) * per_sm, dev.grid_cap()));
      dev.template tile<scalar_t, W>(t, w, f);
      return;
    }
  }
  if (iter.can_use_32bit_indexing()) {
    launch_strided32<scalar_t, W>(f, iter, dev);
  } else {
    for (const auto& part : iter.with_32bit_indexing()) launch_strided32<scalar_t, W>(f, part, dev);
  }
}

// Functor f over the launch's operands: the row kernel where the layout allows, else the tile or
// the strided one (launch_strided). W: the type f computes in.
template <typename scalar_t, typename W, typename Dev, typename F>
void launch_layout(const F& f, const Launch& l, const Dev& dev) {
  TORCH_INTERNAL_ASSERT(F::NIN == (int)l.ins.size() && F::NOUT == (int)l.outs.size());
  if constexpr (one_dtype<scalar_t, F>()) {
    if (l.rows && launch_rows<scalar_t, W>(f, l.outs, l.ins, l.rl, dev)) return;
  }
  launch_strided<scalar_t, W>(f, l.outs, l.ins, dev);
}

}  // namespace ffn_ext::cuda
