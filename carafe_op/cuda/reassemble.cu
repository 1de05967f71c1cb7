// CARAFE / CARAFE++ reassembly on CUDA: forward, backward to features, backward to masks.
//
// The design is described in carafe_op/cuda_backend.py. In short: one thread per output
// element group (a pixel and VEC channels of one group, or a pixel and one tap), a
// grid-stride loop over a 64-bit work index, every tensor addressed through its own 64-bit
// strides, accumulation in fp32 (fp64 for double), and gather-form backward passes so that
// each output element is written by exactly one thread in a fixed order (no atomics).
//
// Template parameters: T is the storage type; VEC the channels one thread handles (a single
// vector load when CL, VEC strided loads otherwise); CL selects the thread order and says
// the feature-like tensors are channels-last (channel stride 1, VEC-aligned).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

template <typename T>
struct Num;

template <>
struct Num<float> {
  using acc = float;
  __device__ static __forceinline__ float load(float v) { return v; }
  __device__ static __forceinline__ float store(float v) { return v; }
};

template <>
struct Num<double> {
  using acc = double;
  __device__ static __forceinline__ double load(double v) { return v; }
  __device__ static __forceinline__ double store(double v) { return v; }
};

template <>
struct Num<__half> {
  using acc = float;
  __device__ static __forceinline__ float load(__half v) { return __half2float(v); }
  __device__ static __forceinline__ __half store(float v) { return __float2half_rn(v); }
};

template <>
struct Num<__nv_bfloat16> {
  using acc = float;
  __device__ static __forceinline__ float load(__nv_bfloat16 v) { return __bfloat162float(v); }
  __device__ static __forceinline__ __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};

// VEC consecutive elements, aligned so that one load or store moves all of them.
template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  T v[VEC];
};

// Reads VEC channels starting at p: one vector load when they are contiguous, else strided loads.
template <typename T, int VEC, bool CONTIGUOUS>
__device__ __forceinline__ void load_channels(const T* __restrict__ p, long long stride,
                                              typename Num<T>::acc (&out)[VEC]) {
  if constexpr (CONTIGUOUS) {
    const Pack<T, VEC> pack = *reinterpret_cast<const Pack<T, VEC>*>(p);
#pragma unroll
    for (int v = 0; v < VEC; ++v) out[v] = Num<T>::load(pack.v[v]);
  } else {
#pragma unroll
    for (int v = 0; v < VEC; ++v) out[v] = Num<T>::load(p[v * stride]);
  }
}

template <typename T, int VEC, bool CONTIGUOUS>
__device__ __forceinline__ void store_channels(T* __restrict__ p, long long stride,
                                               const typename Num<T>::acc (&values)[VEC]) {
  if constexpr (CONTIGUOUS) {
    Pack<T, VEC> pack;
#pragma unroll
    for (int v = 0; v < VEC; ++v) pack.v[v] = Num<T>::store(values[v]);
    *reinterpret_cast<Pack<T, VEC>*>(p) = pack;
  } else {
#pragma unroll
    for (int v = 0; v < VEC; ++v) p[v * stride] = Num<T>::store(values[v]);
  }
}

// One work item: image n, pixel (y, x) and a chunk (VEC channels, or one tap of one group).
// Per-axis coordinates fit in 32 bits (the host checks n*height and chunks*width < 2^31);
// the flat work index and every memory offset are 64-bit.
struct Item {
  int n, y, x, chunk;
};

// A row is one (n, y); within it, channels-last order walks chunks fastest (a warp reads
// contiguous channels of a pixel) and planar order walks x fastest, then chunks (a warp reads
// consecutive x of one plane, and the row's next chunks follow at once, so its weights stay
// in cache). One 64-bit division per item; the rest is 32-bit.
template <bool CL>
__device__ __forceinline__ Item decompose(long long idx, int chunks, int height, int width) {
  const long long row_items = static_cast<long long>(chunks) * width;
  const int row = static_cast<int>(idx / row_items);
  const int within = static_cast<int>(idx - row * row_items);
  Item item;
  if constexpr (CL) {
    item.chunk = within % chunks;
    item.x = within / chunks;
  } else {
    item.x = within % width;
    item.chunk = within / width;
  }
  item.y = row % height;
  item.n = row / height;
  return item;
}

__device__ __forceinline__ int source_of(int out_pos, int scale, bool upsample) {
  return upsample ? out_pos / scale : out_pos * scale;
}

// The outputs [lo, hi) along one axis whose source position is `base`; false when none.
__device__ __forceinline__ bool outputs_of(int base, int in_size, int out_size, int scale, bool upsample, int& lo,
                                           int& hi) {
  if (base < 0 || base >= in_size) return false;
  if (upsample) {
    lo = base * scale;
    hi = lo + scale < out_size ? lo + scale : out_size;
    return lo < hi;
  }
  if (base % scale != 0 || base / scale >= out_size) return false;
  lo = base / scale;
  hi = lo + 1;
  return true;
}

#define CARAFE_GRID_STRIDE_LOOP(idx, total)                                                           \
  for (long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; idx < (total); \
       idx += static_cast<long long>(gridDim.x) * blockDim.x)

// Every kernel takes three tensors (a data pointer and N, C, H, W strides in elements each),
// then the sizes below; all parameters are 8 bytes so the host passes them uniformly.
#define CARAFE_SIZE_PARAMS                                                                         \
  long long channels, long long in_height, long long in_width, long long out_height, long long out_width, \
      long long kernel_size, long long groups, long long scale, long long upsample, long long total

#define CARAFE_UNPACK_SIZES                                     \
  const int C = static_cast<int>(channels);                     \
  const int H = static_cast<int>(in_height);                    \
  const int W = static_cast<int>(in_width);                     \
  const int OH = static_cast<int>(out_height);                  \
  const int OW = static_cast<int>(out_width);                   \
  const int k = static_cast<int>(kernel_size);                  \
  const int r = k / 2;                                          \
  const int G = static_cast<int>(groups);                       \
  const int group_channels = C / G;                             \
  const int s = static_cast<int>(scale);                        \
  const bool up = upsample != 0;

// out[n, c, y, x] = sum over taps (i, j) of masks[n, g*k*k + i*k + j, y, x] * features[n, c, sy + i - r, sx + j - r]
template <typename T, int VEC, bool CL>
__global__ void __launch_bounds__(256) reassemble_forward(
    const T* __restrict__ features, long long f_sn, long long f_sc, long long f_sh, long long f_sw,
    const T* __restrict__ masks, long long m_sn, long long m_sc, long long m_sh, long long m_sw,
    T* __restrict__ out, long long o_sn, long long o_sc, long long o_sh, long long o_sw, CARAFE_SIZE_PARAMS) {
  using A = typename Num<T>::acc;
  CARAFE_UNPACK_SIZES
  CARAFE_GRID_STRIDE_LOOP(idx, total) {
    const Item it = decompose<CL>(idx, C / VEC, OH, OW);
    const int c0 = it.chunk * VEC;
    const int g = c0 / group_channels;
    const int sy = source_of(it.y, s, up);
    const int sx = source_of(it.x, s, up);
    const T* w_pixel = masks + it.n * m_sn + g * k * k * m_sc + it.y * m_sh + it.x * m_sw;
    const T* f_image = features + it.n * f_sn + c0 * f_sc;
    A acc[VEC] = {};
    for (int i = 0; i < k; ++i) {
      const int yy = sy + i - r;
      if (yy < 0 || yy >= H) continue;
      for (int j = 0; j < k; ++j) {
        const int xx = sx + j - r;
        if (xx < 0 || xx >= W) continue;
        const A weight = Num<T>::load(w_pixel[(i * k + j) * m_sc]);
        A values[VEC];
        load_channels<T, VEC, CL>(f_image + yy * f_sh + xx * f_sw, f_sc, values);
#pragma unroll
        for (int v = 0; v < VEC; ++v) acc[v] += weight * values[v];
      }
    }
    store_channels<T, VEC, CL>(out + it.n * o_sn + c0 * o_sc + it.y * o_sh + it.x * o_sw, o_sc, acc);
  }
}

// grad_features[n, c, u, v] = sum of grad_out * masks over every (output, tap) that read (u, v).
// grad_features is channels-last and VEC-aligned (allocated by the backend), so it is always
// written with vector stores.
template <typename T, int VEC, bool CL>
__global__ void __launch_bounds__(256) reassemble_backward_features(
    const T* __restrict__ grad_out, long long g_sn, long long g_sc, long long g_sh, long long g_sw,
    const T* __restrict__ masks, long long m_sn, long long m_sc, long long m_sh, long long m_sw,
    T* __restrict__ grad_features, long long d_sn, long long d_sc, long long d_sh, long long d_sw,
    CARAFE_SIZE_PARAMS) {
  using A = typename Num<T>::acc;
  CARAFE_UNPACK_SIZES
  CARAFE_GRID_STRIDE_LOOP(idx, total) {
    const Item it = decompose<CL>(idx, C / VEC, H, W);
    const int c0 = it.chunk * VEC;
    const int g = c0 / group_channels;
    const T* w_group = masks + it.n * m_sn + g * k * k * m_sc;
    const T* g_image = grad_out + it.n * g_sn + c0 * g_sc;
    A acc[VEC] = {};
    for (int i = 0; i < k; ++i) {
      int y0, y1;
      if (!outputs_of(it.y - (i - r), H, OH, s, up, y0, y1)) continue;
      for (int j = 0; j < k; ++j) {
        int x0, x1;
        if (!outputs_of(it.x - (j - r), W, OW, s, up, x0, x1)) continue;
        const T* w_tap = w_group + (i * k + j) * m_sc;
        for (int y = y0; y < y1; ++y) {
          for (int x = x0; x < x1; ++x) {
            const A weight = Num<T>::load(w_tap[y * m_sh + x * m_sw]);
            A values[VEC];
            load_channels<T, VEC, CL>(g_image + y * g_sh + x * g_sw, g_sc, values);
#pragma unroll
            for (int v = 0; v < VEC; ++v) acc[v] += weight * values[v];
          }
        }
      }
    }
    store_channels<T, VEC, true>(grad_features + it.n * d_sn + c0 * d_sc + it.y * d_sh + it.x * d_sw, d_sc, acc);
  }
}

// grad_masks[n, g*k*k + t, y, x] = sum over the channels of group g of grad_out * the value tap t read
// (0 for taps outside the map). One thread per (pixel, tap); VEC channels per load.
template <typename T, int VEC, bool CL>
__global__ void __launch_bounds__(256) reassemble_backward_masks(
    const T* __restrict__ grad_out, long long g_sn, long long g_sc, long long g_sh, long long g_sw,
    const T* __restrict__ features, long long f_sn, long long f_sc, long long f_sh, long long f_sw,
    T* __restrict__ grad_masks, long long d_sn, long long d_sc, long long d_sh, long long d_sw,
    CARAFE_SIZE_PARAMS) {
  using A = typename Num<T>::acc;
  CARAFE_UNPACK_SIZES
  CARAFE_GRID_STRIDE_LOOP(idx, total) {
    const Item it = decompose<CL>(idx, G * k * k, OH, OW);
    const int g = it.chunk / (k * k);
    const int tap = it.chunk - g * k * k;
    const int yy = source_of(it.y, s, up) + tap / k - r;
    const int xx = source_of(it.x, s, up) + tap % k - r;
    A acc = 0;
    if (yy >= 0 && yy < H && xx >= 0 && xx < W) {
      const int c_begin = g * group_channels;
      const T* g_pixel = grad_out + it.n * g_sn + c_begin * g_sc + it.y * g_sh + it.x * g_sw;
      const T* f_pixel = features + it.n * f_sn + c_begin * f_sc + yy * f_sh + xx * f_sw;
      for (int c = 0; c < group_channels; c += VEC) {
        A grads[VEC], values[VEC];
        load_channels<T, VEC, CL>(g_pixel + c * g_sc, g_sc, grads);
        load_channels<T, VEC, CL>(f_pixel + c * f_sc, f_sc, values);
#pragma unroll
        for (int v = 0; v < VEC; ++v) acc += grads[v] * values[v];
      }
    }
    grad_masks[it.n * d_sn + it.chunk * d_sc + it.y * d_sh + it.x * d_sw] = Num<T>::store(acc);
  }
}
