//===- KVQAttrs.td - kvq attributes ------------------------*- tablegen -*-===//
//
// Part of kvq, under the Apache License v2.0 with LLVM Exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef KVQ_DIALECT_KVQ_IR_KVQATTRS_TD
#define KVQ_DIALECT_KVQ_IR_KVQATTRS_TD

include "kvq/Dialect/KVQ/IR/KVQDialect.td"
include "kvq/Dialect/KVQ/IR/KVQEnums.td"
include "mlir/IR/AttrTypeBase.td"

class KVQ_Attr<string name, string attrMnemonic, list<Trait> traits = []>
    : AttrDef<KVQ_Dialect, name, traits> {
  let mnemonic = attrMnemonic;
}

def KVQ_ScalesAttr : KVQ_Attr<"Scales", "scales"> {
  let summary = "raw attention scales of a layer, as found in a checkpoint";
  let description = [{
    The q, k, v and softmax-probability (`prob`) scales of one attention
    layer, exactly as the checkpoint holds them, before any rule is applied.
    Each field is optional: an absent field means "not in the checkpoint"
    (vLLM's -1.0 sentinel). A present field is either

    - a float (`0.05 : f32`), the usual per-tensor scale; its type records
      the checkpoint dtype (`f32`, `f16`, `bf16`, `f64`), or
    - a dense float tensor (`dense<[...]> : tensor<8xf32>`): a one-element
      tensor is a per-tensor scale, more elements are per-head scales.

    The attribute accepts any float *value*, including 0, negative numbers,
    NaN and infinity: it mirrors the checkpoint, and `kvq-fold-scales`
    diagnoses such values with the layer and the tensor name at hand, with
    the same outcome serving engines give (a negative value counts as
    absent; zero or NaN in k is an error). It rejects only what cannot be a
    scale at all: non-float attributes, integer or empty tensors, and tensors
    of rank above 3.

    Example:

    ```mlir
    #kvq.scales<k = 0.05 : f32, v = 0.07 : f32>
    #kvq.scales<k = 0.05 : f32>                       // a legacy kv_scale
    #kvq.scales<k = dense<[0.1, 0.2]> : tensor<2xf32>, q = 0.1 : bf16>
    #kvq.scales<>                                     // nothing found
    ```
  }];
  let parameters = (ins
    OptionalParameter<"::mlir::Attribute", "k (key) scale">:$k,
    OptionalParameter<"::mlir::Attribute", "v (value) scale">:$v,
    OptionalParameter<"::mlir::Attribute", "q (query) scale">:$q,
    OptionalParameter<"::mlir::Attribute", "softmax probability scale">:$prob);
  let assemblyFormat = "`<` struct(params) `>`";
  let genVerifyDecl = 1;
  let extraClassDeclaration = [{
    /// The field of `kind`, or null when absent.
    ::mlir::Attribute getScale(::mlir::kvq::ScaleKind kind) const;
  }];
}

def KVQ_ResolvedScalesAttr : KVQ_Attr<"ResolvedScales", "resolved_scales"> {
  let summary = "final attention scales of a layer, after the fold rules";
  let description = [{
    What `kvq-fold-scales` leaves on a layer: all four scales, each a
    finite, positive `f32` (the value the kernels multiply or divide by),
    the rule of the folding table that produced it (see `#kvq.scale_rule`),
    and `doubled` where the FNUZ x2 correction was applied to it. Lowering
    takes the K and V scales from here; Q and prob are for the attention
    kernels that follow.

    A trailing `fnuz` records that the scales were folded for an FNUZ fp8
    target (AMD gfx942); only then may a field be `doubled`.

    Per-head scales (compressed-tensors `strategy: attn_head`, see
    docs/ScaleRules.md): `k`, `v` and `q` may each be a bracketed list
    instead of a single value, one finite positive `f32` per KV head, in
    head order. `k` and `v` are either both per-head or both per-tensor,
    and every per-head field has the same length, the layer's number of KV
    heads; `q` has already been reduced from attention heads to KV heads
    (the max over each group of query heads that shares a KV head, as
    vLLM's loader does). `prob` is always per-tensor. The rule and
    `doubled` of a per-head field hold for all of its heads.

    In C++, `isPerHead()` tells whether any field is per-head and
    `getKHeads()`, `getVHeads()`, `getQHeads()` return the values (empty
    when the field is per-tensor). The single value of a per-head field
    (`getK()`, `getKFloat()`, ...) is the max over its heads, the per-layer
    float vLLM gives code that does not read per-head scales; kvq's
    kernels take each head's value instead (docs/KernelABI.md).

    Example:

    ```mlir
    #kvq.resolved_scales<k = 0.05 checkpoint, v = 0.05 duplicated,
                         q = 1.0 default, prob = 1.0 default>
    #kvq.resolved_scales<k = 0.1 checkpoint doubled, v = 0.1 checkpoint
                         doubled, q = 1.0 default, prob = 1.0 default, fnuz>
    // Two KV heads.
    #kvq.resolved_scales<k = [0.1, 0.2] checkpoint, v = [0.3, 0.4]
                         checkpoint, q = [0.5, 0.6] checkpoint,
                         prob = 1.0 default>
    ```
  }];
  let parameters = (ins
    APFloatParameter<"final K scale">:$k,
    "::mlir::kvq::ScaleRule":$k_rule,
    APFloatParameter<"final V scale">:$v,
    "::mlir::kvq::ScaleRule":$v_rule,
    APFloatParameter<"final Q scale">:$q,
    "::mlir::kvq::ScaleRule":$q_rule,
    APFloatParameter<"final prob scale">:$prob,
    "::mlir::kvq::ScaleRule":$prob_rule,
    DefaultValuedParameter<"bool", "false",
                           "the FNUZ x2 correction was in effect">:$fnuz,
    DefaultValuedParameter<"unsigned", "0",
        "the fields the x2 was applied to (bit i: ScaleKind i)">:$doubled,
    OptionalParameter<"::mlir::DenseF32ArrayAttr",
        "per-head K scales (absent: per-tensor)">:$k_heads,
    OptionalParameter<"::mlir::DenseF32ArrayAttr",
        "per-head V scales (absent: per-tensor)">:$v_heads,
    OptionalParameter<"::mlir::DenseF32ArrayAttr",
        "per-head Q scales, per KV head (absent: per-tensor)">:$q_heads);
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
  let builders = [
    AttrBuilder<(ins "float":$k, "ScaleRule":$kRule, "float":$v,
                     "ScaleRule":$vRule, "float":$q, "ScaleRule":$qRule,
                     "float":$prob, "ScaleRule":$probRule,
                     CArg<"bool", "false">:$fnuz,
                     CArg<"unsigned", "0">:$doubled), [{
      return $_get($_ctxt, ::llvm::APFloat(k), kRule, ::llvm::APFloat(v),
                   vRule, ::llvm::APFloat(q), qRule, ::llvm::APFloat(prob),
                   probRule, fnuz, doubled, ::mlir::DenseF32ArrayAttr(),
                   ::mlir::DenseF32ArrayAttr(), ::mlir::DenseF32ArrayAttr());
    }]>,
    // Per-tensor scales from APFloats (the form before per-head scales).
    AttrBuilder<(ins "::llvm::APFloat":$k, "ScaleRule":$kRule,
                     "::llvm::APFloat":$v, "ScaleRule":$vRule,
                     "::llvm::APFloat":$q, "ScaleRule":$qRule,
                     "::llvm::APFloat":$prob, "ScaleRule":$probRule,
                     "bool":$fnuz, "unsigned":$doubled), [{
      return $_get($_ctxt, k, kRule, v, vRule, q, qRule, prob, probRule, fnuz,
                   doubled, ::mlir::DenseF32ArrayAttr(),
                   ::mlir::DenseF32ArrayAttr(), ::mlir::DenseF32ArrayAttr());
    }]>];
  let extraClassDeclaration = [{
    float getKFloat() const { return getK().convertToFloat(); }
    float getVFloat() const { return getV().convertToFloat(); }
    float getQFloat() const { return getQ().convertToFloat(); }
    float getProbFloat() const { return getProb().convertToFloat(); }
    /// The value and the rule of `kind`.
    ::llvm::APFloat getValue(::mlir::kvq::ScaleKind kind) const;
    ::mlir::kvq::ScaleRule getRule(::mlir::kvq::ScaleKind kind) const;
    /// Whether the FNUZ x2 was applied to `kind`.
    bool isDoubled(::mlir::kvq::ScaleKind kind) const {
      return getDoubled() & (1u << static_cast<unsigned>(kind));
    }
    /// The `doubled` mask of the given kinds.
    static unsigned doubledMask(::llvm::ArrayRef<::mlir::kvq::ScaleKind> kinds);

    /// Whether any field holds one scale per KV head.
    bool isPerHead() const {
      return getKHeads() || getVHeads() || getQHeads();
    }
    /// Whether field `kind` holds one scale per KV head (never prob).
    bool isPerHead(::mlir::kvq::ScaleKind kind) const {
      return static_cast<bool>(getHeadsAttr(kind));
    }
    /// The per-head values of `kind`, or null when it is per-tensor.
    ::mlir::DenseF32ArrayAttr
    getHeadsAttr(::mlir::kvq::ScaleKind kind) const;
    /// The per-head values of `kind`; empty when it is per-tensor.
    ::llvm::ArrayRef<float> getHeads(::mlir::kvq::ScaleKind kind) const;
    /// The number of KV heads of the per-head fields; 0 when none is.
    unsigned getNumHeads() const;
    /// The value of `kind` for KV head `head`: its per-head value, or the
    /// per-tensor value every head shares.
    float getHeadValue(::mlir::kvq::ScaleKind kind, unsigned head) const;

    /// Builds the attribute from per-head values: a field with values in
    /// `kHeads` (`vHeads`, `qHeads`) is per-head and its single value is
    /// the max over them; an empty list leaves the per-tensor value.
    static ResolvedScalesAttr
    getPerHead(::mlir::MLIRContext *context, float k, ScaleRule kRule,
               ::llvm::ArrayRef<float> kHeads, float v, ScaleRule vRule,
               ::llvm::ArrayRef<float> vHeads, float q, ScaleRule qRule,
               ::llvm::ArrayRef<float> qHeads, float prob, ScaleRule probRule,
               bool fnuz = false, unsigned doubled = 0);
  }];
}

def KVQ_CPUTargetAttr : KVQ_Attr<"CPUTarget", "cpu_target"> {
  let summary = "the host CPU as the target a module is compiled for";
  let description = [{
    The CPU counterpart of `#nvvm.target` and `#rocdl.target`: a module
    whose `kvq.target` attribute is `#kvq.cpu_target` is compiled for the
    host (cache ops become loops, every fp8 conversion is in software). A
    module that states no target at all is compiled for the CPU too; this
    attribute says so explicitly, so that a GPU option contradicts it.
    `kvq-set-target{target=cpu}` writes it.

    ```mlir
    module attributes {kvq.target = #kvq.cpu_target} {}
    ```
  }];
}

#endif // KVQ_DIALECT_KVQ_IR_KVQATTRS_TD
