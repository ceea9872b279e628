//===- DecodeAttentionReference.h - decode attention reference --*- C++ -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//
//
// The reference every lowering of `kvq.paged_attention` (mode `dequantized`)
// is tested against: the exact result of the op, computed in long double
// from the exactly decoded cache, and a rigorous per-element bound on how far
// an f32 kernel may land from it. A kernel passes when
// |out_kernel_d - out_d| <= bound_d for every element; the bound is derived
// below from the kernel's arithmetic and computed from the data, so it is
// neither a tuned tolerance nor a property of one order of summation.
//
// The kernel's arithmetic (CPU lowering and GPU kernels), per sequence b and
// query head h, KV head g = h / (Hq / Hkv), L = context_lens[b]:
//   c     = RN(k_scale * softmax_scale)
//   s^_j  = RN(dot^_j * c), dot^_j = f32 sum over d of q_d k_jd, any order,
//           products rounded or fused (FMA)
//   the context is cut into chunks (one chunk: the CPU's two passes):
//   m_c   = max of s^_j over chunk c (exact)
//   e_j   = exp32(RN(s^_j - m_c))
//   l_c   = f32 sum of e_j, acc_cd = f32 sum of RN(e_j v_jd) (FMA allowed)
//   M^    = max_c m_c, alpha_c = exp32(RN(m_c - M^))
//   l     = f32 sum of RN(alpha_c l_c), acc_d = f32 sum of RN(alpha_c acc_cd)
//   out_d = RN_out(RN(acc_d * RN(v_scale / l))); L = 0 writes zeros.
//
// The error bound
// ---------------
// Notation: u = 2^-24, gamma_n = n u / (1 - n u); eta = 2^-126, an absolute
// allowance per f32 operation for underflow (gradual underflow loses at most
// 2^-150, a result flushed to zero at most 2^-126); E = the relative error of
// exp32, a parameter (kExpRelError = 2^-21 by default: glibc's expf and
// CUDA's expf are within 2 ulps; a target with a worse exp passes its own);
// R = how many times a partial sum is multiplied by a rescale factor
// exp32(m_old - m_new) on its way to l and acc (1 for the chunk combine above,
// which covers one chunk too; a streaming online softmax passes its count).
// For one row: sigma = softmax_scale * k_scale (exact), s_j = sigma q.k_j,
// A_j = sum_d |q_d k_jd|, s* = max_j s_j, P_j = exp(s_j - s*),
// o_d = sum_j P_j v_jd / sum_j P_j; the exact result is v_scale o_d. A common
// shift of all s_j cancels in o_d, which is why the kernel's shift M^ never
// has to be known.
//
// 1. Scores. Each product q_d k_jd reaches s^_j through at most D roundings
//    in the dot (any order, FMA or not), one in c and one in the product with
//    c, so s^_j = sigma sum_d q_d k_jd (1 + th_d), |th_d| <= gamma_{D+2};
//    gamma_{D+3} is used, one spare rounding for a kernel that folds log2(e)
//    into c and calls exp2. With the underflow allowances (at most 2 D
//    operations in the dot, one in c, which then multiplies |dot| <= 2 A_j,
//    one in the product):
//      |s^_j - s_j| <= Delta_j = gamma_{D+3} |sigma| A_j
//                                + (8 D |sigma| + 2 A_j + 2) eta.
// 2. Weights. Token j's weight is exp32(RN(s^_j - m_c)) times R rescale
//    factors exp32(RN(m_old - m_new)); the shifts form a nondecreasing chain
//    of maxima from m_c to M^ = max_i s^_i, so the rounding errors of the
//    subtractions (u |difference| + eta each) telescope to
//    u (M^ - s^_j) + (R + 1) eta, and M^ - s^_j <= max_i (s_i + Delta_i) -
//    s_j + Delta_j. The same float weight (the same e_j, the same alpha_c)
//    enters l and every acc_d, so
//      w_j = kappa P_j (1 + r_j),   kappa = exp(s* - M^) (one per row),
//      |r_j| <= rho_j = expm1(a_j),
//      a_j = Delta_j + u (max_i (s_i + Delta_i) - s_j + Delta_j)
//            + (R + 1) eta - (R + 1) log1p(-E),
//    and |log kappa| <= Delta_max = max_j Delta_j. Every weight is at most
//    (1 + E)^(R + 1) <= 2 (the arguments of exp32 are <= 0).
// 3. Sums. A term reaches l through at most L - 1 additions and R rescale
//    multiplications, in any order (chunk sums and the combine, or a tree),
//    and acc_d through one more rounding (RN(e_j v_jd); none with FMA):
//      l^     = sum_j w_j (1 + b_j) + abs_l,       |b_j|  <= gb,
//      acc^_d = sum_j w_j v_jd (1 + a_jd) + abs_d, |a_jd| <= ga,
//    gb = gamma_{L+R}, ga = gamma_{L+R+1}.
//    The underflow terms (eta for each exp, product, addition, rescale and
//    rescale factor times a partial sum of at most 2 L, or 2 sum |v|) are
//    bounded by abs_l <= 16 (R + 1) L eta, abs_d <= 16 (R + 1) eta (L +
//    sum_j |v_jd|).
// 4. Ratio. As sum_j P_j (v_jd - o_d) = 0,
//      acc^_d / l^ - o_d = [kappa sum_j P_j (r_j (v_jd - o_d)
//                           + (1 + r_j)(v_jd a_jd - o_d b_j))
//                           + abs_d - o_d abs_l] / l^,
//    and l^ >= kappa (sum_j P_j e^-a_j (1 - gb) - e^Delta_max abs_l), so
//      |acc^_d / l^ - o_d| <= Q_d =
//        [sum_j P_j (rho_j |v_jd - o_d| + e^a_j (ga |v_jd| + gb |o_d|))
//         + e^Delta_max (abs_d + |o_d| abs_l)]
//        / [sum_j P_j e^-a_j (1 - gb) - e^Delta_max abs_l].
//    The first term, the weights' perturbation times the distance of the V
//    rows from the result, is the score and exp error: it vanishes for L = 1
//    and for equal V rows, as the true error does. The second is the f32
//    accumulation.
// 5. Scaling. y_d = RN(acc^_d RN(v_scale / l^)): two roundings, two eta:
//      |y_d - v_scale o_d| <= Y_d = |v_scale| (Q_d + gamma_2 (|o_d| + Q_d))
//                                   + eta (4 sum_j |v_jd| + 2).
// 6. Output. RN_out rounds to nearest: |out_d - y_d| <= u_out |y_d| + eta_out,
//    u_out = 2^-8 (bf16), 2^-11 (f16), 2^-24 (f32: a spare rounding),
//    eta_out = half the smallest subnormal of the type:
//      bound_d = Y_d + u_out (|v_scale o_d| + Y_d) + eta_out.
// 7. The reference's own error. o_d is itself computed (long double, unit
//    roundoff u' = 2^-64 on x86; products q_d k_jd are exact in it); steps 1
//    to 6 with u', E' = 2^-60 (expl is within a few ulps), R = 0, no
//    underflow and the final rounding to double (2^-53) bound it by r_d. The
//    kernel's bound is evaluated with |v_jd - o_d| + r_d and |o_d| + r_d, r_d
//    is added, and the total is multiplied by 1 + 2^-10, which covers
//    evaluating these expressions in double from the reference's values
//    (relative error below 2^-30). Weights below 2^-1000 are dropped, with an
//    allowance of 2^-1000 L (max_j |v_jd| + |o_d|) in the numerator of Q_d.
//
// 8. Tensor-core kernels (kvq's GPU lowering, AttentionKernel.cpp). Their
//    scores and accumulators come from mma.sync m16n8k16 (f16 or bf16
//    operands, f32 accumulation), which is not a sequence of RN f32
//    operations. Model: an MMA returns c + sum_{i<16} a_i b_i with the
//    products exact and an error at most (16 + 2) 2^-23 (|c| + sum |a_i b_i|)
//    (the terms aligned to the largest, each truncated to 24 bits, and the
//    sum truncated: NVIDIA's tensor cores round toward zero and keep at
//    least 24 bits, per Fasi, Higham, Mikaitis and Pranesh, "Numerical
//    behavior of NVIDIA tensor cores", 2021). A dot of n_q D / 16 chained
//    MMAs (n_q terms of Q) then has relative error at most
//    dotRel = 18 2^-23 (1 + 2^-9) n_q D / 16 against A_j, replacing
//    gamma_{D+3} (with the roundings of c and of the product: gamma_3); a
//    warp's acc over T tiles gathers at most accRel = 18 2^-23 (1 + 2^-9) T
//    times sum_j w_j |v_jd|, added to ga. The queries enter as f16 / bf16
//    terms: |q~ - q| <= queryRel |q| + queryAbs per element, which moves
//    each score by |sigma| (queryRel A_j + queryAbs sum_d |k_jd|) more. The
//    weights are rounded to the operand type for P.V and the sums take the
//    rounded weights, so step 2's argument holds with one more relative
//    error weightRel (2^-11 for f16, 2^-8 for bf16) and an absolute
//    weightAbs (2^-25 below f16's normal range) per weight, added to
//    abs_l (2 L weightAbs) and abs_d (2 weightAbs sum_j |v_jd|). R = T + 1
//    + S: T rescales in a warp, one in the warps' merge, and S in the
//    splits' merge (an online merge of batches of states: one rescale per
//    batch).
//
// Conditions (else bound_d is +infinity, or `error` is set): (L + R + 1) u
// <= 1/2 (any L up to 2^22, D up to 2^20), (R + 1) E <= 2^-4, Delta_max <= 1
// (the weights known to within a factor e, which also makes the dropped
// weights' allowance hold); no f32 overflow (|sigma| A_j, 4 sum_j |v_jd| and 4
// |v_scale| below 2^126) and |v_scale o_d| + Y_d below the output type's
// overflow threshold. Not covered: kernels that flush subnormal inputs to zero,
// or whose f32 adds do not round to nearest (tensor-core accumulation); they
// need a larger u.
//
// For typical inputs (L <= 1000, D <= 256, scores of order one) the bound is
// about half an ulp of the output type for its rounding plus roughly
// (gamma_{D+3} |sigma| A + gamma_L) times the size of the V rows.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_UNITTESTS_ATTENTION_DECODEATTENTIONREFERENCE_H
#define KVQ_UNITTESTS_ATTENTION_DECODEATTENTIONREFERENCE_H

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace mlir::kvq::test {

/// The element type of the queries and of the output (always the same).
enum class AttentionType { BF16, F16, F32 };

/// The element type of the KV cache: an fp8 format, int8, or the bf16 / f16
/// of an `auto` cache.
enum class CacheFormat {
  F8E4M3FN,
  F8E5M2,
  F8E4M3FNUZ,
  F8E5M2FNUZ,
  Int8,
  BF16,
  F16
};

inline constexpr CacheFormat kAllCacheFormats[] = {
    CacheFormat::F8E4M3FN,   CacheFormat::F8E5M2, CacheFormat::F8E4M3FNUZ,
    CacheFormat::F8E5M2FNUZ, CacheFormat::Int8,   CacheFormat::BF16,
    CacheFormat::F16};

/// The relative error of exp32 the bound assumes by default (see above).
inline constexpr double kExpRelError = 0x1p-21;

/// The block table entry of padding: any read of it is out of range.
inline constexpr int32_t kPoisonBlock = std::numeric_limits<int32_t>::max();

const char *getAttentionTypeName(AttentionType type);
const char *getCacheFormatName(CacheFormat format);
/// 1 for fp8 and int8, 2 for bf16 and f16.
unsigned getCacheElementBytes(CacheFormat format);

/// The exact value of a cache code (fp8 and int8 codes in the low 8 bits,
/// int8 as two's complement; bf16 / f16 bits): a NaN for NaN codes,
/// infinities where the format has them.
double decodeCacheCode(CacheFormat format, uint16_t code);

/// `x` rounded to nearest-even in `type` (overflow gives an infinity).
double roundToType(double x, AttentionType type);

/// |got - ref| in units in the last place of `type` at `ref` (the subnormal
/// spacing below the normal range; at ref = 0 the smallest subnormal).
double ulpsOf(double got, double ref, AttentionType type);

/// One `kvq.paged_attention` call, with every operand as the kernel sees it.
struct DecodeAttentionProblem {
  int64_t numSeqs = 0, numHeads = 0, numKVHeads = 0, headSize = 0;
  int64_t numBlocks = 0, blockSize = 0, maxBlocks = 0;
  AttentionType type = AttentionType::BF16;
  CacheFormat cacheFormat = CacheFormat::F8E4M3FN;
  /// [numSeqs, numHeads, headSize]; each value exactly representable in
  /// `type`.
  std::vector<float> query;
  /// [numBlocks, blockSize, numKVHeads, headSize] codes (decodeCacheCode).
  std::vector<uint16_t> keyCache, valueCache;
  /// [numSeqs, maxBlocks] and [numSeqs].
  std::vector<int32_t> blockTables, contextLens;
  float kScale = 1.0f, vScale = 1.0f, softmaxScale = 1.0f;
  /// Per-head scales (a layer's `k = [..]`, `v = [..]`): when not empty,
  /// numKVHeads values, KV head g's K and V scales in place of kScale and
  /// vScale.
  std::vector<float> kHeadScales, vHeadScales;

  size_t outputSize() const { return size_t(numSeqs * numHeads * headSize); }
  /// The K and V scales of KV head `g`.
  float kScaleOf(int64_t g) const {
    return kHeadScales.empty() ? kScale : kHeadScales[size_t(g)];
  }
  float vScaleOf(int64_t g) const {
    return vHeadScales.empty() ? vScale : vHeadScales[size_t(g)];
  }
};

/// The cache codes as the kernel's memref holds them: 1 or 2 bytes per
/// element, little-endian.
std::vector<uint8_t> getCacheBytes(const DecodeAttentionProblem &problem,
                                   bool value);

/// Empty if `problem` is well-formed: shapes, head grouping, context lengths
/// in [0, maxBlocks * blockSize], the block table entries that are read in
/// [0, numBlocks), finite scales, queries exact in their type, and finite
/// cache values in every row that is read. Otherwise what is wrong.
std::string validateProblem(const DecodeAttentionProblem &problem);

/// The exact outputs and their bounds, [numSeqs, numHeads, headSize].
struct DecodeAttentionReference {
  std::vector<double> out;
  std::vector<double> bound;
  /// Set (and `out`, `bound` empty) for an invalid problem or parameters.
  std::string error;
};

/// The arithmetic of a kernel, as far as the bound depends on it (step 8).
/// The defaults are the RN f32 kernel of steps 1-6 with one rescale.
struct KernelArithmetic {
  /// E.
  double expRelError = kExpRelError;
  /// R.
  unsigned rescales = 1;
  /// A bound on the relative error of a score's dot product, times
  /// |sigma| A_j (the roundings of c and of the product with c are added);
  /// negative: the RN f32 dot of step 1 (gamma_{D+3}).
  double dotRelError = -1;
  /// Added to gamma_{L+R+1} of the accumulation of acc (step 3).
  double accRelError = 0;
  /// The queries as the kernel multiplies them:
  /// |q~_d - q_d| <= queryRel |q_d| + queryAbs, for |q_d| <= queryMax
  /// (beyond, the bound is +infinity).
  double queryRel = 0, queryAbs = 0;
  double queryMax = std::numeric_limits<double>::infinity();
  /// The weights rounded for P.V (the same rounded weight in l and acc):
  /// relative weightRel, or absolute weightAbs below the normal range.
  double weightRel = 0, weightAbs = 0;
};

/// The reference for a kernel whose exp32 has relative error `expRelError`
/// and whose partial sums go through at most `rescales` rescalings.
DecodeAttentionReference
computeDecodeAttentionReference(const DecodeAttentionProblem &problem,
                                double expRelError = kExpRelError,
                                unsigned rescales = 1);
/// The same for a kernel of `arithmetic`.
DecodeAttentionReference
computeDecodeAttentionReference(const DecodeAttentionProblem &problem,
                                const KernelArithmetic &arithmetic);

/// The arithmetic of kvq's GPU kernel (AttentionKernel.cpp) for `problem`,
/// when each warp takes at most `tilesPerWarp` tiles of 16 tokens (the
/// split size over 4 warps), the splits are merged in `splitMerges` >= 1
/// rescaling steps (the batches of the last CTA's online merge), with Q
/// quantized to fp8 (`fp8Query`) or not. Step 8 derives it.
KernelArithmetic getTensorCoreArithmetic(const DecodeAttentionProblem &problem,
                                         int64_t tilesPerWarp,
                                         int64_t splitMerges, bool fp8Query);

/// Deliberate mistakes for showing that the bound rejects wrong kernels.
enum class KernelFault {
  None,
  /// Reads L - 1 tokens.
  DropLastToken,
  /// Query head h reads KV head h % numKVHeads instead of h / group.
  KVHeadModulo,
  /// Rounds the weights to bf16 for P.V but sums them unrounded.
  ProbsInBF16,
  /// An exp32 with relative error 2^-12, of alternating sign over tokens (a
  /// common factor would cancel).
  CoarseExp
};

/// The kernel's arithmetic (above) in float, sums in sequence, exp32 =
/// std::exp on floats, the context cut into chunks of `chunkSize` tokens
/// (<= 0: one chunk) combined by rescaling. Outputs are values of `type`;
/// empty for a problem validateProblem rejects.
std::vector<double> emulateKernelF32(const DecodeAttentionProblem &problem,
                                     int64_t chunkSize,
                                     KernelFault fault = KernelFault::None);

/// Random problems: seeded, block tables a permutation of the blocks,
/// padding entries kPoisonBlock, unused blocks and rows past the context
/// filled with NaN codes (-128 for int8), so that reading any of them shows.
struct RandomProblemOptions {
  uint32_t seed = 1;
  int64_t numHeads = 8, numKVHeads = 2, headSize = 128, blockSize = 16;
  /// One per sequence.
  std::vector<int32_t> contextLens = {17};
  /// Extra block table entries per row beyond the longest context (padding).
  int64_t paddingBlocks = 2;
  /// Physical blocks nobody uses.
  int64_t unusedBlocks = 3;
  AttentionType type = AttentionType::BF16;
  CacheFormat cacheFormat = CacheFormat::F8E4M3FN;
  /// Standard deviations of the values before quantization; queryStd 1 gives
  /// scores of order one, larger values peaked softmaxes.
  double queryStd = 1.0, keyStd = 1.0, valueStd = 1.0;
  /// Added to every V value (a nonzero mean keeps outputs away from zero).
  double valueMean = 0.0;
  /// Per-head scales (quantized caches only): KV head g's K and V scales
  /// are the per-tensor ones times headSpread^(g % 4), its values drawn as
  /// every head's and quantized with them, so that a kernel that uses
  /// another head's scale is off by a factor of headSpread or more.
  bool perHeadScales = false;
  double headSpread = 3.0;
};

/// For quantized caches k_scale and v_scale map 4 standard deviations to the
/// format's largest value (127 for int8), saturating beyond; bf16 / f16
/// caches hold the values themselves with scales 1. softmax_scale is
/// RN(1 / sqrt(headSize)).
DecodeAttentionProblem makeRandomProblem(const RandomProblemOptions &options);

/// How a candidate output compares with the reference. Ulps are those of
/// the output type, at the reference value (elementwise) or at the largest
/// |out| of the element's row (what the row can resolve: an element near
/// zero makes any absolute error many ulps of itself).
struct BoundCheck {
  size_t violations = 0;
  /// The first violating element (SIZE_MAX if none).
  size_t firstViolation = std::numeric_limits<size_t>::max();
  /// Largest |got - out| / bound (elements with a zero bound and no error
  /// count 0).
  double maxErrorOverBound = 0;
  /// Largest |got - out| and largest bound, in ulps.
  double maxErrorUlps = 0, maxBoundUlps = 0;
  double maxErrorRowUlps = 0, maxBoundRowUlps = 0;
};

/// Checks `got` (values of the output type, [numSeqs, numHeads, headSize])
/// element by element.
BoundCheck checkAgainstReference(const DecodeAttentionProblem &problem,
                                 const DecodeAttentionReference &reference,
                                 const std::vector<double> &got);

/// "seq b, head h, dim d" of an output index, for messages.
std::string describeElement(const DecodeAttentionProblem &problem,
                            size_t index);

} // namespace mlir::kvq::test

#endif // KVQ_UNITTESTS_ATTENTION_DECODEATTENTIONREFERENCE_H
