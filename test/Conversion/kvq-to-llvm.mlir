// RUN: kvq-opt %s --kvq-to-llvm | FileCheck %s --check-prefix=LLVM
// RUN: kvq-opt %s --kvq-to-llvm \
// RUN:   | %mlir-runner -e main -entry-point-result=void \
// RUN:       -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so \
// RUN:   | FileCheck %s

// kvq-to-llvm: folded kvq IR to the LLVM dialect for the host CPU, run here
// with mlir-runner: store two tokens into an e4m3 cache with K scale 2 (the
// second token is padding, slot -1), print the cache row, load it back.

// LLVM-NOT: kvq.
// LLVM-NOT: scf.
// LLVM-NOT: arith.
// LLVM: llvm.func @main()

// x / 2 rounded to nearest even, saturated: 1 -> 0.5 (0x30); -2.5 ->
// -1.25 (0xBA); +-1000 -> +-448 (0x7E, 0xFE); NaN -> 0x7F; -inf, +inf ->
// -+448; 0; -0 (0x80); 2^-8 -> 2^-9, the smallest subnormal (1); 2^-9 ->
// 2^-10, a tie, to even 0; 1.5 (0x3C); 0.150390625 -> 0.15625 (0x22); 50 ->
// 48, a tie, to even (0x64); -0.349609375 -> -0.34375 (0xAB); 224 (0x76).
// CHECK:      48
// CHECK-NEXT: 186
// CHECK-NEXT: 126
// CHECK-NEXT: 254
// CHECK-NEXT: 127
// CHECK-NEXT: 254
// CHECK-NEXT: 126
// CHECK-NEXT: 0
// CHECK-NEXT: 128
// CHECK-NEXT: 1
// CHECK-NEXT: 0
// CHECK-NEXT: 60
// CHECK-NEXT: 34
// CHECK-NEXT: 100
// CHECK-NEXT: 171
// CHECK-NEXT: 118
// CHECK-NEXT: end of row
// CHECK-COUNT-16: 165
// CHECK-NEXT: end of row
// CHECK-NEXT: 64
// Loaded back: byte value * 2.
// CHECK-NEXT: 1
// CHECK-NEXT: -2.5
// CHECK-NEXT: 896
// CHECK-NEXT: -896
// CHECK-NEXT: nan
// CHECK-NEXT: -896
// CHECK-NEXT: 896
// CHECK-NEXT: 0
// CHECK-NEXT: -0
// CHECK-NEXT: 0.00390625
// CHECK-NEXT: 0
// CHECK-NEXT: 3
// CHECK-NEXT: 0.3125
// CHECK-NEXT: 96
// CHECK-NEXT: -0.6875
// CHECK-NEXT: 448
// CHECK-NEXT: 7

kvq.layer @l cache(fp8) resolved(#kvq.resolved_scales<k = 2.000000e+00 checkpoint, v = 5.000000e-01 checkpoint, q = 1.000000e+00 default, prob = 1.000000e+00 default>)

memref.global "private" constant @x : memref<2x1x16xbf16> = dense<[
  [[1.0, -2.5, 1000.0, -1000.0, 0x7FC0, 0xFF80, 0x7F80, 0.0,
    0x8000, 0.00390625, 0.001953125, 3.0, 0.30078125, 100.0, -0.69921875, 448.0]],
  [[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]]]>

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c3 = arith.constant 3 : index
  %c5 = arith.constant 5 : index
  %c16 = arith.constant 16 : index
  %x = memref.get_global @x : memref<2x1x16xbf16>
  %kc = memref.alloc() : memref<1x16x1x16xf8E4M3FN>
  %vc = memref.alloc() : memref<1x16x1x16xf8E4M3FN>
  %poison = arith.constant 0xA5 : i8
  %poisonf8 = arith.bitcast %poison : i8 to f8E4M3FN
  scf.for %r = %c0 to %c16 step %c1 {
    scf.for %d = %c0 to %c16 step %c1 {
      memref.store %poisonf8, %kc[%c0, %r, %c0, %d] : memref<1x16x1x16xf8E4M3FN>
      memref.store %poisonf8, %vc[%c0, %r, %c0, %d] : memref<1x16x1x16xf8E4M3FN>
    }
  }
  %slots = memref.alloc() : memref<2xi64>
  %s3 = arith.constant 3 : i64
  %sm1 = arith.constant -1 : i64
  memref.store %s3, %slots[%c0] : memref<2xi64>
  memref.store %sm1, %slots[%c1] : memref<2xi64>

  kvq.cache_store @l (%x, %x) into (%kc, %vc) at %slots : memref<2x1x16xbf16>, memref<1x16x1x16xf8E4M3FN>, memref<2xi64>

  // K cache rows 3 (token 0, x / 2) and 4 (no token: the poison 0xA5).
  scf.for %r = %c3 to %c5 step %c1 {
    scf.for %d = %c0 to %c16 step %c1 {
      %q = memref.load %kc[%c0, %r, %c0, %d] : memref<1x16x1x16xf8E4M3FN>
      %b = arith.bitcast %q : f8E4M3FN to i8
      %w = arith.extui %b : i8 to i64
      vector.print %w : i64
    }
    vector.print str "end of row\n"
  }
  // V uses the V scale: 1.0 / 0.5 = 2.0 = 0x40.
  %v0 = memref.load %vc[%c0, %c3, %c0, %c0] : memref<1x16x1x16xf8E4M3FN>
  %v0b = arith.bitcast %v0 : f8E4M3FN to i8
  %v0w = arith.extui %v0b : i8 to i64
  vector.print %v0w : i64

  %ko = memref.alloc() : memref<2x1x16xf32>
  %vo = memref.alloc() : memref<2x1x16xf32>
  %seven = arith.constant 7.0 : f32
  scf.for %d = %c0 to %c16 step %c1 {
    memref.store %seven, %ko[%c0, %c0, %d] : memref<2x1x16xf32>
    memref.store %seven, %ko[%c1, %c0, %d] : memref<2x1x16xf32>
  }
  kvq.cache_load @l (%kc, %vc) at %slots into (%ko, %vo) : memref<1x16x1x16xf8E4M3FN>, memref<2xi64>, memref<2x1x16xf32>
  scf.for %d = %c0 to %c16 step %c1 {
    %v = memref.load %ko[%c0, %c0, %d] : memref<2x1x16xf32>
    vector.print %v : f32
  }
  // The padding token's output row is untouched.
  %u = memref.load %ko[%c1, %c0, %c0] : memref<2x1x16xf32>
  vector.print %u : f32
  memref.dealloc %ko : memref<2x1x16xf32>
  memref.dealloc %vo : memref<2x1x16xf32>
  memref.dealloc %kc : memref<1x16x1x16xf8E4M3FN>
  memref.dealloc %vc : memref<1x16x1x16xf8E4M3FN>
  memref.dealloc %slots : memref<2xi64>
  return
}
