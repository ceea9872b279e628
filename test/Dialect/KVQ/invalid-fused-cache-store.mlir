// RUN: kvq-opt %s -split-input-file -verify-diagnostics

// One case per diagnostic of kvq.fused_cache_store and kvq.yield (the
// verifier in lib/Dialect/KVQ/IR/KVQOps.cpp and what ODS generates), and
// the store's own rules as the fused store states them. Function names
// state the case.

kvq.layer @l cache(fp8)
func.func @fused_region_with_two_indices(%v: memref<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the region to take the token, head and element indices (index, index, index), got ('index', 'index')}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index):
    %x = memref.load %v[%t, %h, %h] : memref<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_region_with_i64_indices(%kc: memref<?x16x8x128xf8E4M3FN>,
    %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the region to take the token, head and element indices (index, index, index), got ('i64', 'i64', 'i64')}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: i64, %h: i64, %d: i64):
    %c = arith.constant 0.0 : bf16
    kvq.yield %c, %c : bf16, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_region_without_yield(%kc: memref<?x16x8x128xf8E4M3FN>,
    %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the region to end in kvq.yield, got 'llvm.unreachable'}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    llvm.unreachable
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_yield_of_the_key_only(%v: memref<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the region to yield the key and the value, got 1 value(s)}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %x : bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_key_f32_value_bf16(%v: memref<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the key and the value to have the same type, got 'f32' and 'bf16'}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    %y = arith.extf %x : bf16 to f32
    kvq.yield %y, %x : f32, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_region_writes_memory(%v: memref<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects the region to only read memory, but 'memref.store' writes, allocates or frees it}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    memref.store %x, %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_memref_form_reads_a_tensor(%v: tensor<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects no tensor in the region of the memref form (bufferize the region with the op), got 'tensor<?x8x128xbf16>' used by 'tensor.extract'}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = tensor.extract %v[%t, %h, %d] : tensor<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_yield_of_an_integer(%v: memref<?x8x128xi8>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xi8>
    // expected-error @+1 {{'kvq.yield' op operand #0 must be variadic of floating-point, but got 'i8'}}
    "kvq.yield"(%x, %x) : (i8, i8) -> ()
  }
  return
}

// -----

func.func @yield_outside_a_fused_store(%x: f32) {
  // expected-error @+1 {{'kvq.yield' op expects parent op 'kvq.fused_cache_store'}}
  kvq.yield %x, %x : f32, f32
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_caches_of_rank_3(%v: memref<?x8x128xbf16>,
    %kc3: memref<?x8x128xf8E4M3FN>, %s: memref<4xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects caches of rank 4 [num_blocks, block_size, num_kv_heads, head_size], got 'memref<?x8x128xf8E4M3FN>'}}
  "kvq.fused_cache_store"(%kc3, %kc3, %s) <{layer = @l}> ({
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }) : (memref<?x8x128xf8E4M3FN>, memref<?x8x128xf8E4M3FN>, memref<4xi64>) -> ()
  return
}

// -----

kvq.layer @l cache(fp8_e5m2)
func.func @fused_fp8_e5m2_into_e4m3_cache(%v: memref<?x8x128xbf16>,
    %kc: memref<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects cache element type f8E5M2 or f8E5M2FNUZ for kv cache dtype 'fp8_e5m2', got f8E4M3FN (layer @l)}}
  kvq.fused_cache_store @l into (%kc, %kc) at %s
      : memref<?x16x8x128xf8E4M3FN>, memref<?xi64> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = memref.load %v[%t, %h, %d] : memref<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }
  return
}

// -----

kvq.layer @l cache(fp8)
func.func @fused_tensor_caches_memref_slots(%v: tensor<?x8x128xbf16>,
    %kc: tensor<?x16x8x128xf8E4M3FN>, %s: memref<?xi64>) {
  // expected-error @+1 {{'kvq.fused_cache_store' op expects all operands to be memrefs (the memref form) or all ranked tensors (the tensor form), got 'memref<?xi64>' with 'tensor<?x16x8x128xf8E4M3FN>'}}
  %a, %b = kvq.fused_cache_store @l into (%kc, %kc) at %s
      : tensor<?x16x8x128xf8E4M3FN>, memref<?xi64>
      -> tensor<?x16x8x128xf8E4M3FN>, tensor<?x16x8x128xf8E4M3FN> {
  ^bb0(%t: index, %h: index, %d: index):
    %x = tensor.extract %v[%t, %h, %d] : tensor<?x8x128xbf16>
    kvq.yield %x, %x : bf16, bf16
  }
  return
}
