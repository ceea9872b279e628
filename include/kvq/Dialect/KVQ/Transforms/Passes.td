//===- Passes.td - kvq passes ------------------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD
#define KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def KVQSetTarget : Pass<"kvq-set-target", "::mlir::ModuleOp"> {
  let summary = "state the target the module is compiled for";
  let description = [{
    Writes the module's target where every later kvq pass reads it: an
    `#nvvm.target` or `#rocdl.target` on `gpu.module @kvq_cache_kernels`
    (created if missing) and on every other `gpu.module` without targets,
    or `kvq.target = #kvq.cpu_target` on the module. A module that already
    states the same target is left as is; one that states another is an
    error. `chip` alone is enough (`sm_<N>` is NVIDIA, `gfx<...>` AMD).

    ```
    kvq-opt model.mlir --kvq-set-target=chip=gfx942 --kvq-fold-scales
    // adds
    gpu.module @kvq_cache_kernels [#rocdl.target<O = 3, chip = "gfx942">] {}
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", /*default=*/"\"\"",
           "'cpu', 'nvvm' or 'rocdl' (default: from the chip)">,
    Option<"chip", "chip", "std::string", /*default=*/"\"\"",
           "sm_<N> or gfx<...> (default: sm_90 for nvvm, gfx942 for "
           "rocdl)">,
    Option<"optLevel", "opt-level", "unsigned", /*default=*/"3",
           "optimization level of the GPU target attribute (0-3)">,
  ];
  let dependentDialects = ["::mlir::kvq::KVQDialect",
                           "::mlir::gpu::GPUDialect",
                           "::mlir::NVVM::NVVMDialect",
                           "::mlir::ROCDL::ROCDLDialect"];
}

def KVQLayerReport : Pass<"kvq-layer-report", "::mlir::ModuleOp"> {
  let summary = "print a table of the module's kvq layers and their scales";
  let description = [{
    Read-only. Prints one row per `kvq.layer`: symbol, checkpoint prefix,
    KV-cache dtype, and each scale (raw or resolved, with the rule that
    produced it) to the standard output or to `output`. A per-head scale
    shows the range of its heads (`0.1..0.4 [8 heads]`); the JSON format
    lists every head (`heads`, with `min` and `max`; `value` is the max).

    ```
    $ kvq-opt model.mlir --kvq-layer-report -o /dev/null
    layer            prefix                    cache  K ...
    ```
  }];
  let options = [
    Option<"output", "output", "std::string", /*default=*/"\"-\"",
           "file to write the table to ('-' for stdout)">,
    Option<"format", "format", "std::string", /*default=*/"\"table\"",
           "'table' (readable) or 'json'">,
  ];
}

def KVQImportCheckpoint : Pass<"kvq-import-checkpoint", "::mlir::ModuleOp"> {
  let summary = "attach each layer's raw scales from a safetensors checkpoint";
  let description = [{
    Reads the attention scales of every `kvq.layer` from a checkpoint: a
    `.safetensors` file, a sharded model's `model.safetensors.index.json`,
    or a directory holding either. Only the headers and the scale tensors
    are read (memory-mapped), so the cost does not grow with the size of the
    weights.

    Tensors are matched by the layer's checkpoint `prefix` (e.g.
    `model.layers.12`) under every producer's naming convention:
    llm-compressor / compressed-tensors (`self_attn.k_scale`), NVIDIA
    ModelOpt (`self_attn.k_proj.k_scale`), fused QKV
    (`self_attn.qkv_proj.k_scale`), AMD Quark (`self_attn.k_proj.output_scale`,
    `self_attn.prob_output_scale`), the legacy `self_attn.kv_scale`,
    Hunyuan (`self_attn.k_cache.scale`), NemotronH (`mixer.k_proj.k_scale`),
    Mistral (`k_fake_quantizer.qscale_act`) and TensorRT-LLM
    (`attention.kv_cache_scaling_factor`). Each found scale becomes a field
    of the layer's `checkpoint` scales (typed with the tensor's dtype), and
    `checkpoint_tensors` records the tensor name so later diagnostics can
    name it.

    Reported: two conventions giving one layer different values (error,
    naming both tensors), unreadable tensors (error), legacy shared K/V
    scales (warning), zero points (warning: only symmetric quantization is
    supported), every scale-like tensor no layer claims (warning: the top
    cause of "scales ignored" bugs), and every quantized layer that got no
    scale at all (warning). A layer that already carries scales is an
    error: scales come from the IR or from the checkpoint, not both.

    The folding rules come from the producer: when the checkpoint's folder
    (the directory given, or the folder of the file given) has a
    `config.json` whose `quantization_config` has a `kv_cache_scheme`
    (compressed-tensors, llm-compressor), the scheme is validated as vLLM
    does and every layer that gets scales is marked
    `method(compressed_tensors)`. A malformed `config.json` is an error.
    Without one, layers keep the base rules.

    Run `kvq-fold-scales` next:

    ```
    kvq-opt model.mlir \
      --kvq-import-checkpoint=checkpoint=ckpt/model.safetensors.index.json \
      --kvq-fold-scales
    ```
  }];
  let options = [
    Option<"checkpoint", "checkpoint", "std::string", /*default=*/"\"\"",
           "the .safetensors file, index .json or directory to read">,
  ];
}

def KVQFoldScales : Pass<"kvq-fold-scales", "::mlir::ModuleOp"> {
  let summary = "fold each layer's checkpoint scales into final constants";
  let description = [{
    Applies the KV-cache scale rules of serving engines (vLLM's
    `BaseKVCacheMethod.process_weights_after_loading`) to every `kvq.layer`
    that carries raw `checkpoint` scales, and replaces them by `resolved`
    scales: the final K, V, Q and prob values and the rule that produced each.
    Layers that are already resolved are left alone.

    Rules, in short (the full table is in docs/ScaleRules.md):
    - quantized cache (fp8*, int8), K/V from the checkpoint: k > 0 and v > 0
      give K = k*F, V = v*F; one scale (a legacy `kv_scale`) is duplicated;
      none gives 1.0; a missing or invalid k with a v is an error.
    - F = 2 on FNUZ fp8 targets (AMD gfx942) for fp8 caches, never int8; Q
      and prob get F whenever present. `auto` caches get K = V = 1.0.
    - q, prob absent: 1.0 (`q-fallback=k` gives Q = K instead).

    Every condition the rules report becomes a diagnostic located at the
    layer, keyed like `[Q-MISSING]`, with a note naming the checkpoint tensor
    when known. All layers are reported before the pass fails. A summary
    remark counts the layers folded, defaulted, duplicated, doubled, warned
    and failed.

    A layer with `method(compressed_tensors)` (set by
    `kvq-import-checkpoint` from the checkpoint's `config.json`) is folded
    with vLLM's compressed-tensors rules instead: missing k, v, q are 1.0
    (reported, `[CT-SCALE-MISSING]`), no duplication, P = 1.0. On FNUZ,
    kvq doubles as above and warns (`[CT-FNUZ]`), where vLLM's
    compressed-tensors path does not; `ct-fnuz=vllm` gives vLLM's values.
    `method` overrides the layers' method.

    Per-head scales (one per KV head, e.g. compressed-tensors `attn_head`)
    are folded head by head; q is reduced to KV heads by the max over each
    group of query heads. With `tp-size` > 1 they are first sharded for
    `tp-rank` as vLLM's loader does: with n = num_kv_heads / tp-size, rank r
    takes heads [r*n, (r+1)*n); when num_kv_heads < tp-size, rank r takes
    head r / (tp-size / num_kv_heads). The layer's caches then hold the
    rank's heads.

    FNUZ or not is decided from the module's target (see `kvq-set-target`:
    `#rocdl.target` with a gfx94x chip is FNUZ; other chips are OCP; the CPU
    and no target are OCP unless `fp8-format=fnuz`). `fp8-format` that
    contradicts a GPU target is an error. A cache op whose fp8 element type
    contradicts the decision (an FNUZ cache on an OCP target, or the
    reverse) is an error: the same bytes mean values 2x apart.

    Example:

    ```mlir
    // kvq-opt --kvq-fold-scales
    kvq.layer @model.layers.0 cache(fp8)
        checkpoint(#kvq.scales<k = 0.05 : f32, v = 0.05 : f32>)
    // becomes
    kvq.layer @model.layers.0 cache(fp8)
        resolved(<k = 5.000000e-02 checkpoint, v = 5.000000e-02 checkpoint,
                  q = 1.000000e+00 default, prob = 1.000000e+00 default>)
    ```
  }];
  let options = [
    Option<"fp8Format", "fp8-format", "std::string", /*default=*/"\"auto\"",
           "'auto' (from the module's target), 'ocp' or 'fnuz'">,
    Option<"missingScales", "missing-scales", "std::string",
           /*default=*/"\"warning\"",
           "missing checkpoint scales are a 'warning' (like vLLM) or an "
           "'error' (for production builds)">,
    Option<"qFallback", "q-fallback", "std::string", /*default=*/"\"seed\"",
           "missing q scale: 'seed' (final Q = 1.0, as vLLM) or 'k' (Q = K, "
           "as vLLM's message promises)">,
    Option<"modelDtype", "model-dtype", "std::string", /*default=*/"\"none\"",
           "round raw scales through the model dtype first, as vLLM's "
           "parameters do: 'none', 'bf16' or 'f16'">,
    Option<"method", "method", "std::string", /*default=*/"\"auto\"",
           "the folding rules: 'auto' (each layer's method, base when it "
           "states none), 'base' or 'compressed-tensors'">,
    Option<"ctFnuz", "ct-fnuz", "std::string", /*default=*/"\"double\"",
           "compressed-tensors on FNUZ: 'double' (x2 as the base path, with "
           "a warning) or 'vllm' (no x2, exact vLLM parity)">,
    Option<"tpSize", "tp-size", "unsigned", /*default=*/"1",
           "tensor-parallel size: per-head scales are sharded for one rank "
           "(vLLM's rule: num_kv_heads / tp-size heads per rank, or each KV "
           "head replicated on tp-size / num_kv_heads ranks)">,
    Option<"tpRank", "tp-rank", "unsigned", /*default=*/"0",
           "the tensor-parallel rank the module is compiled for, 0 to "
           "tp-size - 1">,
    Option<"warnOnce", "warn-once", "bool", /*default=*/"false",
           "report each warning once per module (vLLM's warning_once) "
           "instead of once per layer">,
    Option<"summary", "summary", "bool", /*default=*/"true",
           "emit the summary remark">,
    Option<"report", "report", "std::string", /*default=*/"\"\"",
           "write the per-layer table of resolved scales to this file "
           "('-' for stdout)">,
    Option<"reportJson", "report-json", "std::string", /*default=*/"\"\"",
           "write the per-layer report as JSON to this file">,
  ];
}

def KVQFuseCacheProducers
    : Pass<"kvq-fuse-cache-producers", "::mlir::ModuleOp"> {
  let summary = "fuse the linalg ops that produce a store's K and V into it";
  let description = [{
    Rewrites each tensor-form `kvq.cache_store` whose K or V is computed by
    fusible linalg ops into a `kvq.fused_cache_store` whose region computes
    K and V element by element from those ops' inputs, and erases the
    producers: the store's kernel reads the producers' inputs (the
    projection output, the cos / sin tables, the positions) and K and V are
    never written to memory. The lowering is the store's own
    (`kvq-lower-cache-ops`, CPU loops, NVVM, ROCDL).

    A producer is fused when it is a linalg op on tensors (`linalg.generic`
    or a named op: `linalg.add`, `linalg.mul`, `linalg.elementwise`,
    `linalg.fill`, ...) with only parallel loops, one result whose indexing
    map is a permutation, a body without regions that only reads memory
    (`tensor.extract` of any tensor, at indices computed from
    `linalg.index`, as a gather) and does not read its output, and whose
    result is used only by the store or by other producers being fused.
    Its value at `(t, h, d)` is its body at the loop indices of that
    position, with each input read at its indexing map (any affine map
    without symbols whose divisors are constants:
    `(d + 64) mod 128` for rotate-half RoPE, `d + 1 - 2 * (d mod 2)` for
    interleaved pairs) and each `tensor.extract` of another fused
    producer's result replaced by that producer's value there, recursively:
    a chain of elementwise ops, RoPE in the rotate-half (GPT-NeoX) and
    interleaved (GPT-J) forms with cos / sin from tables indexed by
    position or computed in the body, all fuse the same way. Slices
    (`tensor.extract_slice`) and concatenations (`tensor.concat` whose
    inputs have static sizes along its dimension) used only by the store or
    fused producers fuse too, as reindexings: a slice's element is its
    source's at offset + stride * index, a concatenation's is the select
    of each input's element at the index within it, so rotate-half written
    as slices, `linalg.negf` and a concatenation (torch-mlir's form), and
    K and V sliced out of a fused QKV projection, read the projection
    directly. No RoPE spelling is matched: any elementwise, gather-style,
    slicing or concatenating producer is.

    Not fused (the value stays in memory and the store's region reads it):
    an op with a reduction loop (`linalg.matmul`, a norm's sum), a value
    with users other than the fused ones (fusing it would compute it twice,
    once for the store and once for its other users), a concatenation
    along a dimension of dynamic size, other ops (`tensor.expand_shape`:
    the region reads through it as it is).

    Why not TilingInterface and the upstream tile-and-fuse drivers: the
    store's kernel is kvq's own (exact quantization, a paged scatter, one
    work item per chunk of a token's row, on three targets); tile-and-fuse
    would leave each fused producer tile in a temporary the store then
    reads, and RoPE reads elements of K that other work items own. What
    the kernel needs is the producer's value at any position, which is
    what the linalg body is; this pass inlines bodies as upstream
    elementwise fusion (`linalg::fuseElementwiseOps`) does, into the
    store's region.

    ```mlir
    // Before: RoPE (a linalg.generic) writes K, the store reads it.
    %k = linalg.generic {...} ins(%k_heads, %positions ...) outs(...) {...}
    %kc1, %vc1 = kvq.cache_store @model.layers.0 (%k, %v)
        into (%kc, %vc) at %slots : ...
    // After: the store computes K from %k_heads, %positions and the tables.
    %kc1, %vc1 = kvq.fused_cache_store @model.layers.0
        into (%kc, %vc) at %slots : ... {
      ^bb0(%t: index, %h: index, %d: index):
        %x = tensor.extract %k_heads[%t, %h, %d] : tensor<?x8x128xf32>
        ...
        %xv = tensor.extract %v[%t, %h, %d] : tensor<?x8x128xf32>
        kvq.yield %y, %xv : f32, f32
      }
    ```
  }];
  let dependentDialects = ["::mlir::kvq::KVQDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

#endif // KVQ_DIALECT_KVQ_TRANSFORMS_PASSES_TD
